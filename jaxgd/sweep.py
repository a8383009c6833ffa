"""``sweep``: many learning rates (and seeds) as one compiled, vmapped program."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd import convergence
from jaxgd.descent import Descent
from jaxgd.fit import (
    FitResult,
    OptimizerFactory,
    RunConfig,
    as_device_data,
    check_seed,
    make_config,
    train,
)
from jaxgd.least_squares import solve
from jaxgd.params import LinearParams
from jaxgd.validation import check_learning_rates


class SweepResult(NamedTuple):
    """The outcome of ``sweep``: every field has the grid's axes first, steps last.

    The grid is (learning rate,) without seeds and (learning rate, seed) with them, so
    ``losses`` is ``(K, num_steps)`` or ``(K, S, num_steps)``; ``params.weight`` is
    ``(K, [S,] n_features)``; ``snapshots.weight`` is ``(K, [S,] n_snapshots, n_features)``.

    Attributes:
      params, losses, final_loss, converged_step, diverged, diverged_step, snapshots:
        as in ``FitResult``, per grid point.
      snapshot_steps: ``(n_snapshots,)``, shared by every run.
      learning_rates: ``(K,)``.
      seeds: ``(S,)``, or None when the sweep had no seed axis.
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
    learning_rates: jax.Array
    seeds: jax.Array | None = None
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
        depth = self.learning_rates.ndim + (0 if self.seeds is None else 1)
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
            learning_rate=self.learning_rates[index[0]],
            optimal_loss=self.optimal_loss,
        )


@partial(jax.jit, static_argnames="config")
def _sweep_compiled(X, y, learning_rates, seeds, config: RunConfig) -> Descent:
    run = partial(train, X, y, config=config)
    over_seeds = jax.vmap(run, in_axes=(None, 0))
    over_grid = jax.vmap(over_seeds, in_axes=(0, None))
    return over_grid(learning_rates, seeds)


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
) -> SweepResult:
    """Runs ``fit`` for every learning rate (and every seed) as ONE compiled, vmapped program.

    Learning rates and seeds are traced values: another sweep with the same number of them
    (and the same data shapes and options) reuses the compiled program. Each member equals
    the ``fit`` with the same learning rate and seed. A diverging member is flagged and does
    not disturb the others.

    Args:
      X: features, shape ``(n_samples, n_features)``.
      y: targets, shape ``(n_samples,)``.
      learning_rates: K finite positive learning rates.
      num_steps: number of updates per run.
      seeds: S seeds for the starting points; the grid is then (K, S). Without it every
        run starts from ``seed``'s draw and the grid is (K,).
      seed: the shared seed when ``seeds`` is None.
      optimizer, init_scale, tol, patience, divergence_factor, stop_at_convergence,
      snapshot_steps, reference, progress_every: as in ``fit``.

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
                         stop_at_convergence, snapshot_steps, progress_every)
    X_dev, y_dev = as_device_data(X, y)
    rates_dev = jnp.asarray(rates, X_dev.dtype)
    seeds_dev = jnp.asarray(seed_list, jnp.uint32)
    run = _sweep_compiled(X_dev, y_dev, rates_dev, seeds_dev, config)
    if not seed_axis:
        run = jax.tree_util.tree_map(lambda leaf: leaf[:, 0], run)
    return SweepResult(
        **_shared_steps(run)._asdict(),
        learning_rates=rates_dev,
        seeds=seeds_dev if seed_axis else None,
        optimal_loss=solve(X, y).loss if reference else None,
    )


def _shared_steps(run: Descent) -> Descent:
    # vmap gives every run its own copy of the (identical) snapshot steps; keep one.
    steps = run.snapshot_steps
    return run._replace(snapshot_steps=steps[(0,) * (steps.ndim - 1)])
