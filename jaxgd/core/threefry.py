"""The initial draw's random bits: JAX's Threefry-2x32, compiled straight-line.

On a CPU JAX lowers its Threefry hash as a rolled loop, which XLA compiles in ~0.25 s (a
quarter of a first sweep's compile); the same 20 rounds written out compile in ~0.03 s.
``straight(key)`` is the same key drawing its bits through the written-out hash: same key,
same counters, same uint32 arithmetic, so the same bits and the same draw
(tests/core/test_params.py compares them with ``jax.random.normal``'s). Any other key, or a
layout of the counters this does not write out, draws through JAX's own.

Example:
  >>> import jax
  >>> key = jax.random.key(3)
  >>> bool((jax.random.normal(straight(key), (5,)) == jax.random.normal(key, (5,))).all())
  True
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

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


def straight(key: jax.Array) -> jax.Array:
    """The same Threefry key, drawing its bits through the straight-line hash (any other
    key, a legacy uint32 one included, as it is)."""
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key) or jax.random.key_impl(
            key) != "threefry2x32":
        return key
    return jax.random.wrap_key_data(jax.random.key_data(key), impl=_straight_impl())
