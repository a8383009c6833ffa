"""Held-out data: validation splits, k folds, the held-out loss in the loop, and error metrics.

``fit``, ``sweep`` and ``grid_sweep`` take held-out data three ways (see ``resolve``):

- ``validation=(X_val, y_val)``: the caller's own held-out rows;
- ``validation_fraction=f``: that fraction of the rows, drawn by a seeded shuffle
  (``split``, seeded by ``validation_seed``, 0 by default, not by the runs' ``seed``: every
  run of a sweep, whatever its start, sees the same split);
- ``k_folds=k`` (sweeps only): k-fold cross-validation as one more grid axis, "fold", last.
  The rows are dealt to k folds by a seeded shuffle (``fold_ids``); the moment engines build
  each fold's training moments as all rows' minus the fold's block (``statistics.remove``),
  so no copy of X is made per fold. The direct engine keeps all rows and weighs the held-out
  ones out (``engine.Rows.weight``): each step then reads all n rows, k/(k-1) times the
  work of indexing the fold's training rows, but one X serves every fold and run.
  The fold ids are drawn once, on the host, from concrete rows; hyperparameters traced by
  the caller's ``jit`` or ``grad`` then run on those same folds, so the mean held-out loss
  over folds is a smooth function of l2 or the learning rate (rows traced by the caller are
  refused: their folds cannot be drawn).

Inside the compiled loop the held-out MSE is computed at each logged step
(``validation_loss``): from the rows for the direct engine, O(n_val·d); from the held-out
set's moments as a quadratic form (``jaxgd.engines.gram``) for the moment engines, O(d²) whatever
n_val is. The eigen engine's coordinates are mapped back to weight and bias first (O(d²)
per logged step, not per step). The validation loss is the plain MSE, never with the ridge
penalty: it is what selection compares across l2 values.

The fused engines (``jaxgd.engines.fused``) compute the same held-out loss in their kernel, from
the held-out moments as scalars (the eigen coordinates mapped back term by term), k folds
included (each run's fold's constants gathered once, outside the kernel). Held-out rows
traced by the caller's transformation are kept as rows (``held_out``), which the kernel
cannot read: those runs take the scan path, with the same numbers.

A diverged run's held-out numbers are NaN (``jaxgd.core.convergence.diverged_as_nan``):
``final_validation_loss`` and the validation side of ``errors`` (its held-out history
already is NaN after the blow-up). Its parameters are frozen where it blew up, so their
held-out error is finite but measures nothing: averaged over k folds it made a diverged
fold look like a valid estimate.

RMSE and MAE (``jaxgd.results.errors``) are computed on the host in float64 from the final
parameters, when first read (``LazyErrors``), from a copy of the data taken at the call, so a
sweep returns without waiting for its program; data past ``memo.MAX_BYTES`` (4 MiB) are not
copied into every result: their errors are computed in the call.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core import convergence
from jaxgd.core.params import LinearParams
from jaxgd.data import memo
from jaxgd.data.statistics import SufficientStats, on_device, remove, sufficient_statistics
from jaxgd.engines import engine as engines
from jaxgd.engines import gram
from jaxgd.engines.engine import Rows, rows_mse
from jaxgd.inputs import frames
from jaxgd.inputs.validation import check_data, check_positive_int, check_seed, is_traced
from jaxgd.results.errors import LazyErrors, errors, frozen

Held = Rows | gram.Quadratic


class Split(NamedTuple):
    """Held-out rows given or drawn (``X_val``, ``y_val``), for every run alike."""

    X_val: Any
    y_val: Any


class Folds(NamedTuple):
    """k-fold cross-validation: ``ids[i]`` is the fold row i is held out in."""

    ids: np.ndarray
    k: int


def check_fraction(fraction, n_rows: int, name: str = "validation_fraction") -> int:
    """The number of held-out rows for ``fraction`` of ``n_rows`` (rounded), checked.

    Example:
      >>> check_fraction(0.25, 10)
      2
    """
    if isinstance(fraction, bool) or not isinstance(fraction, int | float | np.floating):
        raise TypeError(f"{name} must be a number in (0, 1), got {fraction!r}")
    if not 0 < fraction < 1:  # NaN too
        raise ValueError(f"{name} must be in (0, 1), got {fraction}")
    held = int(np.rint(fraction * n_rows))
    if held < 2 or n_rows - held < 2:
        raise ValueError(f"{name}={fraction} of {n_rows} rows leaves {held} held-out and "
                         f"{n_rows - held} training rows: each side needs at least 2")
    return held


def split(X, y, fraction: float, seed: int = 0):
    """A seeded shuffled split: ``(X_train, y_train, X_val, y_val)``.

    The rows are permuted by ``np.random.default_rng(seed)``; the first
    ``round(fraction·n)`` of the permutation are held out (kept in their original order).

    Example:
      >>> X, y = np.arange(20.0).reshape(10, 2), np.arange(10.0)
      >>> X_train, y_train, X_val, y_val = split(X, y, 0.3, seed=0)
      >>> X_train.shape, X_val.shape, sorted(y_train.tolist() + y_val.tolist()) == list(y)
      ((7, 2), (3, 2), True)
    """
    X, y = check_data(X, y)
    train = training_mask(X.shape[0], fraction, seed)
    return X[train], y[train], X[~train], y[~train]


def training_mask(n_rows: int, fraction: float, seed: int = 0) -> np.ndarray:
    """Which rows ``split`` keeps for training (True) and holds out (False).

    Example:
      >>> training_mask(6, 0.5, seed=0).sum()
      np.int64(3)
    """
    held = check_fraction(fraction, n_rows)
    order = np.random.default_rng(check_seed(seed, "validation_seed")).permutation(n_rows)
    train = np.ones(n_rows, bool)
    train[order[:held]] = False
    return train


def check_folds(k, n_rows: int) -> int:
    """``k_folds`` checked: at least 2 folds, each of at least 2 of the ``n_rows`` rows.

    Example:
      >>> check_folds(3, 10)
      3
    """
    k = check_positive_int(k, "k_folds", minimum=2)
    if n_rows // k < 2:
        raise ValueError(f"k_folds={k} on {n_rows} rows leaves folds of {n_rows // k} rows: "
                         "each fold needs at least 2")
    return k


def fold_ids(n_rows: int, k: int, seed: int = 0) -> np.ndarray:
    """Each row's fold: a seeded shuffle (``np.random.default_rng(seed)``) dealt round-robin,
    so fold sizes differ by at most one.

    Example:
      >>> np.bincount(fold_ids(10, 3)).tolist()
      [4, 3, 3]
    """
    k = check_folds(k, n_rows)
    order = np.random.default_rng(check_seed(seed, "validation_seed")).permutation(n_rows)
    ids = np.empty(n_rows, np.int32)
    ids[order] = np.arange(n_rows) % k
    return ids


def resolve(X, y, options) -> tuple[Any, Any, Split | Folds | None]:
    """The training rows and the held-out plan from ``options.validation``,
    ``validation_fraction`` and ``k_folds`` (at most one of them), checked on the host.

    ``validation_seed`` (None: 0) seeds the draw of ``validation_fraction`` or ``k_folds``;
    given without either it would seed nothing, and is refused rather than ignored."""
    given = [name for name in ("validation", "validation_fraction", "k_folds")
             if getattr(options, name) is not None]
    if len(given) > 1:
        raise ValueError(f"give one of validation, validation_fraction, k_folds; got "
                         f"{' and '.join(given)}")
    drawn = bool(given) and given[0] != "validation"
    if options.validation_seed is not None and not drawn:
        what = "validation= rows are used as given" if given else "no rows are held out"
        raise ValueError(f"validation_seed seeds the draw of validation_fraction or k_folds, "
                         f"and {what}: leave validation_seed out, or give validation_fraction "
                         "or k_folds")
    if not given:
        return X, y, None
    if given[0] == "validation":
        return X, y, Split(*_check_validation(options.validation, X))
    _check_drawable(X, y, given[0])
    X, y = check_data(X, y)  # lists and tables become arrays, as everywhere else
    seed = 0 if options.validation_seed is None else options.validation_seed
    if given[0] == "validation_fraction":
        X, y, X_val, y_val = split(X, y, options.validation_fraction, seed)
        return X, y, Split(X_val, y_val)
    return X, y, Folds(fold_ids(X.shape[0], options.k_folds, seed), options.k_folds)


def _check_drawable(X, y, name: str) -> None:
    """Held-out rows are drawn on the host (a NumPy shuffle): they need concrete rows."""
    if y is None or isinstance(X, SufficientStats):
        raise ValueError(f"{name} needs the rows (X, y), to draw held-out rows from; with "
                         "sufficient statistics or a file give validation=(X_val, y_val)")
    if is_traced((X, y)):
        raise ValueError(f"{name} draws its held-out rows on the host, so it needs concrete "
                         "rows, but X or y is traced here (inside the caller's jit, vmap or "
                         "grad: its values are not known yet): draw them before the "
                         "transformation (jaxgd.pipeline.holdout.split or fold_ids) and give "
                         "validation=(X_val, y_val)")


def _rows(X, y) -> bool:
    return y is not None and not is_traced((X, y)) and not isinstance(X, SufficientStats) \
        and hasattr(X, "shape")


def check_validation_names(validation, X) -> None:
    """Refuses a ``validation`` table whose columns are not X's names in X's order.

    Matched to X's columns by position: a table with X's names in another order (or other
    names) would mean other features. A named X with an unnamed X_val is fine. ``fit`` and
    ``grid_sweep`` call it on a ``RowSource`` itself too, whose names its opened rows and
    moments no longer carry.

    Raises:
      TypeError: ``validation`` is not a pair.
      ValueError: naming both column lists.
    """
    if not isinstance(validation, tuple | list) or len(validation) != 2:
        raise TypeError("validation must be a pair (X_val, y_val)")
    frames.check_columns(validation[0], frames.names_of(X, None)[0], "validation: X_val",
                         "X has")


def _check_validation(validation, X):
    check_validation_names(validation, X)
    try:
        X_val, y_val = check_data(*validation, names=("X_val", "y_val"))
    except (TypeError, ValueError) as error:
        raise type(error)(f"validation: {error}") from None
    width = _width(X)
    if width is not None and X_val.shape[1] != width:
        raise ValueError(f"validation: X_val has {X_val.shape[1]} feature columns, X has "
                         f"{width}")
    return X_val, y_val


def _width(X) -> int | None:
    """X's number of feature columns, None where X cannot tell (its own check says why)."""
    if isinstance(X, SufficientStats):
        return X.mean_x.shape[0]
    shape = getattr(X, "shape", None)
    if shape is None and type(X) in (list, tuple):  # nested lists, as check_data takes them
        try:
            shape = np.shape(X)
        except ValueError:  # ragged
            return None
    return shape[1] if shape is not None and len(shape) == 2 else None


def held_out(X_val, y_val, engine: str, dtype=None) -> Held:
    """What ``validation_loss`` reads for held-out rows: the rows themselves for the direct
    engine (or traced rows), their float64 moments as a quadratic (``jaxgd.engines.gram``) for the
    moment engines.

    Example:
      >>> q = held_out(np.array([[0.0], [2.0]]), np.array([1.0, 5.0]), "gram")
      >>> float(validation_loss(LinearParams(jnp.array([2.0]), jnp.array(0.0)), q))
      1.0
    """
    dtype = jnp.result_type(float) if dtype is None else dtype
    if engine == "direct" or is_traced((X_val, y_val)):
        return Rows(on_device(X_val, dtype), on_device(y_val, dtype))
    return gram.prepare(sufficient_statistics(X_val, y_val), dtype)


def validation_loss(params: LinearParams, held: Held) -> jax.Array:
    """The held-out MSE of ``params`` (no ridge penalty): jittable, vmappable and
    differentiable in ``params`` (and in the held-out data), for selection and for
    gradient-based tuning on held-out loss.

    Example:
      >>> held = held_out(np.array([[1.0], [3.0]]), np.array([2.0, 7.0]), "direct")
      >>> p = LinearParams(jnp.array([2.0]), jnp.array(0.0))
      >>> float(validation_loss(p, held)), jax.grad(validation_loss)(p, held).weight.tolist()
      (0.5, [-3.0])
    """
    if isinstance(held, Rows):
        return rows_mse(params, held)
    return gram.gram_loss(params, held)


def fold_data(engine: str, X: np.ndarray, y: np.ndarray, folds: Folds, l2, dtype=None,
              rows: Rows | None = None):
    """Each fold's training data for ``engine`` and its held-out data, stacked on a leading
    fold axis (``pick`` takes one), and each fold's training moments (for the references).

    Moment engines: fold f trains on ``remove(all rows' moments, fold f's moments)``.
    Direct: the rows once (``rows``, if already on device), with one row weighting per
    fold (1/n_train on training rows, 0 on held-out ones).
    """
    dtype = jnp.result_type(float) if dtype is None else dtype
    total = sufficient_statistics(X, y)
    blocks = [sufficient_statistics(X[folds.ids == f], y[folds.ids == f])
              for f in range(folds.k)]
    trains = [remove(total, block) for block in blocks]
    if engine == "direct":
        masks = np.stack([folds.ids == f for f in range(folds.k)]).astype(np.float64)
        train_w = (1 - masks) / (1 - masks).sum(axis=1, keepdims=True)
        held_w = masks / masks.sum(axis=1, keepdims=True)
        X_d, y_d = (on_device(X, dtype), on_device(y, dtype)) if rows is None else (
            rows.X, rows.y)
        dtype = X_d.dtype
        return (Rows(X_d, y_d, on_device(train_w, dtype)),
                Rows(X_d, y_d, on_device(held_w, dtype)), trains)
    if engine.startswith("eigen") and is_traced(l2):  # the basis of l2 in the traced program
        # needs each fold's training rows (a copy per fold, under the caller's transformation)
        per_fold = [engines.prepare(engine, X[folds.ids != f], y[folds.ids != f], dtype, l2)
                    for f in range(folds.k)]
    else:
        per_fold = [engines.prepare(engine, stats, None, dtype, l2) for stats in trains]
    held = [gram.prepare(block, dtype) for block in blocks]
    return _stack(per_fold), _stack(held), trains


def _stack(trees):
    """The folds' data stacked on a leading axis, on the host (a device-side stack would
    compile a program per leaf); in the traced program where a fold's data are traced (an
    eigen basis of a traced l2)."""
    def stack(*leaves):
        if is_traced(leaves):
            return jnp.stack(leaves)
        return jax.device_put(np.stack([np.asarray(leaf) for leaf in leaves]))
    return jax.tree_util.tree_map(stack, *trees)


def pick(data, fold):
    """One fold's part of ``fold_data``'s stacked data (``fold`` may be traced)."""
    if isinstance(data, Rows):  # the rows are shared; only the weighting is per fold
        return data._replace(weight=data.weight[fold])
    return jax.tree_util.tree_map(lambda leaf: leaf[fold], data)


def result_errors(params: LinearParams, X, y, plan, fold_axis: int | None = None,
                  diverged=False, model=None):
    """``{"training": errors, "validation": errors}`` of final ``params`` (``validation``
    None without held-out data; NaN for the runs that ``diverged``: see
    ``convergence.diverged_as_nan``) as a ``LazyErrors``, computed the first time it is
    read; or None when the rows or parameters are not concrete, or for a user's ``model``
    without a ``predict`` (its errors are its predictions': ``errors.model_errors``)."""
    if not _rows(X, y) or is_traced((params, diverged)):
        return None
    if model is not None and model.predict is None:
        return None  # no predictions to measure (its own losses are final_loss's)
    arrays = (X, y, *(plan if isinstance(plan, Split) else ()))
    if sum(8 * np.size(a) for a in arrays) > memo.MAX_BYTES:  # as float64, as computed
        # Large data: a copy kept in every result would cost the data's size per result,
        # and at this size the program and the float64 reference cost as much anyway.
        return LazyErrors(value=_result_errors(params, X, y, plan, fold_axis, diverged, model))
    # Kept as they are now: the caller may change its arrays before the errors are read.
    X, y, diverged = frozen(X), frozen(y), frozen(diverged)
    plan = plan._replace(X_val=frozen(plan.X_val), y_val=frozen(plan.y_val)) \
        if isinstance(plan, Split) else plan
    return LazyErrors(lambda: _result_errors(params, X, y, plan, fold_axis, diverged, model))


def _result_errors(params, X, y, plan, fold_axis, diverged=False, model=None):
    if isinstance(plan, Folds):  # each fold's runs on that fold's rows
        out = {side: {m: np.empty(np.shape(diverged)) for m in ("mse", "rmse", "mae")}
               for side in ("training", "validation")}
        for f in range(plan.k):
            at = (slice(None),) * fold_axis + (f,)
            runs = jax.tree_util.tree_map(lambda leaf, at=at: np.asarray(leaf)[at], params)
            for side, rows in (("training", plan.ids != f), ("validation", plan.ids == f)):
                for metric, value in errors(runs, X, y, rows, model).items():
                    out[side][metric][at] = value
        validation = out["validation"]
    else:
        out = {"training": errors(params, X, y, model=model), "validation": None}
        validation = errors(params, *plan, model=model) \
            if isinstance(plan, Split) and _rows(*plan) else None
    if validation is not None:  # as 0-d arrays for one run, like the training side
        diverged = np.asarray(diverged, bool)
        out["validation"] = {metric: np.asarray(convergence.diverged_as_nan(value, diverged))
                             for metric, value in validation.items()}
    return out


__all__ = ["Folds", "LazyErrors", "Split", "check_fraction",
           "errors", "fold_data", "fold_ids", "held_out", "pick", "resolve", "split",
           "training_mask", "validation_loss"]
