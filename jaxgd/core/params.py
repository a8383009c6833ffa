"""The linear model's parameters: a weight per feature and one bias, as a pytree."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.inputs.validation import default_float


class LinearParams(NamedTuple):
    """Weight and bias of a linear model, ``prediction = X @ weight + bias``.

    A NamedTuple is a pytree, so it passes through ``jit``, ``vmap``, ``grad`` and
    ``jax.tree_util`` unchanged; under ``vmap`` every field gains the same leading axes.

    Attributes:
      weight: shape ``(n_features,)``.
      bias: a scalar, shape ``()``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> p = LinearParams(weight=jnp.array([2.0]), bias=jnp.array(1.0))
      >>> jax.tree_util.tree_map(lambda a: a * 0, p).bias.item()
      0.0
    """

    weight: jax.Array
    bias: jax.Array


def init_params(
    key: jax.Array, n_features: int, scale: float = 0.01, dtype=None
) -> LinearParams:
    """Draws a random weight and bias near zero, as the course's gradient descent starts.

    Both are drawn from a normal distribution with standard deviation ``scale``. Use
    ``scale=0.0`` to start exactly from zeros (the key is then unused).

    Args:
      key: a JAX PRNG key, e.g. ``jax.random.key(0)``.
      n_features: number of features (length of the weight).
      scale: standard deviation of the initial draw; 0 gives zeros.
      dtype: float dtype; JAX's default float (float32, or float64 with x64) if None.

    Returns:
      LinearParams with ``weight`` of shape ``(n_features,)`` and a scalar ``bias``.

    Example:
      >>> import jax
      >>> p = init_params(jax.random.key(0), 3)
      >>> p.weight.shape, p.bias.shape
      ((3,), ())
      >>> float(init_params(jax.random.key(0), 3, scale=0.0).bias)
      0.0
    """
    dtype = default_float() if dtype is None else dtype
    if isinstance(scale, int | float) and scale == 0:
        # No draw at all: random-number code is a large part of a sweep's compile time.
        return LinearParams(weight=jnp.zeros(n_features, dtype), bias=jnp.zeros((), dtype))
    # One draw for weight and bias together: half the random-number code of two draws from
    # split keys, which matters for the compile time of a whole sweep (it is vmapped).
    draw = _positive_zero(scale * jax.random.normal(key, (n_features + 1,), dtype))
    return LinearParams(weight=draw[:-1], bias=draw[-1])


def _positive_zero(x: jax.Array) -> jax.Array:
    # scale=0 times a negative draw is -0.0; users starting "from zeros" expect 0.0.
    return jnp.where(x == 0, jnp.zeros_like(x), x)
