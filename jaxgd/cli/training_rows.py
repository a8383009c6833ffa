"""The rows a ``jaxgd run`` trains on when it holds rows out, and the numbers that follow.

With ``data.validation_fraction`` or ``data.k_folds`` the library draws the held-out rows
inside ``grid_sweep`` (``jaxgd.pipeline.holdout``); the runs never train on them. Everything the
command line reports about training must then come from the same training rows, drawn the
same way (``training_mask``, by ``jaxgd.pipeline.holdout.training_mask`` and ``fold_ids`` with the
runs' ``validation_seed``): the ``Standardizer``'s mean and scale, and the stability limits
(``fold_limits``), as the library's own per-run stability verdicts do
(``jaxgd.api.grid``: the split's training rows, or each fold's).

With k folds every fold trains on other rows, so every fold has its own limit: the plan
reports the smallest (``reported``: every rate below it is stable on every fold) and each
run's explanation uses its own fold's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxgd.cli.settings import holdout_options
from jaxgd.pipeline import holdout
from jaxgd.theory.stability import Stability, stability

if TYPE_CHECKING:
    from jaxgd.cli.config import Config


def num_folds(config: Config) -> int:
    """How many training sets the runs have: k with k folds, else 1."""
    return getattr(config.data, "k_folds", None) or 1


def training_mask(config: Config, n_rows: int, fold: int = 0) -> np.ndarray | None:
    """Which of the ``n_rows`` rows the runs of ``fold`` train on (True), drawn as the
    library draws them; None without held-out data (every row).

    Example:
      >>> from jaxgd.cli.config import parse
      >>> config = parse("[data]\\nk_folds = 3\\n[optimizer]\\nlearning_rate = 0.1\\n")
      >>> [int(training_mask(config, 9, fold).sum()) for fold in range(3)]
      [6, 6, 6]
    """
    options = holdout_options(config)
    if not options:
        return None
    seed = options["validation_seed"]
    if "k_folds" in options:
        return holdout.fold_ids(n_rows, options["k_folds"], seed) != fold
    return holdout.training_mask(n_rows, options["validation_fraction"], seed)


def training_rows(X, config: Config, fold: int = 0):
    """The rows of ``X`` (an array, or streamed data's moments) the runs of ``fold`` train
    on: ``X`` itself without held-out data."""
    if not holdout_options(config):
        return X
    return X[training_mask(config, np.shape(X)[0], fold)]


def fold_limits(X, config: Config, l2: float, kind: dict[str, Any]) -> tuple[Stability, ...]:
    """``jaxgd.stability`` of each fold's training rows at ``l2`` (one entry without k
    folds), for the optimizer ``kind`` (``jaxgd.cli.plan.limit_kind``)."""
    return tuple(stability(training_rows(X, config, fold), l2=l2, **kind)
                 for fold in range(num_folds(config)))


def reported(limits: Sequence[Stability]) -> int:
    """Which of the folds' ``limits`` a run reports: the smallest limit (every rate below
    it is stable on every fold); the first among equals.

    Example:
      >>> X = np.array([[-1.0], [1.0]])
      >>> reported([stability(X), stability(2 * X), stability(2 * X)])
      1
    """
    return int(np.argmin([limit.max_learning_rate for limit in limits]))


__all__ = ["fold_limits", "holdout_options", "num_folds", "reported",
           "training_mask", "training_rows"]
