"""How the compiled loop holds the parameters: one array, or one scalar per coordinate.

Under ``vmap`` a weight of shape ``(d,)`` becomes a ``(runs, d)`` array: the runs are the
slow axis and the d coordinates, a handful, the fast one. For the moment-based engines,
whose per-step work is a few operations per coordinate, XLA:CPU then spends its time on
short rows, small matrix products and reductions over d. Held as a tuple of d + 1 scalars
instead, each coordinate becomes its own ``(runs,)`` array: every operation of a step is
elementwise along the runs and fuses into a few vectorized loops. Measured on the 2-core
VM, Auto MPG (d = 7), 1000 steps, plain gradient descent with the gram engine: 1024 runs
48 ms -> 13 ms, 8192 runs 0.47 s -> 0.11 s.

The unrolled form writes O(d) (eigen engine) or O(d²) (gram engine) terms into the program,
so it is used only up to ``MAX_SCALARS`` coordinates, where compiling stays well under a
second; wider models keep the array form.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgd.core.params import LinearParams

#: The widest model (features + 1) whose parameters are held as scalars.
MAX_SCALARS = 16


def use_scalars(n_features: int) -> bool:
    """Whether a model with ``n_features`` features is held as scalars.

    Example:
      >>> use_scalars(7), use_scalars(100)
      (True, False)
    """
    return n_features + 1 <= MAX_SCALARS


def to_scalars(vector: jax.Array) -> tuple[jax.Array, ...]:
    """The coordinates of ``vector`` (last axis) as a tuple of arrays.

    Example:
      >>> [float(s) for s in to_scalars(jnp.array([1.0, 2.0]))]
      [1.0, 2.0]
    """
    return tuple(vector[..., i] for i in range(vector.shape[-1]))


def from_scalars(scalars: tuple[jax.Array, ...]) -> jax.Array:
    """The inverse of ``to_scalars``: coordinates stacked on a last axis."""
    return jnp.stack(scalars, axis=-1)


def flatten(params: LinearParams) -> jax.Array:
    """``[weight, bias]`` as one vector (last axis), leading axes kept."""
    return jnp.concatenate([params.weight, params.bias[..., None]], axis=-1)


def unflatten(theta: jax.Array) -> LinearParams:
    """The inverse of ``flatten``."""
    return LinearParams(weight=theta[..., :-1], bias=theta[..., -1])
