"""``sweep``: many learning rates (and seeds) as one compiled, vmapped program."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import numpy as np

from jaxgd import convergence
from jaxgd.fit import FitResult, OptimizerFactory
from jaxgd.grid import GridResult, grid_sweep
from jaxgd.params import LinearParams
from jaxgd.validation import check_learning_rates


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
      engine: the engine that ran, "direct", "gram" or "eigen".
      optimal_loss: least-squares MSE (float64) when ``reference=True``, else None.
      epoch_losses: mini-batch runs: ``(K, [S,] epochs + 1)`` full-data losses, else None.
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
    epoch_losses: jax.Array | None = None

    @property
    def converged(self) -> jax.Array:
        """Per run: whether it converged."""
        return self.converged_step >= 0

    @property
    def gap(self) -> np.ndarray:
        """Per run: ``final_loss - optimal_loss``."""
        return self._as_grid().gap

    def best(self) -> tuple[int, ...]:
        """Grid index of the lowest final loss among runs that did not diverge.

        Raises:
          ValueError: if every run diverged (there is no best run to report).
        """
        return self._as_grid().best()

    def run(self, index: int | tuple[int, ...]) -> FitResult:
        """One grid point as a ``FitResult``, e.g. ``result.run(result.best())``."""
        index = (index,) if isinstance(index, int | np.integer) else tuple(index)
        return self._as_grid().run(index)

    def _as_grid(self) -> GridResult:
        axes = ("learning_rate",) if self.seeds is None else ("learning_rate", "seed")
        values = {"learning_rate": np.asarray(self.learning_rates)}
        if self.seeds is not None:
            values["seed"] = np.asarray(self.seeds)
        fields = {k: v for k, v in self._asdict().items()
                  if k not in ("learning_rates", "seeds")}
        return GridResult(**fields, axes=axes, values=values, fixed={})


def sweep(
    X,
    y,
    *,
    learning_rates: Sequence[float],
    num_steps: int | None = None,
    seeds: Sequence[int] | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    epochs: int | None = None,
    batch_seed: int | None = None,
    optimizer: str | OptimizerFactory | None = None,
    schedule: str = "constant",
    schedule_steps: Mapping[str, int] | None = None,
    hyperparameters: Mapping[str, float] | None = None,
    l2: float = 0.0,
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
    sharding_mode: str = "runs",
) -> SweepResult:
    """Runs ``fit`` for every learning rate (and every seed) as ONE compiled, vmapped program.

    Learning rates and seeds are traced values: another sweep with the same number of them
    (and the same data shapes and options) reuses the compiled program. Each member equals
    the ``fit`` with the same learning rate and seed, to float rounding. A diverging member
    is flagged and does not disturb the others. Runs are spread over every local device,
    and a sweep larger than ``chunk_size`` runs chunk by chunk (see ``grid_sweep``, of which
    this is the learning-rate × seed case).

    Args:
      X: features, shape ``(n_samples, n_features)``; or the data's ``SufficientStats``,
        or a file's rows as a ``jaxgd.datasets.RowSource``, with y None (as in ``fit``).
      y: targets, shape ``(n_samples,)``.
      learning_rates: K finite positive learning rates.
      num_steps: number of updates per run.
      seeds: S seeds for the starting points; the grid is then (K, S). Without it every
        run starts from ``seed``'s draw and the grid is (K,).
      seed: the shared seed when ``seeds`` is None.
      batch_size, epochs: mini-batch SGD, as in ``fit`` (then leave num_steps out).
      batch_seed: one batch order for every run (None: each run's seed picks its own; for
        a ``RowSource``, 0).
      optimizer, schedule, schedule_steps, hyperparameters, l2, init_scale, tol, patience,
      divergence_factor, stop_at_convergence, snapshot_steps, reference, progress_every,
      engine, log_every: as in ``fit``.
      chunk_size, sharding_mode: as in ``grid_sweep``.

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
    if seed_axis and np.ndim(seeds) != 1:
        raise ValueError(f"seeds must be a list of seeds, got {seeds!r}")
    if seed_axis and len(seeds) == 0:
        raise ValueError("seeds is empty: give at least one seed, or None")
    grid = {"learning_rate": rates, "seed": list(seeds)} if seed_axis else {
        "learning_rate": rates}
    result = grid_sweep(
        X, y, grid=grid, num_steps=num_steps, seed=seed, batch_size=batch_size, epochs=epochs,
        batch_seed=batch_seed, l2=l2,
        optimizer=optimizer, schedule=schedule, schedule_steps=schedule_steps,
        hyperparameters=hyperparameters, init_scale=init_scale, tol=tol, patience=patience,
        divergence_factor=divergence_factor, stop_at_convergence=stop_at_convergence,
        snapshot_steps=snapshot_steps, reference=reference, progress_every=progress_every,
        engine=engine, log_every=log_every, chunk_size=chunk_size,
        sharding_mode=sharding_mode,
    )
    per_run = ("params", "losses", "final_loss", "converged_step", "diverged",
               "diverged_step", "snapshots", "epoch_losses")
    fields = {name: getattr(result, name) for name in per_run}
    return SweepResult(
        **fields,
        snapshot_steps=result.snapshot_steps,
        loss_steps=result.loss_steps,
        learning_rates=result.values["learning_rate"].astype(jax.numpy.result_type(float)),
        seeds=result.values["seed"] if seed_axis else None,
        engine=result.engine,
        optimal_loss=result.optimal_loss,
    )
