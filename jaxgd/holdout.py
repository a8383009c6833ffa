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

Inside the compiled loop the held-out MSE is computed at each logged step
(``validation_loss``): from the rows for the direct engine, O(n_val·d); from the held-out
set's moments as a quadratic form (``jaxgd.gram``) for the moment engines, O(d²) whatever
n_val is. The eigen engine's coordinates are mapped back to weight and bias first (O(d²)
per logged step, not per step). The validation loss is the plain MSE, never with the ridge
penalty: it is what selection compares across l2 values.

The fused engines (``jaxgd.fused``) keep only the training losses in their kernel: with
held-out data "auto" takes the same engine unfused, and an explicit "gram-fused" or
"eigen-fused" is refused (``engine_for``).

A diverged run's held-out numbers are NaN (``jaxgd.convergence.diverged_as_nan``):
``final_validation_loss`` and the validation side of ``errors`` (its held-out history
already is NaN after the blow-up). Its parameters are frozen where it blew up, so their
held-out error is finite but measures nothing: averaged over k folds it made a diverged
fold look like a valid estimate.

RMSE and MAE (``errors``) are computed on the host in float64 from the final parameters,
at the edge: MAE needs the predictions, which the moment engines never form. They are
computed when first read (``LazyErrors``), from a copy of the data taken at the call, so a
sweep returns without waiting for its program; data past ``memo.MAX_BYTES`` (4 MiB) are not
copied into every result: their errors are computed in the call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd import convergence, frames, gram, memo
from jaxgd import engine as engines
from jaxgd.engine import Rows, rows_mse
from jaxgd.params import LinearParams
from jaxgd.statistics import SufficientStats, on_device, remove, sufficient_statistics
from jaxgd.validation import check_data, check_positive_int, check_seed, is_traced

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


def fold_ids(n_rows: int, k: int, seed: int = 0) -> np.ndarray:
    """Each row's fold: a seeded shuffle (``np.random.default_rng(seed)``) dealt round-robin,
    so fold sizes differ by at most one.

    Example:
      >>> np.bincount(fold_ids(10, 3)).tolist()
      [4, 3, 3]
    """
    k = check_positive_int(k, "k_folds", minimum=2)
    if n_rows // k < 2:
        raise ValueError(f"k_folds={k} on {n_rows} rows leaves folds of {n_rows // k} rows: "
                         "each fold needs at least 2")
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
                         "transformation (jaxgd.holdout.split or fold_ids) and give "
                         "validation=(X_val, y_val)")


def engine_for(chosen: str, requested: str, plan) -> str:
    """The engine to run with held-out data: ``chosen`` unless it is fused (its kernel keeps
    only the training losses), then its unfused twin when "auto" picked it.

    Raises:
      ValueError: a fused engine asked for by name with held-out data.

    Example:
      >>> engine_for("gram-fused", "auto", Split(None, None))
      'gram'
      >>> engine_for("gram-fused", "auto", None)
      'gram-fused'
    """
    if plan is None or not chosen.endswith("-fused"):
        return chosen
    base = chosen.removesuffix("-fused")
    if requested != "auto":
        raise ValueError(f"engine={requested!r} keeps only the training losses in its kernel, "
                         "not the held-out loss: with validation, validation_fraction or "
                         f"k_folds use engine={base!r} (or 'auto')")
    return base


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
    engine (or traced rows), their float64 moments as a quadratic (``jaxgd.gram``) for the
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
    per_fold = [engines.prepare(engine, stats, None, dtype, l2) for stats in trains]
    held = [gram.prepare(block, dtype) for block in blocks]
    return _stack(per_fold), _stack(held), trains


def _stack(trees):
    """The folds' data stacked on a leading axis, on the host (a device-side stack would
    compile a program per leaf)."""
    return jax.tree_util.tree_map(
        lambda *leaves: jax.device_put(np.stack([np.asarray(leaf) for leaf in leaves])),
        *trees)


def pick(data, fold):
    """One fold's part of ``fold_data``'s stacked data (``fold`` may be traced)."""
    if isinstance(data, Rows):  # the rows are shared; only the weighting is per fold
        return data._replace(weight=data.weight[fold])
    return jax.tree_util.tree_map(lambda leaf: leaf[fold], data)


def errors(params: LinearParams, X, y, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """MSE, RMSE (its square root, the course's unit of y) and MAE of ``params`` on ``(X,
    y)`` (or its ``rows``), in float64 on the host; ``params`` may have leading run axes.

    Example:
      >>> p = LinearParams(np.array([[2.0], [1.0]]), np.array([0.0, 0.0]))   # two runs
      >>> e = errors(p, np.array([[1.0], [2.0]]), np.array([2.0, 5.0]))
      >>> e["mse"].tolist(), e["mae"].tolist()
      ([0.5, 5.0], [0.5, 2.0])
    """
    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    if rows is not None:
        X, y = X[rows], y[rows]
    weight = np.asarray(params.weight, np.float64)
    runs = weight.shape[:-1]
    weight = weight.reshape(-1, weight.shape[-1])
    bias = np.asarray(params.bias, np.float64).reshape(-1)
    mse, mae = np.empty(bias.size), np.empty(bias.size)
    chunk = max(1, 2**24 // max(1, y.size))  # predictions of a chunk of runs at a time
    for start in range(0, bias.size, chunk):
        stop = start + chunk
        residual = weight[start:stop] @ X.T + bias[start:stop, None] - y
        mse[start:stop] = np.mean(residual * residual, axis=1)
        mae[start:stop] = np.mean(np.abs(residual), axis=1)
    mse, mae = mse.reshape(runs), mae.reshape(runs)
    # np.asarray: NumPy's ufuncs give a 0-d array's result as a scalar (np.float64); every
    # metric is an ndarray alike, 0-d for one run.
    return {"mse": mse, "rmse": np.asarray(np.sqrt(mse)), "mae": mae}


def result_errors(params: LinearParams, X, y, plan, fold_axis: int | None = None,
                  diverged=False):
    """``{"training": errors, "validation": errors}`` of final ``params`` (``validation``
    None without held-out data; NaN for the runs that ``diverged``: see
    ``convergence.diverged_as_nan``) as a ``LazyErrors``, computed the first time it is
    read; or None when the rows or parameters are not concrete."""
    if not _rows(X, y) or is_traced((params, diverged)):
        return None
    arrays = (X, y, *(plan if isinstance(plan, Split) else ()))
    if sum(8 * np.size(a) for a in arrays) > memo.MAX_BYTES:  # as float64, as computed
        # Large data: a copy kept in every result would cost the data's size per result,
        # and at this size the program and the float64 reference cost as much anyway.
        return LazyErrors(value=_result_errors(params, X, y, plan, fold_axis, diverged))
    # Kept as they are now: the caller may change its arrays before the errors are read.
    X, y, diverged = _frozen(X), _frozen(y), _frozen(diverged)
    plan = plan._replace(X_val=_frozen(plan.X_val), y_val=_frozen(plan.y_val)) \
        if isinstance(plan, Split) else plan
    return LazyErrors(lambda: _result_errors(params, X, y, plan, fold_axis, diverged))


def _frozen(array):
    """``array`` as it is now, for good: kept if no one can change it (a JAX array, a
    read-only NumPy array over read-only memory of its own), else a read-only copy.

    A read-only view is not enough: pandas hands out read-only views of a DataFrame's
    memory, which changes when the frame is written to.

    Example:
      >>> a = np.arange(3.0)
      >>> view = a[:]
      >>> view.flags.writeable = False
      >>> kept = _frozen(view)
      >>> a[0] = 9.0
      >>> kept.tolist(), _frozen(kept) is kept
      ([0.0, 1.0, 2.0], True)
    """
    if isinstance(array, jax.Array) or _owns_read_only(array):
        return array
    array = np.array(array, copy=True)
    array.flags.writeable = False
    return array


def _owns_read_only(array) -> bool:
    """Whether ``array`` is a read-only NumPy array whose memory is a read-only NumPy
    array's own (its own, or that of the arrays it views); a writable owner, or memory
    of another kind (a buffer, a file), may change under it."""
    if not isinstance(array, np.ndarray) or array.flags.writeable:
        return False
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array.base is None and not array.flags.writeable


def _result_errors(params: LinearParams, X, y, plan, fold_axis, diverged=False):
    if isinstance(plan, Folds):  # each fold's runs on that fold's rows
        out = {side: {m: np.empty(np.shape(params.bias)) for m in ("mse", "rmse", "mae")}
               for side in ("training", "validation")}
        for f in range(plan.k):
            at = (slice(None),) * fold_axis + (f,)
            runs = LinearParams(np.asarray(params.weight)[at], np.asarray(params.bias)[at])
            for side, rows in (("training", plan.ids != f), ("validation", plan.ids == f)):
                for metric, value in errors(runs, X, y, rows).items():
                    out[side][metric][at] = value
        validation = out["validation"]
    else:
        out = {"training": errors(params, X, y), "validation": None}
        validation = errors(params, *plan) if isinstance(plan, Split) and _rows(*plan) \
            else None
    if validation is not None:  # as 0-d arrays for one run, like the training side
        diverged = np.asarray(diverged, bool)
        out["validation"] = {metric: np.asarray(convergence.diverged_as_nan(value, diverged))
                             for metric, value in validation.items()}
    return out


class LazyErrors(Mapping):
    """A result's ``errors``, computed on the host the first time they are read.

    Computing them needs the final parameters on the host, so it waits for the run's
    program and then does O(runs·n·d) float64 work (25 ms for 8,192 runs on Auto MPG):
    done in the call, every sweep would block on its program and pay it, read or not. The
    data are copied for it at the call (up to ``memo.MAX_BYTES``; past that the errors
    are computed in the call instead of keeping a copy per result). It is a pytree whose
    one child is the computed dict, so a result still flattens to arrays (flattening
    computes it) and ``tree_map`` over results keeps working.

    Example:
      >>> import numpy as np, jaxgd
      >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
      >>> r = jaxgd.fit(X, y, learning_rate=0.3, num_steps=200)
      >>> sorted(r.errors), round(float(r.errors["training"]["rmse"]), 6)
      (['training', 'validation'], 0.0)
    """

    def __init__(self, compute: Callable[[], dict] | None = None, value: dict | None = None):
        self._compute, self._value = compute, value
        self._lock = threading.Lock()

    def _get(self) -> dict:
        with self._lock:  # computed once, whichever thread reads first
            if self._compute is not None:
                self._value, self._compute = self._compute(), None
        return self._value

    def at(self, index) -> LazyErrors:
        """The errors of the runs at ``index`` of the run axes (one run's: 0-d float64
        arrays, as ``fit``'s), computed when first read.

        Example:
          >>> e = LazyErrors(value={"training": {"mse": np.array([1.0, 4.0])}})
          >>> e.at((1,))["training"]["mse"]
          array(4.)
        """
        return LazyErrors(lambda: jax.tree_util.tree_map(
            lambda leaf: np.asarray(np.asarray(leaf)[index]), self._get()))

    def __getitem__(self, key):
        return self._get()[key]

    def __iter__(self):
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    # Read like the dict they hold: ``errors.keys()`` prints ``dict_keys(['training', ...])``
    # (Mapping's own views would print ``KeysView(LazyErrors(...))``), ``repr`` the dict.
    def keys(self):
        return self._get().keys()

    def values(self):
        return self._get().values()

    def items(self):
        return self._get().items()

    def __repr__(self) -> str:
        return repr(self._get())

    def __reduce__(self):  # pickled and copied as the computed values (a lock is neither)
        return LazyErrors, (None, self._get())


jax.tree_util.register_pytree_node(
    LazyErrors, lambda e: ((e._get(),), None),
    lambda _, children: LazyErrors(value=children[0]))


__all__ = ["Folds", "LazyErrors", "Split", "check_fraction", "engine_for",
           "errors", "fold_data", "fold_ids", "held_out", "pick", "resolve", "split",
           "training_mask", "validation_loss"]
