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


def check_init(init, n_features: int, run_shape: tuple[int, ...] = (),
               axes: tuple[str, ...] = ()) -> LinearParams:
    """A given start (``fit(init=...)``, ``sweep``, ``grid_sweep``), checked and cast to
    JAX's default float, with the run axes ``run_shape`` in front of its leaves.

    ``init`` is one ``LinearParams`` (weight ``(n_features,)``, bias ``()``) shared by every
    run, or one per run: leaves with the leading axes ``run_shape`` (the runs' grid, named
    ``axes`` in the errors), as a sweep's result's ``params`` have; an axis of length 1
    there is shared along that grid axis (``(K, 1, d)``: one start per learning rate, the
    same for every seed). Traced leaves (the caller's ``jit``, ``vmap``, ``grad``) are
    checked by shape and dtype only; concrete ones must be finite too.

    Args:
      init: the start.
      n_features: the data's number of features.
      run_shape: the runs' grid shape (``()`` for one run).
      axes: the grid's axis names, for the errors.

    Returns:
      LinearParams with weight ``(*run_shape, n_features)`` and bias ``run_shape`` (a shared
      start broadcast), NumPy arrays, or JAX arrays where ``init`` is traced.

    Raises:
      TypeError: ``init`` is not a ``LinearParams``, or a leaf is not a float array.
      ValueError: a wrong number of features, wrong run axes, or a NaN or infinite value.

    Example:
      >>> p = check_init(LinearParams(np.ones(2), np.float32(0.5)), 2, (3,), ("seed",))
      >>> p.weight.shape, p.bias.shape
      ((3, 2), (3,))
      >>> check_init(LinearParams(np.ones((4, 1, 2)), np.zeros((4, 1))), 2, (4, 3)).bias.shape
      (4, 3)
      >>> check_init(LinearParams(np.ones(3), 0.0), 2)
      Traceback (most recent call last):
      ...
      ValueError: init.weight has 3 features, the data have 2
    """
    if not isinstance(init, LinearParams):
        raise TypeError("init must be a jaxgd.LinearParams(weight, bias), e.g. a result's "
                        f"params, got {type(init).__name__}")
    dtype = default_float()
    leaves = {}
    for name, value in (("weight", init.weight), ("bias", init.bias)):
        traced = is_traced(value)
        if not traced:
            if isinstance(value, str | bytes) or value is None:
                raise TypeError(f"init.{name} must be a float array, got "
                                f"{type(value).__name__}")
            value = np.asarray(value)
        if not np.issubdtype(np.dtype(value.dtype), np.floating):
            raise TypeError(f"init.{name} must be a float array (the start's values), got "
                            f"dtype {np.dtype(value.dtype)}")
        leaves[name] = value
    weight, bias = leaves["weight"], leaves["bias"]
    if weight.ndim == 0 or weight.shape[-1] != n_features:
        got = "a scalar" if weight.ndim == 0 else f"{weight.shape[-1]} features"
        raise ValueError(f"init.weight has {got}, the data have {n_features}")
    lead, bias_lead = tuple(weight.shape[:-1]), tuple(bias.shape)
    fits = lead == () or (len(lead) == len(run_shape) and all(
        size in (1, runs) for size, runs in zip(lead, run_shape, strict=True)))
    if lead != bias_lead or not fits:
        named = f" ({', '.join(axes)})" if axes else ""
        per_run = f", or one per run: weight {(*run_shape, n_features)} and bias " \
            f"{tuple(run_shape)}, the runs' axes{named} (an axis of 1 is shared)" \
            if run_shape else ""
        raise ValueError(f"init has weight shape {tuple(weight.shape)} and bias shape "
                         f"{bias_lead}: expected one start for every run, weight "
                         f"{(n_features,)} and bias (){per_run}")
    for name, value in leaves.items():
        if not is_traced(value) and not np.isfinite(value).all():
            raise ValueError(f"init.{name} holds NaN or inf: the start must be finite")
    xp = jnp if is_traced(leaves) else np
    weight = xp.broadcast_to(xp.asarray(weight, dtype), (*run_shape, n_features))
    bias = xp.broadcast_to(xp.asarray(bias, dtype), tuple(run_shape))
    return LinearParams(weight=weight, bias=bias)
