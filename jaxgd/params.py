"""The linear model's parameters: a weight per feature and one bias, as a pytree."""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.validation import default_float


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
    draw = _positive_zero(scale * jax.random.normal(_straight(key), (n_features + 1,), dtype))
    return LinearParams(weight=draw[:-1], bias=draw[-1])


def _positive_zero(x: jax.Array) -> jax.Array:
    # scale=0 times a negative draw is -0.0; users starting "from zeros" expect 0.0.
    return jnp.where(x == 0, jnp.zeros_like(x), x)


# The initial draw's random bits, computed as JAX computes them but compiled straight-line.
# On a CPU JAX lowers its Threefry hash as a rolled loop, which XLA compiles in ~0.25 s
# (a quarter of a first sweep's compile); the same 20 rounds written out compile in
# ~0.03 s. Same key, same counters, same uint32 arithmetic: the same bits, so the same
# draw (tests/core/test_params.py compares them with jax.random.normal's).
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _threefry(k1, k2, x1, x2):
    """Threefry-2x32 (20 rounds) of the counters (x1, x2) under the key (k1, k2)."""
    ks = (k1, k2, k1 ^ k2 ^ np.uint32(0x1BD11BDA))
    x1, x2 = x1 + ks[0], x2 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x1 = x1 + x2
            x2 = x1 ^ ((x2 << np.uint32(r)) | (x2 >> np.uint32(32 - r)))
        x1, x2 = x1 + ks[(i + 1) % 3], x2 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x1, x2


def _random_bits(key, bit_width: int, shape):
    if bit_width != 32 or not jax.config.jax_threefry_partitionable or math.prod(
            shape) >= 2**32:  # another layout of the counters: JAX's own
        return _threefry_impl().random_bits(key, bit_width, shape)
    # The counters are the flat indices as (high, low) words, as JAX's partitionable bits.
    low = jax.lax.iota(np.uint32, math.prod(shape)).reshape(shape)
    bits1, bits2 = _threefry(key[0], key[1], jnp.zeros(shape, np.uint32), low)
    return bits1 ^ bits2


def _threefry_impl():
    from jax.extend import random  # on first use: it adds ~0.03 s to importing jaxgd

    return random.threefry_prng_impl


@functools.cache
def _straight_impl():
    threefry = _threefry_impl()
    from jax.extend import random

    return random.define_prng_impl(
        key_shape=(2,), seed=threefry.seed, split=threefry.split, random_bits=_random_bits,
        fold_in=threefry.fold_in, name="threefry2x32 (straight-line)", tag="fry_straight")


def _straight(key: jax.Array) -> jax.Array:
    """The same Threefry key, drawing its bits through the straight-line hash (any other
    key, a legacy uint32 one included, as it is)."""
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key) or jax.random.key_impl(
            key) != "threefry2x32":
        return key
    return jax.random.wrap_key_data(jax.random.key_data(key), impl=_straight_impl())
