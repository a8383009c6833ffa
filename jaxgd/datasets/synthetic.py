"""Synthetic linear data with known true parameters, drawn from a JAX key."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core.params import LinearParams
from jaxgd.inputs.validation import (
    MAX_INT32,
    _as_float_array,
    check_memory,
    check_non_negative,
    check_positive_int,
)


class SyntheticDataset(NamedTuple):
    """A ``Dataset``'s fields plus the parameters that generated the targets.

    Attributes:
      X, y, feature_names, target_name, n_dropped, source: as in ``Dataset``.
      true_params: ``LinearParams`` of float64 NumPy arrays, weight ``(n_features,)``
        and bias ``()``.
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    target_name: str
    n_dropped: int
    source: str
    true_params: LinearParams


def synthetic(
    key: jax.Array,
    n_samples: int,
    n_features: int,
    noise: float = 0.1,
    *,
    weight=None,
    bias=None,
    feature_scale: float = 1.0,
) -> SyntheticDataset:
    """Draws ``y = X @ w + b + noise * ε`` with ``X ~ N(0, feature_scale²)`` and ``ε ~ N(0, 1)``.

    The true weight and bias are drawn from ``N(0, 1)`` unless given. The result depends only
    on ``key`` and the arguments: draws are made in float32 whatever ``jax_enable_x64`` says,
    then widened to float64 (the arithmetic is done in NumPy float64). Giving ``weight`` or
    ``bias`` does not change ``X`` or the noise.

    Args:
      key: a JAX PRNG key, e.g. ``jax.random.key(0)``.
      n_samples: number of rows, >= 1.
      n_features: number of feature columns, >= 1; ``n_samples × n_features`` at most
        2**31 - 1 and within this machine's memory.
      noise: standard deviation of the additive Gaussian noise, >= 0.
      weight: the true weight, shape ``(n_features,)``; drawn if None.
      bias: the true bias, a scalar; drawn if None.
      feature_scale: standard deviation of each feature, >= 0.

    Returns:
      A ``SyntheticDataset`` with float64 ``X`` ``(n_samples, n_features)``, ``y``
      ``(n_samples,)``, feature names ``x0, x1, ...``, target ``y`` and ``true_params``.

    Raises:
      TypeError, ValueError: an argument of the wrong type or out of range (named).
      MemoryError: ``n_samples × n_features`` more than this machine's memory holds.

    Example:
      >>> import jax
      >>> data = synthetic(jax.random.key(0), 100, 2, noise=0.0, weight=[1.0, -2.0], bias=3.0)
      >>> data.X.shape, data.true_params.weight.tolist(), float(data.true_params.bias)
      ((100, 2), [1.0, -2.0], 3.0)
      >>> bool(np.allclose(data.y, data.X @ [1.0, -2.0] + 3.0))
      True
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    n_features = check_positive_int(n_features, "n_features")
    size = n_samples * n_features
    if size > MAX_INT32:
        raise ValueError(f"n_samples × n_features must be <= {MAX_INT32} (JAX draws at most "
                         f"that many numbers at once), got {n_samples} × {n_features} = {size}")
    # The float32 draw, its float64 copy and the scaled X, and the same for y.
    check_memory(n_samples * (n_features + 1) * (4 + 8 + 8),
                 f"n_samples × n_features = {n_samples} × {n_features} synthetic data")
    noise = check_non_negative(noise, "noise")
    feature_scale = check_non_negative(feature_scale, "feature_scale")
    # Always four keys, so that choosing the weight or bias leaves X and the noise unchanged.
    x_key, w_key, b_key, noise_key = jax.random.split(key, 4)

    def normal(k, shape):
        return np.asarray(jax.random.normal(k, shape, dtype=jnp.float32), dtype=np.float64)

    X = feature_scale * normal(x_key, (n_samples, n_features))
    w = normal(w_key, (n_features,)) if weight is None else _given(weight, (n_features,), "weight")
    b = normal(b_key, ()) if bias is None else _given(bias, (), "bias")
    y = X @ w + b + noise * normal(noise_key, (n_samples,))
    return SyntheticDataset(
        X=X,
        y=y,
        feature_names=tuple(f"x{i}" for i in range(n_features)),
        target_name="y",
        n_dropped=0,
        source=(
            f"synthetic: y = X @ w + b + {noise:g} * N(0, 1), "
            f"X ~ N(0, {feature_scale:g}^2), {n_samples} samples, {n_features} features"
        ),
        true_params=LinearParams(weight=w, bias=b),
    )


def _given(value, shape: tuple[int, ...], name: str) -> np.ndarray:
    array = np.array(_as_float_array(value, name), dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite, got {array.tolist()}")
    return array
