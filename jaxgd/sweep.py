"""``sweep``: many learning rates (and seeds) as one compiled, vmapped program."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd import convergence, progress
from jaxgd.descent import Descent
from jaxgd.fit import (
    FitResult,
    OptimizerFactory,
    RunConfig,
    check_seed,
    device_data,
    make_config,
    train,
)
from jaxgd.least_squares import solve
from jaxgd.params import LinearParams
from jaxgd.validation import check_learning_rates, check_positive_int

#: Runs per compiled call when a sweep is chunked and no chunk_size is given: keeps the
#: device-side history of one chunk near 256 MiB (see ``auto_chunk_size``).
CHUNK_BYTES = 256 * 2**20


class SweepResult(NamedTuple):
    """The outcome of ``sweep``: every field has the grid's axes first, steps last.

    The grid is (learning rate,) without seeds and (learning rate, seed) with them, so
    ``losses`` is ``(K, num_logs)`` or ``(K, S, num_logs)``; ``params.weight`` is
    ``(K, [S,] n_features)``; ``snapshots.weight`` is ``(K, [S,] n_snapshots, n_features)``.

    Attributes:
      params, losses, final_loss, converged_step, diverged, diverged_step, snapshots:
        as in ``FitResult``, per grid point.
      snapshot_steps: ``(n_snapshots,)``, shared by every run.
      loss_steps: ``(num_logs,)``: the step of each history entry, shared by every run.
      learning_rates: ``(K,)``.
      seeds: ``(S,)``, or None when the sweep had no seed axis.
      engine: the engine that ran, "direct" or "gram".
      optimal_loss: least-squares MSE (float64) when ``reference=True``, else None.
    """

    params: LinearParams
    losses: jax.Array
    final_loss: jax.Array
    converged_step: jax.Array
    diverged: jax.Array
    diverged_step: jax.Array
    snapshots: LinearParams
    snapshot_steps: jax.Array
    loss_steps: jax.Array
    learning_rates: jax.Array
    seeds: jax.Array | None = None
    engine: str = "direct"
    optimal_loss: float | None = None

    @property
    def converged(self) -> jax.Array:
        """Per run: whether it converged."""
        return self.converged_step >= 0

    @property
    def gap(self) -> np.ndarray:
        """Per run: ``final_loss - optimal_loss``."""
        if self.optimal_loss is None:
            raise ValueError("no reference loss: run with reference=True")
        return np.asarray(self.final_loss, np.float64) - self.optimal_loss

    def best(self) -> tuple[int, ...]:
        """Grid index of the lowest final loss among runs that did not diverge.

        Raises:
          ValueError: if every run diverged (there is no best run to report).
        """
        final = np.asarray(self.final_loss, np.float64)
        usable = ~np.asarray(self.diverged) & np.isfinite(final)
        if not usable.any():
            raise ValueError("every run diverged: no best run; try smaller learning rates")
        flat_index = np.argmin(np.where(usable, final, np.inf))
        return tuple(int(i) for i in np.unravel_index(flat_index, final.shape))

    def run(self, index: int | tuple[int, ...]) -> FitResult:
        """One grid point as a ``FitResult``, e.g. ``result.run(result.best())``."""
        index = (index,) if isinstance(index, int | np.integer) else tuple(index)
        depth = 1 if self.seeds is None else 2
        if len(index) != depth:
            raise ValueError(f"index needs {depth} entries (the grid's axes), got {index}")
        take = lambda tree: jax.tree_util.tree_map(lambda leaf: leaf[index], tree)  # noqa: E731
        return FitResult(
            params=take(self.params),
            losses=self.losses[index],
            final_loss=self.final_loss[index],
            converged_step=self.converged_step[index],
            diverged=self.diverged[index],
            diverged_step=self.diverged_step[index],
            snapshots=take(self.snapshots),
            snapshot_steps=self.snapshot_steps,
            loss_steps=self.loss_steps,
            learning_rate=self.learning_rates[index[0]],
            engine=self.engine,
            optimal_loss=self.optimal_loss,
        )


@partial(jax.jit, static_argnames="config")
def _sweep_compiled(data, learning_rates, seeds, config: RunConfig) -> Descent:
    # One flat axis of runs: the grid (learning rate × seed) is unrolled into members, so a
    # chunk of members is the same program whatever part of the grid it holds.
    return jax.vmap(partial(train, data, config=config))(learning_rates, seeds)


def auto_chunk_size(num_logs: int, n_features: int, n_snapshots: int) -> int:
    """Runs per chunk so that one chunk's outputs take about ``CHUNK_BYTES`` on the device.

    Example:
      >>> auto_chunk_size(num_logs=1000, n_features=7, n_snapshots=3)
      64527
    """
    per_run = 4 * (num_logs + (n_snapshots + 1) * (n_features + 1) + 8)
    return max(1, CHUNK_BYTES // per_run)


def sweep(
    X,
    y,
    *,
    learning_rates: Sequence[float],
    num_steps: int,
    seeds: Sequence[int] | None = None,
    seed: int = 0,
    optimizer: OptimizerFactory | None = None,
    init_scale: float = 0.01,
    tol: float = convergence.DEFAULT_TOL,
    patience: int = convergence.DEFAULT_PATIENCE,
    divergence_factor: float = convergence.DEFAULT_DIVERGENCE_FACTOR,
    stop_at_convergence: bool = False,
    snapshot_steps: Sequence[int] | None = None,
    reference: bool = True,
    progress_every: int = 0,
    engine: str = "auto",
    log_every: int = 1,
    chunk_size: int | None = None,
) -> SweepResult:
    """Runs ``fit`` for every learning rate (and every seed) as ONE compiled, vmapped program.

    Learning rates and seeds are traced values: another sweep with the same number of them
    (and the same data shapes and options) reuses the compiled program. Each member equals
    the ``fit`` with the same learning rate and seed. A diverging member is flagged and does
    not disturb the others.

    A sweep larger than ``chunk_size`` runs (by default, larger than about 256 MiB of
    outputs, see ``auto_chunk_size``) runs chunk by chunk through the same compiled program,
    gathering results on the host as NumPy arrays; the numbers are those of one big run.
    With ``log_every`` this bounds memory for sweeps of millions of runs.

    Args:
      X: features, shape ``(n_samples, n_features)``.
      y: targets, shape ``(n_samples,)``.
      learning_rates: K finite positive learning rates.
      num_steps: number of updates per run.
      seeds: S seeds for the starting points; the grid is then (K, S). Without it every
        run starts from ``seed``'s draw and the grid is (K,).
      seed: the shared seed when ``seeds`` is None.
      optimizer, init_scale, tol, patience, divergence_factor, stop_at_convergence,
      snapshot_steps, reference, progress_every, engine, log_every: as in ``fit``.
      chunk_size: most runs per compiled call; None picks one from the output size.

    Returns:
      A ``SweepResult``, grid axes first and steps last.

    Example:
      >>> import numpy as np
      >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
      >>> result = sweep(X, y, learning_rates=[0.01, 0.3, 2.0], num_steps=100)
      >>> result.losses.shape, result.diverged.tolist(), result.best()
      ((3, 100), [False, False, True], (1,))
    """
    rates = check_learning_rates(learning_rates)
    seed_axis = seeds is not None
    seed_list = [check_seed(s, "seeds") for s in (seeds if seed_axis else [seed])]
    if not seed_list:
        raise ValueError("seeds is empty: give at least one seed, or None")
    config = make_config(num_steps, optimizer, init_scale, tol, patience, divergence_factor,
                         stop_at_convergence, snapshot_steps, progress_every, log_every)
    K, S = rates.size, len(seed_list)
    chosen, data = device_data(X, y, engine, config.num_steps, K * S)
    if chunk_size is None:
        d = X.shape[1] if hasattr(X, "shape") else len(X[0])
        chunk_size = auto_chunk_size(-(-config.num_steps // config.log_every), d,
                                     len(config.snapshot_steps))
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    dtype = jnp.result_type(float)
    member_rates = np.repeat(rates, S).astype(dtype)  # learning-rate-major grid order
    member_seeds = np.tile(np.asarray(seed_list, np.uint32), K)
    run = _run_members(data, member_rates, member_seeds, config, chunk_size)
    run = jax.tree_util.tree_map(lambda leaf: leaf.reshape(K, S, *leaf.shape[1:]), run)
    run = _shared_steps(run)
    if not seed_axis:
        run = _drop_seed_axis(run)
    return SweepResult(
        **run._asdict(),
        learning_rates=jnp.asarray(rates, dtype),
        seeds=jnp.asarray(seed_list, jnp.uint32) if seed_axis else None,
        engine=chosen,
        optimal_loss=solve(X, y).loss if reference else None,
    )


def chunk_count(num_runs: int, chunk_size: int) -> int:
    """How many compiled calls a sweep of ``num_runs`` makes."""
    return math.ceil(num_runs / chunk_size)


def _run_members(data, rates: np.ndarray, seeds: np.ndarray, config: RunConfig,
                 chunk_size: int) -> Descent:
    num_runs = rates.size
    if num_runs <= chunk_size:
        return _sweep_compiled(data, jnp.asarray(rates), jnp.asarray(seeds), config)
    gathered = None
    for index, start in enumerate(range(0, num_runs, chunk_size)):
        stop = min(start + chunk_size, num_runs)
        # Pad the last chunk with copies of its first member: the same shapes, no recompile.
        take = np.concatenate([np.arange(start, stop), np.full(chunk_size - (stop - start),
                                                               start)])
        with progress.shifted(index * config.num_steps):
            part = _sweep_compiled(data, jnp.asarray(rates[take]), jnp.asarray(seeds[take]),
                                   config)
            part = jax.device_get(part)
        if gathered is None:
            gathered = jax.tree_util.tree_map(
                lambda leaf: np.empty((num_runs, *leaf.shape[1:]), leaf.dtype), part)
        for out, leaf in zip(jax.tree_util.tree_leaves(gathered),
                             jax.tree_util.tree_leaves(part), strict=True):
            out[start:stop] = leaf[: stop - start]
    return gathered


def _shared_steps(run: Descent) -> Descent:
    # vmap gives every run its own copy of the (identical) step lists; keep one.
    first = lambda steps: steps[(0,) * (steps.ndim - 1)]  # noqa: E731
    return run._replace(snapshot_steps=first(run.snapshot_steps),
                        loss_steps=first(run.loss_steps))


def _drop_seed_axis(run: Descent) -> Descent:
    shared = {"snapshot_steps": run.snapshot_steps, "loss_steps": run.loss_steps}
    run = run._replace(snapshot_steps=None, loss_steps=None)
    run = jax.tree_util.tree_map(lambda leaf: leaf[:, 0], run)
    return run._replace(**shared)
