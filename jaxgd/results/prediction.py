"""Predictions of fitted runs: ``X @ weight + bias``, for one run or for every run of a grid.

``FitResult.predict``, ``SweepResult.predict`` and ``GridResult.predict`` all come here. A
result's parameters are in the units of the data its runs were given (jaxgd never rescales
features behind the caller's back), so predictions take features in those same units; a
run fitted on ``Standardizer.transform(X)`` predicts from the original ``X`` when given its
``Standardizer``.

Example:
  >>> import numpy as np
  >>> p = LinearParams(np.array([[2.0], [3.0]]), np.array([1.0, 0.0]))  # two runs
  >>> predict_runs(p, np.array([[1.0], [2.0], [3.0]])).tolist()
  [[3.0, 5.0, 7.0], [3.0, 6.0, 9.0]]
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core.model import PRECISION
from jaxgd.core.params import LinearParams
from jaxgd.inputs import frames
from jaxgd.inputs.validation import _as_float_array, _list_some, _traced_float, is_traced


def check_features(X, n_features: int, feature_names: Sequence[str] | None = None,
                   name: str = "X"):
    """Checks the rows to predict from against the model: ``(n_samples, n_features)``.

    A table (a DataFrame, or anything with ``__array__`` and ``columns``) must have the
    columns the model was fitted on, in that order (when the model knows their names); its
    numbers are read as ``jaxgd.inputs.frames`` reads them. Traced ``X`` (inside the caller's
    ``jit``) gets the shape and dtype checks only.

    Args:
      X: the rows, shape ``(n_samples, n_features)``.
      n_features: the model's number of features (the weight's last axis).
      feature_names: the model's feature names, or None.
      name: the argument's name for messages.

    Returns:
      ``X`` as a float array: NumPy for concrete input (its float dtype kept), the tracer
      itself (floating) for traced input.

    Raises:
      TypeError: if ``X`` does not hold real numbers.
      ValueError: if ``X`` is not 2-D, has another number of features (or other columns)
        than the model, or holds NaN or infinite values (the rows are named).

    Example:
      >>> check_features(np.ones((4, 3)), 2)
      Traceback (most recent call last):
      ...
      ValueError: X has 3 features (columns), but the model was fitted on 2: give the same ...
    """
    if frames.is_table(X):
        frames.check_columns(X, None if feature_names is None else tuple(feature_names),
                             name, "the model was fitted on")
    traced = is_traced(X)
    X = _traced_float(X, name) if traced else _as_float_array(X, name)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {X.shape}: "
                         f"one sample is {name}.reshape(1, -1), one feature "
                         f"{name}.reshape(-1, 1)")
    if X.shape[1] != n_features:
        names = "" if feature_names is None else f" {tuple(feature_names)}"
        raise ValueError(f"{name} has {X.shape[1]} features (columns), but the model was "
                         f"fitted on {n_features}{names}: give the same features, in the "
                         "same order")
    if not traced:
        bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
        if bad.size:
            raise ValueError(f"{name} has NaN or infinite values in rows "
                             f"{_list_some(bad.tolist())}")
    return X


def predict_runs(params: LinearParams, X, *, feature_names: Sequence[str] | None = None,
                 standardizer=None) -> jax.Array:
    """Every run's predictions ``X @ weight + bias``: shape ``(*run_axes, n_samples)``.

    ``params.weight`` is ``(*run_axes, n_features)`` and ``params.bias`` ``(*run_axes,)``:
    no run axes for ``fit`` (predictions ``(n_samples,)``), the grid's axes for the sweeps
    (one row of predictions per run). Products run at full precision
    (``jaxgd.core.model.PRECISION``), in the dtype JAX promotes ``X`` and the weight to; the
    function works under ``jit`` and ``vmap`` (parameters and ``X`` may be traced).

    Args:
      params: the runs' ``LinearParams``.
      X: features, ``(n_samples, n_features)``, in the units the runs were fitted on; or,
        with ``standardizer``, in the units before it.
      feature_names: the names the runs were fitted on; a table ``X`` must have these
        columns in this order.
      standardizer: the ``jaxgd.Standardizer`` whose ``transform`` gave the runs their
        features: ``X`` is then in the original units and is transformed first (a table's
        columns are checked against the standardizer's names too).

    Raises:
      TypeError, ValueError: as ``check_features``.

    Example:
      >>> p = LinearParams(np.array([2.0]), np.array(1.0))
      >>> predict_runs(p, np.array([[0.0], [1.0]])).tolist()
      [1.0, 3.0]
    """
    n_features = int(np.shape(params.weight)[-1])
    if standardizer is not None:
        X = standardizer.transform(X)
    X = check_features(X, n_features, feature_names)
    weight, bias = jnp.asarray(params.weight), jnp.asarray(params.bias)
    return jnp.einsum("nd,...d->...n", X, weight, precision=PRECISION) + bias[..., None]
