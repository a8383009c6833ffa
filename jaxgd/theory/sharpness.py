"""Adam's edge of stability: the curvature of the MSE as Adam's preconditioner sees it.

Adam (optax's) steps θ ← θ − η·m̂/(√v̂ + ε), with m̂ and v̂ the bias-corrected moving
averages of the gradient and its square. Over a stretch where v̂ barely changes, Adam is
gradient descent preconditioned by P = diag(√v̂ + ε)/η with EMA momentum: in each
eigendirection of the preconditioned Hessian P⁻¹H (eigenvalue s) the error follows
m ← β1·m + (1 − β1)·s·e, e ← e − m, the heavy ball ``v ← g + β1·v`` with step (1 − β1):
by ``jaxgd.theory.stability.limit_factor`` it is stable iff (1 − β1)·s < 2(1 + β1), i.e.

    s = η·λmax(D^{-1/2} H D^{-1/2}) < 2(1 + β1)/(1 − β1),   D = diag(√v̂ + ε)

(38 for β1 = 0.9; Cohen et al. 2022, "Adaptive gradient methods at the edge of stability").
The MSE's Hessian H is constant (``jaxgd.theory.stability.hessian``), but v̂ is not: a run whose
``s`` rises past the threshold oscillates, its gradients grow, v̂ grows, and ``s`` falls
back. So Adam self-stabilises: at large rates ``s`` hovers at the threshold (the edge of
stability) instead of the loss blowing up, which is what the tests check on the course's
data. ``fit(..., optimizer="adam", track_sharpness=True)`` records ``s`` at every logged step
in the result's ``observed`` field. A user's model (``jaxgd.Model``) has no constant
Hessian: its ``s`` is estimated where the run is, by power iteration on Hessian-vector
products (``power_sharpness``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

#: Optimizers whose preconditioned sharpness ``track_sharpness`` computes.
TRACKED = ("adam",)


def adam_threshold(b1=0.9):
    """The largest stable preconditioned sharpness η·λmax(P⁻¹H) of Adam with momentum b1
    and v̂ held fixed: 2(1 + b1)/(1 − b1) (NumPy arrays broadcast).

    Example:
      >>> round(adam_threshold(0.9), 10), adam_threshold(0.0)
      (38.0, 2.0)
    """
    b1 = np.asarray(b1, np.float64)
    threshold = 2.0 * (1.0 + b1) / (1.0 - b1)
    return threshold if threshold.ndim else float(threshold)


def preconditioned_sharpness(hessian: jax.Array, nu: jax.Array, count, learning_rate, b2,
                             eps) -> jax.Array:
    """η·λmax(D^{-1/2} H D^{-1/2}) with D = √(ν/(1 − b2^count)) + ε: the largest
    eigenvalue of Adam's preconditioned Hessian (traceable; ``nu`` is flat, like H's axes).

    Example:
      >>> import jax.numpy as jnp
      >>> h = jnp.diag(jnp.array([2.0, 8.0]))   # v̂ = (1, 4): D = (1, 2), D⁻¹H = (2, 4)
      >>> round(float(preconditioned_sharpness(h, jnp.array([0.1, 0.4]), 1, 0.5, 0.9, 0.0)), 5)
      2.0
    """
    scale = _scale(nu, count, b2, eps)
    return learning_rate * jnp.linalg.eigvalsh(scale[:, None] * hessian * scale[None, :])[-1]


def _scale(nu: jax.Array, count, b2, eps) -> jax.Array:
    """D^{-1/2}, D = √(ν/(1 − b2^count)) + ε: Adam's preconditioner's inverse square root."""
    corrected = nu / (1.0 - jnp.asarray(b2, nu.dtype) ** count)
    return jax.lax.rsqrt(jnp.sqrt(corrected) + eps)


#: Power iterations per step for a model's sharpness (``power_sharpness``).
POWER_ITERATIONS = 32


def power_sharpness(loss: Callable, params, nu: jax.Array, count, learning_rate, b2, eps,
                    iterations: int = POWER_ITERATIONS) -> jax.Array:
    """η·λ of D^{-1/2} H D^{-1/2} at ``params`` without forming H: the eigenvalue of
    largest magnitude, by ``iterations`` power iterations from a fixed start (all ones),
    each one Hessian-vector product (``jax.jvp`` of ``jax.grad``), and its Rayleigh
    quotient. For a loss that is not quadratic (a user's model): H changes with
    ``params``, so it is evaluated where the run is. It is λmax where the positive
    curvature dominates (near a minimum, and where Adam's edge of stability matters);
    otherwise the most negative eigenvalue, with its sign. The power iteration converges
    as (|λ₂|/|λ₁|)^iterations: close eigenvalues give an estimate below |λ₁|.

    Example:
      >>> import jax.numpy as jnp
      >>> loss = lambda p: p["w"][0] ** 2 + 4.0 * p["w"][1] ** 2   # H = diag(2, 8)
      >>> nu = jnp.array([0.1, 0.4])                                # D = (1, 2): (2, 4)
      >>> round(float(power_sharpness(loss, {"w": jnp.ones(2)}, nu, 1, 0.5, 0.9, 0.0)), 4)
      2.0
    """
    flat, unravel = ravel_pytree(params)
    grad = jax.grad(lambda f: loss(unravel(f)))
    scale = _scale(nu, count, b2, eps).astype(flat.dtype)

    def matvec(v):  # D^{-1/2} H D^{-1/2} v
        return scale * jax.jvp(grad, (flat,), (scale * v,))[1]

    def power(_, v):
        w = matvec(v)
        norm = jnp.sqrt(jnp.sum(w * w))
        return w / jnp.where(norm > 0, norm, 1.0)

    start = jnp.full_like(flat, 1.0 / jnp.sqrt(flat.size))
    v = jax.lax.fori_loop(0, iterations, power, start)
    return learning_rate * jnp.sum(v * matvec(v))


def tracker(loss: Callable, params, hyper,
            quadratic: bool = True) -> Callable[[Any, Any], jax.Array]:
    """``observe(params, opt_state)`` for ``descend``: the preconditioned sharpness of the
    step just taken. A ``quadratic`` loss (the MSE of any engine) has at ``params`` the
    Hessian of everywhere, computed once here, (d + 1)² numbers, and its exact λmax; any
    other loss (a user's model) gets ``power_sharpness`` at the run's parameters."""
    def adam_state(opt_state):
        nu = ravel_pytree(optax.tree_utils.tree_get(opt_state, "nu"))[0]
        return nu, optax.tree_utils.tree_get(opt_state, "count")

    settings = (hyper["learning_rate"], hyper["b2"], hyper["eps"])
    if not quadratic:
        return lambda params, opt_state: power_sharpness(loss, params, *adam_state(opt_state),
                                                         *settings)
    flat, unravel = ravel_pytree(params)
    hessian = jax.hessian(lambda f: loss(unravel(f)))(flat)
    return lambda _, opt_state: preconditioned_sharpness(hessian, *adam_state(opt_state),
                                                         *settings)


__all__ = ["POWER_ITERATIONS", "TRACKED", "adam_threshold", "power_sharpness",
           "preconditioned_sharpness", "tracker"]
