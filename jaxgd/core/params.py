"""The linear model's parameters: a weight per feature and one bias, as a pytree."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core.threefry import straight
from jaxgd.inputs.validation import check_seed, default_float, is_traced


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
    key: jax.Array | int, n_features: int, scale: float = 0.01, dtype=None
) -> LinearParams:
    """Draws a random weight and bias near zero, as the course's gradient descent starts.

    Both are drawn from a normal distribution with standard deviation ``scale``. Use
    ``scale=0.0`` to start exactly from zeros (the key is then unused).

    The draw is made in float32 whatever ``dtype`` is, and then cast: a seed gives the same
    start in float32 and under x64 (where float64 holds the float32 start exactly), so
    switching precision changes the rounding of the run, not its starting point.

    Args:
      key: a JAX PRNG key, e.g. ``jax.random.key(0)`` (or a raw ``jax.random.PRNGKey``),
        or an integer seed, as ``fit(seed=...)`` takes: ``init_params(0, d)`` is
        ``init_params(jax.random.key(0), d)``.
      n_features: number of features (length of the weight).
      scale: standard deviation of the initial draw; 0 gives zeros.
      dtype: float dtype; JAX's default float (float32, or float64 with x64) if None.

    Returns:
      LinearParams with ``weight`` of shape ``(n_features,)`` and a scalar ``bias``.

    Raises:
      TypeError: if ``key`` is neither a PRNG key nor an integer seed (a float, a bool, a
        string), or a seed is traced; ValueError: if a seed is negative or >= 2**32.

    Example:
      >>> import jax
      >>> p = init_params(jax.random.key(0), 3)
      >>> p.weight.shape, p.bias.shape
      ((3,), ())
      >>> bool((init_params(0, 3).weight == p.weight).all())
      True
      >>> float(init_params(jax.random.key(0), 3, scale=0.0).bias)
      0.0
    """
    dtype = default_float() if dtype is None else dtype
    key = as_key(key)
    if isinstance(scale, int | float) and scale == 0:
        # No draw at all: random-number code is a large part of a sweep's compile time.
        return LinearParams(weight=jnp.zeros(n_features, dtype), bias=jnp.zeros((), dtype))
    # One draw for weight and bias together: half the random-number code of two draws from
    # split keys, which matters for the compile time of a whole sweep (it is vmapped). It is
    # scaled in float32 too, so the float64 start is the float32 start, cast.
    # Its bits come from a straight-line copy of the hash (jaxgd.core.threefry): the same draw.
    draw = jax.random.normal(straight(key), (n_features + 1,), DRAW_DTYPE)
    draw = _positive_zero(jnp.asarray(scale, DRAW_DTYPE) * draw).astype(dtype)
    return LinearParams(weight=draw[:-1], bias=draw[-1])


#: The dtype every start is drawn in, whatever the run's: see ``init_params``.
DRAW_DTYPE = jnp.float32


def as_key(key) -> jax.Array:
    """A PRNG key from a key (typed or raw) or an integer seed.

    Example:
      >>> import jax
      >>> bool(jax.random.key_data(as_key(7)).tolist() == [0, 7])
      True
      >>> as_key(0.5)
      Traceback (most recent call last):
      ...
      TypeError: key must be a JAX PRNG key (jax.random.key(0)) or an integer seed, got float
    """
    if isinstance(key, bool) or not isinstance(key, int | np.integer | np.ndarray | jax.Array):
        raise TypeError("key must be a JAX PRNG key (jax.random.key(0)) or an integer seed, "
                        f"got {type(key).__name__}")
    if isinstance(key, int | np.integer):
        return jax.random.key(check_seed(key))
    dtype = key.dtype
    if jnp.issubdtype(dtype, jax.dtypes.prng_key):
        return key
    if dtype == jnp.uint32 and key.shape[-1:] == (2,):  # a raw key, jax.random.PRNGKey(0)
        return jax.random.wrap_key_data(key)
    if jnp.issubdtype(dtype, jnp.integer) and key.ndim == 0:
        # An integer array: a traced seed under the caller's vmap, or a concrete one.
        return jax.random.key(key if is_traced(key) else check_seed(key.item()))
    raise TypeError("key must be a JAX PRNG key (jax.random.key(0)) or an integer seed, got "
                    f"an array of {dtype} with shape {key.shape}")


def _positive_zero(x: jax.Array) -> jax.Array:
    # scale=0 times a negative draw is -0.0; users starting "from zeros" expect 0.0.
    return jnp.where(x == 0, jnp.zeros_like(x), x)
