"""Error metrics of final parameters: MSE, RMSE and MAE in float64 on the host, and
``LazyErrors``, the read-only mapping a result holds them in, computed when first read.

RMSE and MAE are computed at the edge, from the final parameters: MAE needs the
predictions, which the moment engines never form. The data they are computed from are
frozen at the call (``frozen``), so a result does not change after it is returned.

Example:
  >>> from jaxgd.core.params import LinearParams
  >>> e = LazyErrors(lambda: {"training": errors(LinearParams(np.array([1.0]), np.array(0.0)),
  ...                                            np.array([[1.0], [2.0]]), np.array([1.0, 3.0]))})
  >>> e["training"]["mae"].tolist()
  0.5
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

import jax
import numpy as np

from jaxgd.core.custom_model import Model, predict_runs
from jaxgd.core.params import LinearParams


def errors(params: LinearParams, X, y, rows: np.ndarray | None = None,
           model: Model | None = None) -> dict[str, np.ndarray]:
    """MSE, RMSE (its square root, the course's unit of y) and MAE of ``params`` on ``(X,
    y)`` (or its ``rows``), in float64 on the host; ``params`` may have leading run axes.
    With a user's ``model`` (``jaxgd.Model``), ``params`` are its own and the predictions
    its ``predict``'s (``model_errors``).

    Example:
      >>> p = LinearParams(np.array([[2.0], [1.0]]), np.array([0.0, 0.0]))   # two runs
      >>> e = errors(p, np.array([[1.0], [2.0]]), np.array([2.0, 5.0]))
      >>> e["mse"].tolist(), e["mae"].tolist()
      ([0.5, 5.0], [0.5, 2.0])
    """
    if model is not None:
        return model_errors(model, params, X, y, rows)
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


def moment_mse(params: LinearParams, stats) -> np.ndarray:
    """The MSE of ``params`` (with leading run axes) from the data's moments (a
    ``jaxgd.data.statistics.SufficientStats``: data with no rows in memory), in float64 on
    the host; inf or NaN, silently, for a diverged run's parameters. The moments hold no
    MAE: ``errors`` needs the rows.

    Example:
      >>> from jaxgd.data.statistics import sufficient_statistics
      >>> stats = sufficient_statistics(np.array([[1.0], [2.0]]), np.array([2.0, 5.0]))
      >>> p = LinearParams(np.array([[2.0], [1.0]]), np.array([0.0, 0.0]))
      >>> moment_mse(p, stats).round(12).tolist()
      [0.5, 5.0]
    """
    w, b = np.asarray(params.weight, np.float64), np.asarray(params.bias, np.float64)
    with np.errstate(all="ignore"):
        offset = b + w @ np.asarray(stats.mean_x) - float(stats.mean_y)
        quadratic = np.einsum("...i,ij,...j->...", w, np.asarray(stats.cov_xx), w)
        return (quadratic - 2.0 * (w @ np.asarray(stats.cov_xy)) + float(stats.var_y)
                + offset * offset)


def frozen(array):
    """``array`` as it is now, for good: kept if no one can change it (a JAX array, a
    read-only NumPy array over read-only memory of its own), else a read-only copy.

    A read-only view is not enough: pandas hands out read-only views of a DataFrame's
    memory, which changes when the frame is written to.

    Example:
      >>> a = np.arange(3.0)
      >>> view = a[:]
      >>> view.flags.writeable = False
      >>> kept = frozen(view)
      >>> a[0] = 9.0
      >>> kept.tolist(), frozen(kept) is kept
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


def model_errors(model: Model, params, X, y, rows: np.ndarray | None = None
                 ) -> dict[str, np.ndarray]:
    """``errors`` of a user's model: MSE, RMSE and MAE of its predictions
    (``model.predict(params, X)``, one per row, in the run's dtype) against y, in float64
    on the host; ``params`` in the model's structure, with leading run axes or not.

    Raises:
      ValueError: the model's predict gives other than one prediction per row.

    Example:
      >>> import jax.numpy as jnp
      >>> m = Model(lambda p, b: jnp.mean((b[0] @ p - b[1]) ** 2), jnp.zeros(1),
      ...           predict=lambda p, X: X @ p)
      >>> e = model_errors(m, np.array([[2.0], [1.0]]), np.array([[1.0], [2.0]]),
      ...                  np.array([2.0, 5.0]))                  # two runs
      >>> e["mse"].tolist(), e["mae"].tolist()
      ([0.5, 5.0], [0.5, 2.0])
    """
    if rows is not None:
        X, y = np.asarray(X)[rows], np.asarray(y)[rows]
    y = np.asarray(y, np.float64)
    own = jax.tree_util.tree_leaves(model.init)[0]
    leaves, treedef = jax.tree_util.tree_flatten(params)
    runs = np.shape(leaves[0])[:np.ndim(leaves[0]) - np.ndim(own)]
    flat = [np.reshape(leaf, (-1, *np.shape(leaf)[len(runs):])) for leaf in leaves]
    count = flat[0].shape[0]
    mse, mae = np.empty(count), np.empty(count)
    chunk = max(1, 2**24 // max(1, y.size))  # predictions of a chunk of runs at a time
    for start in range(0, count, chunk):
        some = jax.tree_util.tree_unflatten(treedef, [leaf[start:start + chunk]
                                                      for leaf in flat])
        predictions = np.asarray(predict_runs(model, some, X, 1), np.float64)
        if predictions.shape[1:] != y.shape:
            raise ValueError(f"errors: the model's predict gave shape "
                             f"{predictions.shape[1:]} for {y.shape[0]} rows; it must give "
                             f"one prediction per row, shape {y.shape}")
        residual = predictions - y
        mse[start:start + chunk] = np.mean(residual * residual, axis=1)
        mae[start:start + chunk] = np.mean(np.abs(residual), axis=1)
    mse, mae = mse.reshape(runs), mae.reshape(runs)
    return {"mse": mse, "rmse": np.asarray(np.sqrt(mse)), "mae": mae}


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
