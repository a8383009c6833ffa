"""A user's own model (``jaxgd.Model``) in ``fit``, ``sweep`` and ``grid_sweep``: the few
decisions that differ from linear regression, taken at the edges of the one pipeline.

- ``model_options``: checks the settings a model takes and resolves them: the direct path
  (naming a moment or fused engine is an error: they hold the data as the moments of a
  linear least-squares loss), and no float64 least-squares reference (no known optimum:
  the runs are judged by their losses alone).
- ``engine_for``: the engine value that runs (``jaxgd.engines.model``).

Refused with a model, each with its reason: ``l2`` (the loss is the model's: put a penalty in
it), a number as ``init=`` (the scale of the linear random start: a model's start is a
pytree like its ``init``), and data given as sufficient statistics or a file (the model
needs the rows).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from jaxgd.core.custom_model import Model
from jaxgd.data.statistics import SufficientStats
from jaxgd.datasets.stream import RowSource
from jaxgd.engines import engine as engines
from jaxgd.engines.model import model_engine
from jaxgd.inputs.validation import is_traced
from jaxgd.pipeline import streaming
from jaxgd.pipeline.options import Options


def model_options(options: Options, X=None, varied: tuple[Any, ...] = ()) -> Options:
    """``options`` for the runs of ``options.model`` (unchanged without one), checked.

    ``varied``: the grid and the drawn points (mappings by hyperparameter name, or None).

    Raises:
      TypeError: ``model`` is not a ``jaxgd.Model``.
      ValueError: naming the setting a model does not take, and why.
    """
    model = options.model
    if model is None:
        return options
    if not isinstance(model, Model):
        raise TypeError(f"model must be a jaxgd.Model(loss, init, predict=None), got "
                        f"{type(model).__name__}")
    if options.engine not in ("auto", "direct"):
        raise ValueError(f"engine={options.engine!r} computes the linear least-squares loss "
                         "from the data's moments; a model's own loss runs on the direct "
                         "path: leave engine out (or give 'direct')")
    if isinstance(X, SufficientStats | RowSource | streaming.Streamed):
        raise ValueError("a model trains on the rows X (an array): sufficient statistics "
                         "and files hold a linear model's data only")
    if is_traced(options.l2) or options.l2 != 0 or any(
            isinstance(names, Mapping) and "l2" in names for names in varied):
        raise ValueError("l2 is the linear model's ridge penalty; a model's loss is its own: "
                         "put a penalty in Model's loss instead")
    if options.init_scale != 0.01:
        raise ValueError("init is not taken as a number with model=: a number is the scale "
                         "of linear regression's random start; give the model's start as a "
                         "pytree like Model's init (e.g. a result's params)")
    return dataclasses.replace(options, engine="direct", reference=False)


def engine_for(options: Options, chosen: str) -> engines.Engine:
    """The engine value that runs: the model's, else the engine ``chosen`` by name."""
    if options.model is not None:
        return model_engine(options.model)
    return engines.BY_NAME[chosen]


__all__ = ["engine_for", "model_options"]
