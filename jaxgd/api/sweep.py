"""``sweep``: many learning rates (and seeds) as one compiled, vmapped program."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from jaxgd.api.grid import run_grid
from jaxgd.core import convergence
from jaxgd.core.custom_model import Model
from jaxgd.core.params import LinearParams
from jaxgd.core.record import PER_RUN, SHARED
from jaxgd.inputs.validation import check_learning_rates, default_float
from jaxgd.pipeline.training import OptimizerFactory, Options
from jaxgd.results.result import SweepResult


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
    unroll: int | None = None,
    chunk_size: int | None = None,
    sharding_mode: str = "runs",
    segment_steps: int | None = None,
    pruning: str | None = None,
    halving_rate: int = 3,
    min_steps: int | None = None,
    track_sharpness: bool = False,
    validation: tuple | None = None,
    validation_fraction: float | None = None,
    validation_seed: int | None = None,
    k_folds: int | None = None,
    init: LinearParams | None = None,
    model: Model | None = None,
) -> SweepResult:
    """Runs ``fit`` for every learning rate (and every seed) as ONE compiled, vmapped program.

    Learning rates and seeds are traced values: another sweep with the same number of them
    (and the same data shapes and options) reuses the compiled program. Each member equals
    the ``fit`` with the same learning rate and seed, to float rounding. A diverging member
    is flagged and does not disturb the others. Runs are spread over every local device,
    and a sweep larger than ``chunk_size`` runs chunk by chunk (see ``grid_sweep``, of which
    this is the learning-rate × seed case). For learning rates drawn at random, pass
    ``jaxgd.tuning.search.draw({"learning_rate": ("log", 1e-4, 1.0)}, 64)["learning_rate"]`` as
    ``learning_rates``, or use ``grid_sweep(sample=...)`` for more hyperparameters.

    The keyword arguments not listed below mean what they mean in ``fit``: optimizer,
    schedule, schedule_steps, hyperparameters, l2, init_scale, tol, patience,
    divergence_factor, stop_at_convergence, snapshot_steps, reference, progress_every,
    engine, log_every, track_sharpness, unroll; and in ``grid_sweep``: chunk_size,
    sharding_mode, segment_steps, pruning, halving_rate, min_steps, validation,
    validation_fraction, validation_seed and k_folds (k folds add a last axis, "fold").

    Args:
      X: features, shape ``(n_samples, n_features)``; or the data's ``SufficientStats``,
        or a file's rows as a ``jaxgd.datasets.RowSource``, with y None (as in ``fit``).
      y: targets, shape ``(n_samples,)``, matched to X's rows by position (as in ``fit``).
      learning_rates: K finite positive learning rates.
      num_steps: number of updates per run.
      seeds: S seeds for the starting points; the grid is then (K, S). Without it every
        run starts from ``seed``'s draw and the grid is (K,).
      seed: the shared seed when ``seeds`` is None.
      init: the start of every run instead of the seeds' draws (a ``LinearParams``, as in
        ``fit``: every seed then starts there), or one per run, with the result's axes in
        front: weight ``(K, n_features)`` and bias ``(K,)``, or ``(K, S, ...)`` with seeds
        (and a last axis k with k folds; an axis of 1 is shared: ``(K, 1, n_features)``
        gives each rate one start for all its seeds); ``init=previous.params`` continues.
      model: a ``jaxgd.Model`` to train instead of linear regression, as in ``fit`` (every
        run starts at its ``init``, so seeds change nothing there).
      batch_size: mini-batch SGD: rows per step, as in ``fit`` (then leave num_steps out).
      epochs: mini-batch SGD: passes over the data.
      batch_seed: one batch order for every run (None: each run's seed picks its own; for
        a ``RowSource``, 0).

    Returns:
      A ``SweepResult``, grid axes first and steps last; ``best()`` picks by held-out
      loss when there is one.

    Example:
      >>> import numpy as np
      >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
      >>> result = sweep(X, y, learning_rates=[0.01, 0.3, 2.0], num_steps=100)
      >>> result.losses.shape, result.diverged.tolist(), result.best()
      ((3, 100), [False, False, True], (1,))
    """
    options = Options.of(locals())
    rates = check_learning_rates(learning_rates)
    seed_axis = seeds is not None
    if seed_axis and np.ndim(seeds) != 1:
        raise ValueError(f"seeds must be a list of seeds, got {seeds!r}")
    if seed_axis and len(seeds) == 0:
        raise ValueError("seeds is empty: give at least one seed, or None")
    grid = {"learning_rate": rates, "seed": seeds} if seed_axis else {
        "learning_rate": rates}
    result = run_grid(X, y, grid, options)
    fields = {name: getattr(result, name) for name in (*PER_RUN, *SHARED)}
    return SweepResult(
        **fields,
        learning_rates=result.values["learning_rate"].astype(default_float()),
        seeds=result.values["seed"] if seed_axis else None,
        folds=result.values.get("fold"),
        engine=result.engine,
        reference=result.reference,
        feature_names=result.feature_names,
        target_name=result.target_name,
        num_steps=result.num_steps,
        model=result.model,
    )
