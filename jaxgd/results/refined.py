"""``Refinement``: what refining a search's best points did, point by point.

``grid_sweep(..., refine=...)`` (``jaxgd.tuning.refinement``) returns it as the result's
``refined``; ``save`` stores it field by field (``jaxgd.results.saving``).
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

if TYPE_CHECKING:
    from jaxgd.results.result import GridResult


@partial(jax.tree_util.register_dataclass,
         data_fields=["start", "path", "objective", "step_size", "gradient", "runs"],
         meta_fields=[])
@dataclasses.dataclass(frozen=True)
class Refinement:
    """What refinement did, point by point (``top`` points; best start first).

    Attributes:
      start: ``(top, grid ndim)`` grid indices of the start points in the search's result
        (with k folds the fold axis left out, as in ``best()``).
      path: name -> ``(top, steps + 1)`` values of each refined hyperparameter, from the start
        point (column 0) through every step.
      objective: ``(top, steps + 1)`` the objective along the path; it never rises.
      step_size: ``(top, steps)`` the accepted step's length in unit coordinates (0: every
        trial was rejected: worse, diverged or above the stability limit).
      gradient: name -> ``(top, steps)`` the hypergradient at each step's start point: the
        objective's derivative with respect to the name's unit coordinate.
      runs: the refined end points run in full, a ``GridResult`` over one "sample" axis
        (``runs.point(i)`` names every hyperparameter of run i, ``runs.best()`` the best);
        with k folds over ("sample", "fold").
    """

    start: np.ndarray
    path: dict[str, Any]
    objective: Any
    step_size: Any
    gradient: dict[str, Any]
    runs: GridResult
