"""Engines: how each step's loss is computed from the data, and in which coordinates.

- ``direct``: from X itself, ``mean((X @ w + b - y)²)``: O(n·d) per step and run.
- ``gram``: from the data's sufficient statistics (``jaxgd.statistics``), computed once in
  float64: O(d²) per step and run, whatever n is. Any optimizer.
- ``eigen``: the same moments, rotated once into the eigenbasis of the loss's curvature
  (``jaxgd.eigen``): O(d) per step and run. Exact for optimizers whose update is linear in
  the gradients (sgd, momentum, nesterov), with one l2 for all runs.
- ``auto``: direct or the moments by this cost model, counting multiply-adds of forward and
  backward passes: direct costs 2·n·(d+1) per run-step; gram 2·(d+1)² per run-step plus
  n·(d+1)² once for the statistics. For any data with more rows than features the moments
  win, so ``auto`` means eigen where it is exact, else gram, except for very wide or very
  short problems.

Every engine differentiates its loss with ``jax.grad``, and all three losses are the same
function of the parameters: histories agree to float rounding (see tests/test_engine.py).
The moment engines hold narrow models as one scalar per coordinate (``jaxgd.layout``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxgd import eigen, layout
from jaxgd.convergence import RESOLUTION_ULPS
from jaxgd.model import mse
from jaxgd.params import LinearParams
from jaxgd.statistics import SufficientStats, gram_mse, sufficient_statistics, to_device

ENGINES = ("auto", "direct", "gram", "eigen")


class Rows(NamedTuple):
    """The data itself, for the direct engine."""

    X: jax.Array
    y: jax.Array


def choose_engine(engine: str, n_samples: int, n_features: int, num_steps: int,
                  num_runs: int, optimizer: str = "sgd", fixed_l2: bool = True) -> str:
    """Resolves ``engine`` ("auto", "direct", "gram" or "eigen") to the engine that will run.

    Args:
      engine: the engine asked for.
      n_samples, n_features, num_steps, num_runs: the work, for the cost model.
      optimizer: the optimizer's name (``jaxgd.optimizers``); "custom" for a factory.
      fixed_l2: whether every run has the same l2 (the eigen engine needs that).

    Example:
      >>> choose_engine("auto", n_samples=392, n_features=7, num_steps=1000, num_runs=64)
      'eigen'
      >>> choose_engine("auto", 392, 7, 1000, 64, optimizer="adam")
      'gram'
      >>> choose_engine("auto", n_samples=10, n_features=500, num_steps=1000, num_runs=1)
      'direct'
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    exact = moment_engine(optimizer, fixed_l2) == "eigen"
    if engine == "eigen" and not exact:
        why = (f"optimizer {optimizer!r} scales each coordinate by its own history"
               if optimizer not in eigen.ROTATION_INVARIANT
               else "l2 varies across the runs (the basis depends on it)")
        raise ValueError(f"engine='eigen' is exact only for {', '.join(eigen.ROTATION_INVARIANT)} "
                         f"with one l2 for all runs, but {why}: use engine='gram' or 'auto'")
    if engine != "auto":
        return engine
    width = n_features + 1
    run_steps = num_steps * num_runs
    direct = 2 * n_samples * width * run_steps
    gram = 2 * width * width * run_steps + n_samples * width * width
    if direct <= gram:
        return "direct"
    return "eigen" if exact else "gram"


def moment_engine(optimizer: str, fixed_l2: bool) -> str:
    """The moment engine for this optimizer: eigen where it is exact, else gram."""
    return "eigen" if optimizer in eigen.ROTATION_INVARIANT and fixed_l2 else "gram"


def prepare(engine: str, X, y, dtype=None, l2: float = 0.0) -> Any:
    """What the engine's loss reads, on device: the rows, their float64 moments, or the
    eigenbasis made from them for ridge strength ``l2``. ``X`` may be ``SufficientStats``
    (with y None) for the moment engines."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    if engine == "direct":
        return Rows(jnp.asarray(X, dtype), jnp.asarray(y, dtype))
    stats = X if isinstance(X, SufficientStats) else sufficient_statistics(X, y)
    if engine == "eigen":
        return eigen.to_device(eigen.eigen_basis(stats, l2), dtype)
    return to_device(stats, dtype)


def to_coordinates(data, params: LinearParams):
    """The parameters as the engine's loss takes them (the descent loop's pytree)."""
    if isinstance(data, eigen.EigenBasis):
        return eigen.to_eigen(params, data)
    if isinstance(data, SufficientStats) and layout.use_scalars(n_features(data)):
        return layout.to_scalars(layout.flatten(params))
    return params


def from_coordinates(data, coordinates) -> LinearParams:
    """The inverse of ``to_coordinates``; leading axes (runs, snapshots) are kept."""
    if isinstance(data, eigen.EigenBasis):
        return eigen.from_eigen(coordinates, data)
    if isinstance(coordinates, LinearParams):
        return coordinates
    return layout.unflatten(layout.from_scalars(coordinates))


def loss_function(data, l2) -> Callable:
    """The ridge objective MSE + l2·‖weight‖² as a function of the engine's coordinates.

    For the eigen engine the penalty is part of the basis (made for one l2 by ``prepare``).
    """
    if isinstance(data, eigen.EigenBasis):
        return lambda z: eigen.eigen_mse(z, data)
    if isinstance(data, Rows):
        return lambda params: mse(params, data.X, data.y) + l2 * jnp.sum(
            params.weight * params.weight)
    if isinstance(data, SufficientStats) and layout.use_scalars(n_features(data)):
        return lambda scalars: gram_mse(scalars, data) + l2 * sum(
            w * w for w in scalars[:-1])
    return lambda params: gram_mse(params, data) + l2 * jnp.sum(params.weight * params.weight)


def loss_noise(data):
    """Absolute rounding noise of the engine's loss (see ``jaxgd.convergence``): the gram form
    adds terms as large as var(y), so its float result wobbles by ulps of var(y); the eigen
    form adds shrinking terms to L*, so by ulps of L*."""
    if isinstance(data, Rows):
        return 0.0
    if isinstance(data, eigen.EigenBasis):
        return RESOLUTION_ULPS * jnp.finfo(data.optimal_loss.dtype).eps * data.optimal_loss
    return RESOLUTION_ULPS * jnp.finfo(data.var_y.dtype).eps * data.var_y


def n_features(data) -> int:
    if isinstance(data, Rows):
        return data.X.shape[1]
    if isinstance(data, eigen.EigenBasis):
        return data.basis.shape[0] - 1
    return data.mean_x.shape[0]


def dtype_of(data):
    if isinstance(data, Rows):
        return data.X.dtype
    return data.curvature.dtype if isinstance(data, eigen.EigenBasis) else data.mean_x.dtype
