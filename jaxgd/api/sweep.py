"""``sweep``: many learning rates (and seeds) as one compiled, vmapped program."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jaxgd.api import settings
from jaxgd.api.grid import run_grid
from jaxgd.core.custom_model import Model
from jaxgd.core.record import PER_RUN, SHARED
from jaxgd.inputs.validation import check_learning_rates, default_float
from jaxgd.results.result import SweepResult


def sweep(
    X,
    y,
    *,
    learning_rates: Sequence[float],
    num_steps: int | None = None,
    seeds: Sequence[int] | None = None,
    seed: int = 0,
    optimizer: settings.OptimizerLike = None, l2: float = 0.0, init: settings.Start = 0.01,
    batches: settings.MiniBatches | None = None, stopping: settings.Stopping | None = None,
    record: settings.Record | None = None, validation: settings.HeldOut = None,
    engine: str = "auto", placement: settings.Placement | None = None,
    model: Model | None = None,
) -> SweepResult:
    """Runs ``fit`` for every learning rate (and every seed) as ONE compiled, vmapped program.

    Learning rates and seeds are traced values: another sweep with the same number of them
    (and the same data shapes and options) reuses the compiled program. Each member equals
    the ``fit`` with the same learning rate and seed, to float rounding. A diverging member
    is flagged and does not disturb the others. Runs are spread over every local device,
    and a sweep larger than ``Placement.chunk_size`` runs chunk by chunk (see
    ``grid_sweep``, of which this is the learning-rate × seed case). For learning rates
    drawn at random, pass
    ``jaxgd.tuning.search.draw({"learning_rate": ("log", 1e-4, 1.0)}, 64)["learning_rate"]`` as
    ``learning_rates``, or ``grid_sweep(sample=jaxgd.Sample(...))`` for more hyperparameters.

    Args:
      X: features, shape ``(n_samples, n_features)``; or the data's ``SufficientStats``,
        or a file's rows as a ``jaxgd.datasets.RowSource``, with y None (as in ``fit``).
      y: targets, shape ``(n_samples,)``, matched to X's rows by position (as in ``fit``).
      learning_rates: K finite positive learning rates.
      num_steps: number of updates per run.
      seeds: S seeds for the starting points; the grid is then (K, S). Without it every
        run starts from ``seed``'s draw and the grid is (K,).
      seed: the shared seed when ``seeds`` is None.
      init: the scale of the seeds' random starts (0: zeros), or the start of every run
        instead (a ``LinearParams``, as in ``fit``: every seed then starts there), or one
        per run, with the result's axes in front: weight ``(K, n_features)`` and bias
        ``(K,)``, or ``(K, S, ...)`` with seeds (and a last axis k with k folds; an axis of
        1 is shared: ``(K, 1, n_features)`` gives each rate one start for all its seeds);
        ``init=previous.params`` continues.
      optimizer: a name, an optax factory or a ``jaxgd.Optimizer``, as in ``fit``.
      l2: ridge strength, as in ``fit``.
      batches: ``jaxgd.MiniBatches`` for mini-batch SGD, as in ``fit`` (then leave
        num_steps out); its ``seed`` is one batch order for every run (None: each run's
        seed picks its own; for a ``RowSource``, 0).
      stopping: ``jaxgd.Stopping``, as in ``fit`` and ``grid_sweep`` (pruning too).
      record: ``jaxgd.Record``, as in ``fit``.
      validation: held-out rows or ``jaxgd.Holdout``, as in ``fit``, or
        ``jaxgd.KFolds(k)``: k-fold cross-validation, a last axis "fold" (see
        ``grid_sweep``).
      engine: the engine, as in ``fit``.
      placement: ``jaxgd.Placement``: chunk_size, sharding and unroll (see ``grid_sweep``).

      model: a ``jaxgd.Model`` to train instead of linear regression, as in ``fit`` (every
        run starts at its ``init``, or at ``init=`` given as a pytree of its structure,
        shared or one per run with the result's axes in front, e.g. ``previous.params``;
        seeds change nothing there).
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
    options = settings.options(locals())
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
