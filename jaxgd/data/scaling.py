"""Standardizing features (zero mean, unit variance) and mapping parameters between units.

Gradient descent converges faster and with one learning rate for all features when the
features share a scale; ``unstandardize_params`` then expresses the fitted model in the
data's original units, so its weights mean "mpg per pound" again.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core.params import LinearParams
from jaxgd.inputs import frames
from jaxgd.inputs.validation import _as_float_array


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Standardizer:
    """Per-feature mean and scale; ``transform`` maps ``X`` to ``(X - mean) / scale``.

    A pytree (``mean`` and ``scale`` its leaves, ``feature_names`` static): it passes
    through ``jit`` and ``vmap`` as a value, and ``transform`` / ``inverse_transform`` are
    plain arithmetic that work on NumPy arrays, JAX arrays, tracers and pandas DataFrames
    alike (a DataFrame stays one, with its column names, so ``fit`` on it keeps them).

    Attributes:
      mean: column means, shape ``(n_features,)``.
      scale: column (population) standard deviations, shape ``(n_features,)``; 1.0 for a
        column whose values are all equal.
      feature_names: the columns' names when fitted on a DataFrame (or any table with
        ``__array__`` and ``columns``), else None. ``transform`` then checks that a table it
        is given has the same columns in the same order.

    Example:
      >>> import numpy as np
      >>> X = np.array([[1.0, 10.0], [3.0, 10.0]])
      >>> s = Standardizer.fit(X)
      >>> s.mean.tolist(), s.scale.tolist()
      ([2.0, 10.0], [1.0, 1.0])
      >>> s.transform(X).tolist()
      [[-1.0, 0.0], [1.0, 0.0]]
      >>> bool(np.allclose(s.inverse_transform(s.transform(X)), X))
      True
    """

    mean: jax.Array | np.ndarray
    scale: jax.Array | np.ndarray
    feature_names: tuple[str, ...] | None = dataclasses.field(
        default=None, metadata={"static": True})

    def _replace(self, **changes) -> Standardizer:
        return dataclasses.replace(self, **changes)

    @classmethod
    def fit(cls, X) -> Standardizer:
        """Computes each column's mean and population standard deviation (``ddof=0``).

        A column whose values are all equal would divide by zero; like scikit-learn's
        ``StandardScaler`` it gets scale 1.0, so it transforms to zeros. A JAX array (or
        tracer, so ``fit`` works inside ``jit``) gives JAX arrays; anything else NumPy
        arrays. The input's float dtype is kept; integers become the default float.

        Args:
          X: features, shape ``(n_samples, n_features)``.

        Returns:
          A ``Standardizer`` with ``mean`` and ``scale`` of shape ``(n_features,)``.

        Raises:
          ValueError: if ``X`` is not 2-D or has no rows, or (NumPy input) holds NaN or
            infinite values.

        Example:
          >>> import jax.numpy as jnp
          >>> Standardizer.fit(jnp.array([[0.0], [2.0]])).scale.tolist()
          [1.0]
        """
        names = frames.names_of(X, None)[0]
        if isinstance(X, jax.Array):
            xp = jnp
            if not jnp.issubdtype(X.dtype, jnp.floating):
                X = X.astype(jnp.result_type(float))
        else:
            xp = np
            X = _as_float_array(X, "X")
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
        if X.shape[0] == 0:
            raise ValueError("X has no rows: a mean and scale need at least one sample")
        # Concrete NumPy data can be checked now; a tracer's values are unknown until run.
        if xp is np and not np.isfinite(X).all():
            columns = np.flatnonzero(~np.isfinite(X).all(axis=0)).tolist()
            raise ValueError(f"X has NaN or infinite values in columns {columns}")
        std = X.std(axis=0)
        # Exact test for a constant column: its std may come out a tiny non-zero from rounding.
        constant = (X.max(axis=0) == X.min(axis=0)) | (std == 0)
        return cls(mean=X.mean(axis=0), scale=xp.where(constant, xp.ones_like(std), std),
                   feature_names=names)

    def transform(self, X):
        """Standardizes features: ``(X - mean) / scale``, shape ``(..., n_features)``."""
        self._check_table(X, "X")
        _check_width(X, self.mean, "X")
        return (X - self.mean) / self.scale

    def inverse_transform(self, Xs):
        """Maps standardized features back to original units: ``Xs * scale + mean``."""
        self._check_table(Xs, "Xs")
        _check_width(Xs, self.mean, "Xs")
        return Xs * self.scale + self.mean


    def _check_table(self, X, name: str) -> None:
        """A table's columns must be the fitted ones, in order; its dtypes numbers."""
        if not frames.is_table(X):
            return
        frames.check_columns(X, self.feature_names, name, "the Standardizer was fitted on")
        frames.to_numpy(X, name)  # refuses categories and text, by column name


def unstandardize_params(params: LinearParams, standardizer: Standardizer) -> LinearParams:
    """Maps a model fitted on standardized features to one on the original features.

    With ``Xs = (X - mean) / scale``, ``Xs @ w_s + b_s = X @ (w_s / scale) + b_s -
    Σ w_s · mean / scale``, so both models give the same predictions. Leading batch axes on
    ``weight`` ``(..., n_features)`` and ``bias`` ``(...)`` are kept (e.g. one model per
    learning rate from a sweep), and the function works under ``jit`` and ``vmap``.

    Args:
      params: weight and bias learned on ``standardizer.transform(X)``.
      standardizer: the ``Standardizer`` that produced the training features.

    Returns:
      ``LinearParams`` in the original units.

    Raises:
      ValueError: if the weight's last axis does not match the number of features.

    Example:
      >>> import numpy as np
      >>> from jaxgd.core.model import predict
      >>> X = np.array([[1.0, 200.0], [2.0, 400.0], [4.0, 300.0]])
      >>> s = Standardizer.fit(X)
      >>> p_s = LinearParams(np.array([0.5, -1.0]), np.array(2.0))
      >>> p = unstandardize_params(p_s, s)
      >>> bool(np.allclose(predict(p, X), predict(p_s, s.transform(X))))
      True
    """
    _check_width(params.weight, standardizer.mean, "params.weight")
    weight = params.weight / standardizer.scale
    # Sum over the feature axis only, so batched params map one model at a time.
    bias = params.bias - (weight * standardizer.mean).sum(axis=-1)
    return LinearParams(weight=weight, bias=bias)


def standardize_params(params: LinearParams, standardizer: Standardizer) -> LinearParams:
    """The inverse of ``unstandardize_params``: original units to standardized features.

    ``X @ w + b = Xs @ (w · scale) + (b + Σ w · mean)``. Useful to start descent on
    standardized data from a guess made in original units. Batch axes as in
    ``unstandardize_params``.

    Example:
      >>> import numpy as np
      >>> from jaxgd.core.model import predict
      >>> X = np.array([[1.0, 200.0], [2.0, 400.0], [4.0, 300.0]])
      >>> s = Standardizer.fit(X)
      >>> p = LinearParams(np.array([3.0, 0.01]), np.array(-1.0))
      >>> p_s = standardize_params(p, s)
      >>> bool(np.allclose(predict(p_s, s.transform(X)), predict(p, X)))
      True
    """
    _check_width(params.weight, standardizer.mean, "params.weight")
    weight = params.weight * standardizer.scale
    bias = params.bias + (params.weight * standardizer.mean).sum(axis=-1)
    return LinearParams(weight=weight, bias=bias)


def _check_width(array, mean, name: str) -> None:
    # Broadcasting would silently stretch a single column across all features; refuse it.
    shape, n_features = np.shape(array), np.shape(mean)[-1]
    if not shape or shape[-1] != n_features:
        raise ValueError(
            f"{name} must have {n_features} features on its last axis, got shape {shape}"
        )
