"""Engines: how each step's loss is computed from the data.

- ``direct``: from X itself, ``mean((X @ w + b - y)²)``: O(n·d) per step and run.
- ``gram``: from the data's sufficient statistics (``jaxgd.statistics``), computed once in
  float64: O(d²) per step and run, whatever n is.
- ``auto``: the cheaper by this cost model, counting multiply-adds of forward and backward
  passes: direct costs 2·n·(d+1) per run-step; gram costs 2·(d+1)² per run-step plus
  n·(d+1)² once for the statistics. For any data with more rows than features gram wins,
  so ``auto`` means gram except for very wide or very short problems.

Both engines differentiate their loss with ``jax.grad``, and both losses are the same
function of the parameters: histories agree to float rounding (see tests/test_engine.py).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.convergence import RESOLUTION_ULPS
from jaxgd.model import mse
from jaxgd.statistics import gram_mse, sufficient_statistics, to_device

ENGINES = ("auto", "direct", "gram")


class Rows(NamedTuple):
    """The data itself, for the direct engine."""

    X: jax.Array
    y: jax.Array


def choose_engine(engine: str, n_samples: int, n_features: int, num_steps: int,
                  num_runs: int) -> str:
    """Resolves ``engine`` ("auto", "direct" or "gram") to the engine that will run.

    Example:
      >>> choose_engine("auto", n_samples=392, n_features=7, num_steps=1000, num_runs=64)
      'gram'
      >>> choose_engine("auto", n_samples=10, n_features=500, num_steps=1000, num_runs=1)
      'direct'
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine != "auto":
        return engine
    width = n_features + 1
    run_steps = num_steps * num_runs
    direct = 2 * n_samples * width * run_steps
    gram = 2 * width * width * run_steps + n_samples * width * width
    return "gram" if gram < direct else "direct"


def prepare(engine: str, X, y, dtype=None) -> Any:
    """What the chosen engine's loss reads: the rows, or their float64 moments, on device."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    if engine == "gram":
        return to_device(sufficient_statistics(X, y), dtype)
    return Rows(jnp.asarray(X, dtype), jnp.asarray(y, dtype))


def loss_function(data) -> Callable:
    """The loss of the parameters on ``data`` (``Rows`` or ``SufficientStats``)."""
    if isinstance(data, Rows):
        return partial(mse, X=data.X, y=data.y)
    return partial(gram_mse, stats=data)


def loss_noise(data):
    """Absolute rounding noise of the engine's loss: the gram form adds terms as large as
    var(y), so its float result wobbles by ulps of var(y) (see ``jaxgd.convergence``)."""
    if isinstance(data, Rows):
        return 0.0
    return RESOLUTION_ULPS * jnp.finfo(data.var_y.dtype).eps * data.var_y


def n_features(data) -> int:
    return data.X.shape[1] if isinstance(data, Rows) else data.mean_x.shape[0]


def dtype_of(data):
    return data.X.dtype if isinstance(data, Rows) else data.mean_x.dtype
