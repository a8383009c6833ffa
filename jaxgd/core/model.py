"""The linear model's prediction and its mean squared error (the loss gradient descent lowers)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core.params import LinearParams

#: Every product of the loss runs in full float32 (or float64). JAX's default lets a GPU round
#: float32 operands to TF32 (10-bit mantissa) and a TPU to bfloat16: loss histories would then
#: be off in the fourth digit. On a CPU this changes nothing.
PRECISION = jax.lax.Precision.HIGHEST


def dot(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a @ b`` at full precision (see ``PRECISION``); NumPy arrays in, NumPy out."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a @ b  # float64 data stays float64, as NumPy computes it
    return jnp.matmul(a, b, precision=PRECISION)


def predict(params: LinearParams, X: jax.Array) -> jax.Array:
    """The model's predictions, ``X @ weight + bias``.

    Args:
      params: the model's weight ``(n_features,)`` and bias ``()``.
      X: features, shape ``(n_samples, n_features)``.

    Returns:
      Predictions, shape ``(n_samples,)``.

    Example:
      >>> import jax.numpy as jnp
      >>> p = LinearParams(jnp.array([2.0]), jnp.array(1.0))
      >>> predict(p, jnp.array([[1.0], [3.0]])).tolist()
      [3.0, 7.0]
    """
    return dot(X, params.weight) + params.bias


def mse(params: LinearParams, X: jax.Array, y: jax.Array) -> jax.Array:
    """Mean squared error of the model on ``(X, y)``: the course's loss, ``mean((ŷ - y)²)``.

    Its gradient is always taken by ``jax.grad``; the library writes no gradient by hand.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> p = LinearParams(jnp.array([2.0]), jnp.array(0.0))
      >>> X, y = jnp.array([[1.0], [2.0]]), jnp.array([2.0, 5.0])
      >>> float(mse(p, X, y))
      0.5
      >>> jax.grad(mse)(p, X, y).weight.tolist()
      [-2.0]
    """
    residual = predict(params, X) - y
    return jnp.mean(residual * residual)
