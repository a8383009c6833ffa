"""The same work as jaxgd, written the way users write it. Each returns the ``(K, T)`` history.

Plain full-batch gradient descent on the MSE from zeros, a constant learning rate, K learning
rates, T steps: NumPy by hand (float64), PyTorch eager with a hand-written gradient and with
autograd (float32), plain JAX ``jit(vmap(scan))`` (float32), and scikit-learn's
``SGDRegressor`` (per-sample SGD, timed to within 1% of the optimum). Torch and scikit-learn
are optional: without them their functions return None. ``jaxgd_sweep`` is jaxgd itself.
"""

from __future__ import annotations

import math
import time
import warnings
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxgd
from jaxgd.api.settings import Record, Stopping
from jaxgd.core.convergence import DEFAULT_DIVERGENCE_FACTOR

SKLEARN_TARGET = 0.01  # within 1% of the least-squares loss

def optional(name: str):
    try:
        return __import__(name)
    except ImportError:
        return None


def numpy_gd(X, y, learning_rates, num_steps: int, dtype=np.float64) -> np.ndarray:
    """Gradient descent by hand in NumPy, all learning rates at once, from zeros.

    Example:
      >>> X, y = np.array([[-1.0], [1.0]]), np.array([1.0, 3.0])
      >>> numpy_gd(X, y, [0.5], 3).round(4).tolist()
      [[5.0, 0.0, 0.0]]
    """
    X, y = np.asarray(X, dtype), np.asarray(y, dtype)
    n = X.shape[0]
    A = np.hstack([X, np.ones((n, 1), dtype)])
    lr = np.asarray(learning_rates, dtype)
    W = np.zeros((A.shape[1], lr.size), dtype)
    losses = np.empty((lr.size, num_steps), dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(num_steps):
            R = A @ W - y[:, None]
            losses[:, t] = np.mean(R * R, axis=0)
            W -= lr * ((2.0 / n) * (A.T @ R))
    return losses


def torch_gd(X, y, learning_rates, num_steps: int) -> np.ndarray | None:
    """The NumPy loop in PyTorch eager on the CPU, float32; None without torch."""
    torch = optional("torch")
    if torch is None:
        return None
    with torch.no_grad():
        X = torch.as_tensor(np.asarray(X, np.float32))
        y = torch.as_tensor(np.asarray(y, np.float32))
        n = X.shape[0]
        A = torch.cat([X, torch.ones(n, 1)], dim=1)
        lr = torch.as_tensor(np.asarray(learning_rates, np.float32))
        W = torch.zeros(A.shape[1], lr.numel())
        losses = torch.empty(lr.numel(), num_steps)
        for t in range(num_steps):
            R = A @ W - y[:, None]
            losses[:, t] = (R * R).mean(dim=0)
            W -= lr * ((2.0 / n) * (A.T @ R))
    return losses.numpy()


def torch_autograd_gd(X, y, learning_rates, num_steps: int) -> np.ndarray | None:
    """PyTorch eager with the gradient from ``loss.backward()``, float32; None without torch.

    Summing the K losses gives each column of ``W`` its own loss's gradient.
    """
    torch = optional("torch")
    if torch is None:
        return None
    X = torch.as_tensor(np.asarray(X, np.float32))
    y = torch.as_tensor(np.asarray(y, np.float32))
    A = torch.cat([X, torch.ones(X.shape[0], 1)], dim=1)
    lr = torch.as_tensor(np.asarray(learning_rates, np.float32))
    W = torch.zeros(A.shape[1], lr.numel(), requires_grad=True)
    losses = torch.empty(lr.numel(), num_steps)
    for t in range(num_steps):
        R = A @ W - y[:, None]
        loss = (R * R).mean(dim=0)
        losses[:, t] = loss.detach()
        W.grad = None
        loss.sum().backward()
        with torch.no_grad():
            W -= lr * W.grad
    return losses.numpy()


@partial(jax.jit, static_argnames="num_steps")
def _plain_jax(X, y, learning_rates, num_steps: int):
    def loss_fn(params):
        w, b = params
        r = X @ w + b - y
        return jnp.mean(r * r)

    def run(lr):
        opt = optax.sgd(lr)
        params = (jnp.zeros(X.shape[1], X.dtype), jnp.zeros((), X.dtype))

        def step(carry, _):
            params, state = carry
            loss, grads = jax.value_and_grad(loss_fn)(params)
            updates, state = opt.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), loss

        _, losses = jax.lax.scan(step, (params, opt.init(params)), length=num_steps)
        return losses

    return jax.vmap(run)(learning_rates)


def plain_jax_gd(X, y, learning_rates, num_steps: int) -> jax.Array:
    """The JAX a user writes in twenty lines: ``jit(vmap(run))``, ``run`` a ``lax.scan`` of
    ``optax.sgd`` steps that computes ``X @ w`` every step. float32; blocks until done."""
    X, y = jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32)
    rates = jnp.asarray(learning_rates, jnp.float32)
    return _plain_jax(X, y, rates, num_steps).block_until_ready()


@partial(jax.jit, static_argnames="num_steps")
def bare_eigen_scan(basis, learning_rates, start, num_steps: int) -> jax.Array:
    """The eigen engine's descent written bare, as one would by hand for issue 24: ``jit(vmap(
    scan))`` of ``optax.sgd`` on ``L* + Σᵢ λᵢ (zᵢ − z*ᵢ)²`` in jaxgd's layout (one scalar per
    coordinate), returning the ``(K, T)`` history; no verdicts, freezing or snapshots.
    ``basis``: a device ``jaxgd.engines.eigen.EigenBasis``; ``start``: a tuple of ``(K,)``
    arrays."""
    def run(lr, z):
        opt = optax.sgd(lr)

        def loss(z):
            total = basis.optimal_loss
            for i, zi in enumerate(z):
                r = zi - basis.optimum[i]
                total = total + basis.curvature[i] * (r * r)
            return total

        def step(carry, _):
            z, state = carry
            value, grads = jax.value_and_grad(loss)(z)
            updates, state = opt.update(grads, state, z)
            return (optax.apply_updates(z, updates), state), value

        return jax.lax.scan(step, (z, opt.init(z)), length=num_steps)[1]

    return jax.vmap(run)(learning_rates, start)


class SGDOutcome(NamedTuple):
    """scikit-learn SGD per learning rate: seconds and epochs spent, until the loss came
    within ``SKLEARN_TARGET`` of the optimum (``reached``) or the run gave up (cap or blow-up);
    ``best_gap`` is the lowest ``loss / optimum − 1`` it saw."""

    learning_rates: np.ndarray
    seconds: np.ndarray
    epochs: np.ndarray
    reached: np.ndarray
    diverged: np.ndarray
    best_gap: np.ndarray


def sklearn_sgd(X, y, learning_rates, optimal_loss: float, max_epochs: int = 10_000,
                max_seconds: float = math.inf, total_seconds: float = math.inf,
                target: float = SKLEARN_TARGET) -> SGDOutcome | None:
    """``SGDRegressor`` (constant learning rate, no penalty, no shuffling) per learning rate,
    one ``partial_fit`` epoch at a time until its MSE is within ``target`` of
    ``optimal_loss``, it diverges (overflows, or its loss passes jaxgd's divergence multiple
    of the loss at zeros), ``max_epochs`` pass or ``max_seconds`` are spent on the rate.
    Rates are tried in the order given until ``total_seconds`` are spent (two at least);
    the outcome lists those tried. None without scikit-learn."""
    if optional("sklearn") is None:
        return None
    from sklearn.linear_model import SGDRegressor

    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    goal = optimal_loss * (1 + target)
    # Diverged as jaxgd judges it: the loss rose past a multiple of the loss at zeros.
    # (SGDRegressor clips its per-sample gradient, so it seldom overflows.)
    blown = DEFAULT_DIVERGENCE_FACTOR * float(np.mean(y * y))
    rows, tried, began = [], [], time.perf_counter()
    for lr in np.asarray(learning_rates, np.float64):
        if len(rows) >= 2 and time.perf_counter() - began > total_seconds:
            break
        tried.append(lr)
        model = SGDRegressor(loss="squared_error", penalty=None, learning_rate="constant",
                             eta0=float(lr), tol=None, shuffle=False)
        start, reached, diverged, epoch = time.perf_counter(), False, False, 0
        best = math.inf
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            for epoch in range(1, max_epochs + 1):  # noqa: B007 (epoch is reported)
                try:
                    model.partial_fit(X, y)
                except ValueError:  # "Floating-point under-/overflow occurred at epoch #"
                    diverged = True
                    break
                residual = model.predict(X) - y
                loss = float(np.mean(residual * residual))
                if not loss <= blown:  # also NaN
                    diverged = True
                    break
                best = min(best, loss / optimal_loss - 1)
                if loss <= goal:
                    reached = True
                    break
                if time.perf_counter() - start > max_seconds:
                    break
        rows.append((time.perf_counter() - start, epoch, reached, diverged, best))
    seconds, epochs, reached, diverged, best = (np.array(c) for c in zip(*rows, strict=True))
    return SGDOutcome(np.asarray(tried, np.float64), seconds, epochs,
                      reached.astype(bool), diverged.astype(bool), best)


def jaxgd_sweep(X, y, learning_rates, num_steps: int, engine: str = "auto"):
    """``jaxgd.sweep`` from zeros, no reference, full history; blocks until done.

    Returns:
      (losses ``(K, T)``, the engine that actually ran).
    """
    result = jaxgd.sweep(X, y, learning_rates=learning_rates, num_steps=num_steps,
                         stopping=Stopping(reference=False), record=Record(log_every=1), init=0.0,
                         engine=engine)
    jax.block_until_ready([leaf for leaf in jax.tree_util.tree_leaves(result)
                           if isinstance(leaf, jax.Array)])
    return result.losses, result.engine
