"""``check_settings``: a run's settings refused for its data's kind and size, up front.

The refusals are the pipeline's own, asked in the order a run asks them: ``make_config``
(steps, mini-batches, snapshots, the stopping rule, what is recorded), the grid's axes
(``jaxgd.pipeline.problem.grid_axes``), the engine's choice (``pick_engine``), the early
exit's plan (``jaxgd.tuning.segments.make_plan``) and what refinement can follow. Only the
data's kind and shape are read: nothing is copied, sent to a device or read from a file.
``fit`` and ``grid_sweep`` ask it for a ``RowSource`` before the file is read; the command
line asks it before it writes anything (``jaxgd.cli.plan``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxgd.data.statistics import SufficientStats
from jaxgd.datasets.stream import RowSource
from jaxgd.pipeline import holdout, streaming
from jaxgd.pipeline.options import Options, RunConfig, make_config
from jaxgd.pipeline.preparation import pick_engine
from jaxgd.pipeline.problem import grid_axes
from jaxgd.tuning import refinement, segments


def check_settings(X, options: Options, grid: Mapping[str, Sequence[float]] | None = None,
                   points: Mapping[str, np.ndarray] | None = None,
                   refine: refinement.Plan | None = None,
                   n_rows: int | None = None) -> RunConfig:
    """Refuses what the run of ``options`` (and of ``grid``, drawn ``points``, a checked
    ``refine``) on data like ``X`` would refuse, before anything is prepared.

    Args:
      X: rows (only their shape is read), their ``SufficientStats``, or a ``RowSource``.
      options: the run's settings.
      grid, points: a grid's axes and drawn points, as ``grid_sweep`` takes them; None for
        one run.
      refine: a checked ``refine=`` plan (``jaxgd.tuning.refinement.make_plan``).
      n_rows: a ``RowSource``'s rows, when known (else ``batch_size`` stands in, and what
        needs the true count, the snapshot steps' range, waits until the file is read).

    Returns:
      The run's checked ``RunConfig``.

    Raises:
      TypeError, ValueError: the pipeline's own refusal, naming the setting.

    Example:
      >>> import numpy as np
      >>> check_settings(np.zeros((10, 2)), Options(num_steps=5)).num_steps
      5
      >>> try:
      ...     check_settings(np.zeros((10, 2)), Options(num_steps=5, engine="eigen",
      ...                                               optimizer="adam"))
      ... except ValueError as error:
      ...     print(str(error)[:40])
      engine='eigen' is exact only for sgd, mo
    """
    kind, rows, width = _extent(X, options, n_rows)
    if isinstance(X, RowSource) and n_rows is None:
        # Rows not counted yet: a stand-in count, so no rule that needs the true one (the
        # snapshot steps against the steps an epoch takes); those come once it is read.
        options = dataclasses.replace(options, snapshot_steps=None)
    config = make_config(options, _training_rows(rows, options))
    axes, values = ((), {}) if grid is None and points is None else grid_axes(
        grid or {}, points, config, holdout.Folds(None, options.k_folds)
        if options.k_folds is not None else None)
    if kind == "file":
        streaming.batch_seed_of(options.batch_seed, grid)
        if refine is not None:
            raise ValueError("refine= differentiates through the run: not with rows read "
                             "from a file (a RowSource); load the rows, or use their "
                             "statistics")
    varied = "l2" in values
    pick_engine(kind, options.engine, config, rows, width,
                math.prod(np.size(values[axis]) for axis in axes), None if varied else options.l2)
    segments.make_plan(options, config)
    return config


def _extent(X, options: Options, n_rows: int | None) -> tuple[str, int, int]:
    """The data's kind ("rows", "moments", or a "file" read batch by batch), rows and
    features, from their shape alone."""
    if isinstance(X, RowSource):
        width = 0 if X.features is None else len(X.features)
        rows = n_rows if n_rows is not None else options.batch_size or 0
        return "moments" if options.batch_size is None else "file", rows, width
    if isinstance(X, SufficientStats):
        return "moments", int(X.n), int(np.shape(X.mean_x)[0])
    shape = np.shape(X)
    return "rows", int(shape[0]), int(shape[1]) if len(shape) > 1 else 1


def _training_rows(rows: int, options: Options) -> int:
    """The rows the runs train on: held-out rows drawn by a fraction are not among them
    (k folds keep every row, weighing out each fold's)."""
    fraction: Any = options.validation_fraction
    return rows - holdout.check_fraction(fraction, rows) if fraction is not None else rows
