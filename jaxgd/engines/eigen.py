"""The eigen engine: gradient descent on the MSE, in the eigenbasis of its curvature.

The MSE (plus ridge) of θ = [weight, bias] is a quadratic,
``L(θ) = L* + (θ − θ*)ᵀ M (θ − θ*)``, with M = AᵀA/n + l2·diag(1, …, 1, 0) for A = [X, 1],
θ* the (ridge) least-squares optimum and L* its loss. With M = Q diag(λ) Qᵀ and z = Qᵀθ,

    L = L* + Σᵢ λᵢ (zᵢ − z*ᵢ)²

is the same function: one term per coordinate, O(d) per step instead of the gram engine's
O(d²), and no cancellation (the gram form subtracts terms as large as var(y)). The loss is
still differentiated with ``jax.grad`` and stepped by the optax optimizer, in z.

It is exact only for optimizers that commute with a rotation of the parameters, whose
update is a linear function of the gradients: plain gradient descent, momentum and
Nesterov (any learning-rate schedule). Their trajectory in z is Qᵀ times their trajectory in
θ, step by step. Adam, RMSProp, Adagrad and AdamW scale each coordinate by its own history
and would follow another path; they use the gram engine. Q, λ, θ* and L* come from the
data's float64 moments, once; the basis depends on l2, so l2 must be the same for every run
of a sweep.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core.model import PRECISION, dot, mse
from jaxgd.core.params import LinearParams
from jaxgd.data.statistics import SufficientStats, device_array
from jaxgd.engines import layout
from jaxgd.inputs.validation import default_float
from jaxgd.theory.least_squares import solve

#: The optimizers whose updates are linear in the gradients (see the module's docstring).
ROTATION_INVARIANT = ("sgd", "momentum", "nesterov")


class EigenBasis(NamedTuple):
    """The loss's curvature in its eigenbasis.

    Attributes:
      basis: Q, ``(d+1, d+1)``, orthogonal; column i is the direction of curvature λᵢ.
      curvature: λ, ``(d+1,)``, ascending, never negative.
      optimum: z* = Qᵀθ*, ``(d+1,)``.
      optimal_loss: L*, ``()``: the MSE (plus ridge penalty) at θ*.
      l2: ``()``, the ridge strength the basis was made for.
    """

    basis: jax.Array
    curvature: jax.Array
    optimum: jax.Array
    optimal_loss: jax.Array
    l2: jax.Array


def eigen_basis(stats: SufficientStats, l2: float = 0.0) -> EigenBasis:
    """The eigenbasis of the (ridge) MSE, from the data's moments, in float64 NumPy.

    Example:
      >>> from jaxgd.data.statistics import sufficient_statistics
      >>> e = eigen_basis(sufficient_statistics(np.array([[0.0], [2.0]]), np.array([1., 5.])))
      >>> e.curvature.round(6).tolist(), float(e.optimal_loss)
      ([0.381966, 2.618034], 0.0)
    """
    mean_x = np.asarray(stats.mean_x, np.float64)
    cov = np.asarray(stats.cov_xx, np.float64) + l2 * np.eye(mean_x.size)
    # M = AᵀA/n + l2·diag(1, …, 1, 0), assembled from the centred moments.
    M = np.block([[cov + np.outer(mean_x, mean_x), mean_x[:, None]],
                  [mean_x[None, :], np.ones((1, 1))]])
    curvature, Q = np.linalg.eigh(M)
    best = solve(stats, l2=l2)
    theta = np.append(best.params.weight, best.params.bias)
    return EigenBasis(basis=Q, curvature=np.maximum(curvature, 0.0), optimum=Q.T @ theta,
                      optimal_loss=np.float64(max(best.loss, 0.0)), l2=np.float64(l2))


def prepare_traced(X: jax.Array, y: jax.Array, l2) -> EigenBasis:
    """The eigenbasis of traced rows, computed in the traced program (X's dtype).

    For data traced by the caller's ``jit``/``vmap``: the same basis as ``eigen_basis``, from
    ``jnp.linalg.eigh``; the optimum solves the normal equations, so the features must be
    linearly independent (or l2 > 0), and L* is the optimum's loss on the rows themselves.
    """
    n, d = X.shape
    A = jnp.concatenate([X, jnp.ones((n, 1), X.dtype)], axis=1)
    penalty = jnp.diag(jnp.append(jnp.ones(d, X.dtype), 0.0)) * l2
    M = jnp.matmul(A.T, A, precision=PRECISION) / n + penalty
    curvature, Q = jnp.linalg.eigh(M)
    theta = jnp.linalg.solve(M, jnp.matmul(A.T, y, precision=PRECISION) / n)
    best = layout.unflatten(theta)
    loss = mse(best, X, y) + l2 * jnp.sum(best.weight * best.weight)
    return EigenBasis(basis=Q, curvature=jnp.maximum(curvature, 0.0), optimum=dot(theta, Q),
                      optimal_loss=loss, l2=jnp.asarray(l2, X.dtype))


def to_device(basis: EigenBasis, dtype=None) -> EigenBasis:
    """The basis as JAX arrays in ``dtype`` (JAX's default float if None)."""
    dtype = default_float() if dtype is None else dtype
    return jax.tree_util.tree_map(lambda a: device_array(a, dtype), basis)


def to_eigen(params: LinearParams, basis: EigenBasis):
    """z = Qᵀθ: a tuple of scalars for narrow models (``jaxgd.engines.layout``), else a vector."""
    z = dot(layout.flatten(params), basis.basis)
    return layout.to_scalars(z) if layout.use_scalars(basis.basis.shape[0] - 1) else z


def from_eigen(z, basis: EigenBasis) -> LinearParams:
    """θ = Qz, for ``z`` from ``to_eigen`` (leading axes, such as snapshots', are kept)."""
    if isinstance(z, tuple):
        z = layout.from_scalars(z)
    return layout.unflatten(dot(z, basis.basis.T))


def eigen_mse(z, basis: EigenBasis) -> jax.Array:
    """The MSE (plus ridge penalty) at z: ``L* + Σᵢ λᵢ (zᵢ − z*ᵢ)²``.

    Example:
      >>> from jaxgd.data.statistics import sufficient_statistics
      >>> X, y = np.array([[0.0], [2.0]]), np.array([1.0, 5.0])
      >>> e = to_device(eigen_basis(sufficient_statistics(X, y)))
      >>> p = LinearParams(jnp.array([1.5]), jnp.array(0.5))   # residuals -0.5 and -1.5
      >>> round(float(eigen_mse(to_eigen(p, e), e)), 5)
      1.25
    """
    if isinstance(z, tuple):  # one (runs,) array per coordinate: elementwise only
        total = basis.optimal_loss
        for i, zi in enumerate(z):
            r = zi - basis.optimum[i]
            total = total + basis.curvature[i] * (r * r)
        return total
    r = z - basis.optimum
    return basis.optimal_loss + jnp.sum(basis.curvature * (r * r))
