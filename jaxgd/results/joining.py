"""Joining ``GridResult``s along their first axis, and taking rows of it, on the host.

A sweep too large for one program (or run piece by piece so that a killed run resumes, as
``jaxgd run`` does) is several ``grid_sweep`` calls over parts of the first axis (learning
rates, or drawn points). ``concatenate`` joins their results into the one ``grid_sweep``
over all the first-axis values would have returned: the same per-run arrays, bit for bit,
where every part ran the same program (the same batch shape); ``take`` keeps some rows of
the first axis (e.g. drops the copies a last part was padded with to keep that shape).

Both work on concrete arrays (NumPy, or JAX arrays that they copy to the host), not under
``jit``; the held-out ``errors`` stay lazy.

Example:
  >>> import numpy as np, jaxgd
  >>> from jaxgd.results.joining import concatenate
  >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
  >>> parts = [jaxgd.grid_sweep(X, y, grid={"learning_rate": rates}, num_steps=20)
  ...          for rates in ([0.1, 0.2], [0.3, 0.4])]
  >>> whole = concatenate(parts)
  >>> whole.losses.shape, whole.values["learning_rate"].tolist()
  ((4, 20), [0.1, 0.2, 0.3, 0.4])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from jaxgd.core.record import PER_RUN, SAMPLE_AXIS, SHARED, freeze, thaw
from jaxgd.results.errors import LazyErrors
from jaxgd.results.result import GridResult

#: What every joined result must share (static metadata), compared as they are.
_SAME = ("axes", "engine", "feature_names", "target_name", "num_steps", "model")


def concatenate(results: Sequence[GridResult]) -> GridResult:
    """Joins results of one problem along their first axis, in order.

    The per-run fields (``losses``, ``params``, ``snapshots``, ``errors``, ``pruned_step``,
    ``observed``, held-out losses, every fold ...) and the first axis's values are
    concatenated; with drawn points (a "sample" axis) each drawn hyperparameter's values
    too, and the points are numbered again 0, 1, ... A reference loss that varies along
    the first axis (l2 drawn per point) is joined as well. With pruning (``pruned_step``)
    each part was its own race: its runs are pruned as they were in it, not as one sweep
    over every part would have pruned them.

    Args:
      results: ``GridResult``s with the same axes, the same values on every axis but the
        first, the same fixed values, steps, engine and data names (parts of one sweep);
        none refined (a refinement belongs to one sweep's best points: refine the whole).

    Returns:
      A ``GridResult`` whose first axis holds every part's, in order; its per-run arrays
      are NumPy arrays.

    Raises:
      ValueError: if ``results`` is empty or two of them are not parts of one sweep,
        naming the part and what differs.
      TypeError: if one is not a ``GridResult`` (a ``SweepResult``: use ``as_grid()``).

    Example:
      >>> import numpy as np, jaxgd
      >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
      >>> a, b = (jaxgd.grid_sweep(X, y, grid={"learning_rate": [r], "seed": [0, 1]},
      ...                          num_steps=5) for r in (0.1, 0.3))
      >>> concatenate([a, b]).final_loss.shape
      (2, 2)
    """
    results = list(results)
    if not results:
        raise ValueError("results is empty: give at least one GridResult to concatenate")
    for i, result in enumerate(results):
        if not isinstance(result, GridResult):
            raise TypeError(f"results[{i}] is a {type(result).__name__}, not a GridResult "
                            f"(a SweepResult's as_grid() is one)")
        problem = _unlike(results[0], result)
        if problem:
            raise ValueError(f"results[{i}] is not a part of the sweep of results[0]: {problem}")
    return _rebuilt(results, lambda *leaves: np.concatenate([np.asarray(a) for a in leaves]))


def take(result: GridResult, rows: slice | Sequence[int] | np.ndarray) -> GridResult:
    """The runs at ``rows`` of the first axis (a slice or indices), as a ``GridResult``;
    drawn points are numbered again 0, 1, ...

    Example:
      >>> import numpy as np, jaxgd
      >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
      >>> r = jaxgd.grid_sweep(X, y, grid={"learning_rate": [0.1, 0.2, 0.3]}, num_steps=5)
      >>> take(r, slice(0, 2)).values["learning_rate"].tolist()
      [0.1, 0.2]
    """
    if not isinstance(result, GridResult):
        raise TypeError(f"result is a {type(result).__name__}, not a GridResult")
    if not isinstance(rows, slice) and np.ndim(rows) == 0:  # would drop the first axis
        raise TypeError(f"rows must be a slice or a sequence of indices, got {rows!r}: "
                        "take(result, [i]) keeps the one row i")
    if result.refined is not None:
        raise ValueError("result is refined: its refinement belongs to all its runs")
    return _rebuilt([result], lambda leaf: np.asarray(leaf)[rows])


def _rebuilt(results: list[GridResult], join: Callable[..., np.ndarray]) -> GridResult:
    """The first result with ``join`` applied along the first axis, over every result, to
    each per-run leaf, the first axis's values (and drawn values) and the reference."""
    first = results[0]
    along = (first.axes[0], *first.sampled)

    def joined(name: str) -> Any:
        parts = [getattr(r, name) for r in results]
        return None if parts[0] is None else jax.tree_util.tree_map(join, *parts)

    values = {**first.values, **{name: join(*(r.values[name] for r in results))
                                 for name in along}}
    if first.axes[0] == SAMPLE_AXIS:  # each part numbered its points from 0
        values[SAMPLE_AXIS] = np.arange(np.size(values[SAMPLE_AXIS]),
                                        dtype=np.asarray(first.values[SAMPLE_AXIS]).dtype)
    errors = None
    if first.errors is not None:  # computed when first read, as the parts' were
        sides = [r.errors for r in results]  # a side without rows is None: no leaves
        errors = LazyErrors(lambda: jax.tree_util.tree_map(join, *map(dict, sides)))
    return first._replace(
        **{name: joined(name) for name in PER_RUN if name != "errors"}, errors=errors,
        values=values, reference=_joined_reference(results, join))


def _joined_reference(results: list[GridResult], join: Callable[..., np.ndarray]) -> Any:
    """The reference loss: the parts' own where it is one for every run (a float, or an
    array that does not vary along the first axis); else joined along the first axis."""
    references = [thaw(r.reference) for r in results]
    first = references[0]
    if first is None or np.ndim(first) < len(results[0].axes):
        return results[0].reference
    # One row along the first axis is one value for every run only if every part has that
    # same value: a part of one row (an l2 drawn per point) cannot tell by its shape.
    if all(np.shape(a)[0] == 1 and _equal(a, first) for a in references):
        return results[0].reference
    rest = np.broadcast_shapes(*(np.shape(a)[1:] for a in references))
    return freeze(join(*(np.broadcast_to(a, (np.shape(r.final_loss)[0], *rest))
                         for a, r in zip(references, results, strict=True))))


def _unlike(first: GridResult, other: GridResult) -> str | None:
    """What keeps ``other`` from joining ``first`` along the first axis (None: nothing)."""
    for name in _SAME:
        if getattr(other, name) != getattr(first, name):
            return f"other {name} ({getattr(other, name)!r}, not {getattr(first, name)!r})"
    if first.refined is not None or other.refined is not None:
        return "a result is refined: refine the joined sweep instead"
    if set(other.values) != set(first.values) or set(other.fixed) != set(first.fixed):
        return "other drawn or fixed hyperparameters"
    for name in first.axes[1:]:
        if not _equal(first.values[name], other.values[name]):
            return f"other values on axis {name!r}"
    for name, value in first.fixed.items():
        if not _equal(value, other.fixed[name]):
            return f"another fixed {name}"
    for name in SHARED:
        if not _equal(getattr(first, name), getattr(other, name)):
            return f"other {name}"
    a, b = (thaw(r.reference) for r in (first, other))
    if (a is None) != (b is None) or (a is not None and np.ndim(a) != np.ndim(b)) or (
            a is not None and np.ndim(a) < len(first.axes) and not _equal(a, b)):
        return "another reference loss (not the same problem)"
    for name in PER_RUN:
        mine, theirs = getattr(first, name), getattr(other, name)
        if (mine is None) != (theirs is None):
            return f"{name} in one result only"
        if mine is not None and name != "errors" and jax.tree_util.tree_map(
                lambda leaf: np.shape(leaf)[1:], mine) != jax.tree_util.tree_map(
                lambda leaf: np.shape(leaf)[1:], theirs):
            return f"{name} of another shape after the first axis"
    return None


def _equal(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.all((a == b) | ((a != a) & (b != b))))
