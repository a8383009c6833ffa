"""Mini-batch SGD: the course's batch size and epochs, as a batch stream for ``descend``.

Each epoch visits the rows in a new random order drawn from the run's batch key and cuts it
into batches of ``batch_size`` rows. When ``batch_size`` does not divide n, the last batch of
each epoch holds the n mod batch_size leftover rows: it is padded to full size with a mask,
and its loss is the mean over its real rows only, so shapes stay fixed and every row is
seen exactly once per epoch. The rows within a batch are sorted, which leaves its loss
unchanged and makes ``batch_size = n`` compute the loss of full-batch descent with
``engine="direct"``, step for step; it is another compiled program, for which XLA may pick
another matrix kernel or summation order (by the device and the CPU), so they agree to float
rounding, a few ulps (bit for bit on some CPUs). (``engine="auto"`` would pick a moment
engine for a full batch, whose float rounding differs more.)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core.descent import Batches
from jaxgd.core.model import dot
from jaxgd.core.params import LinearParams


class Batch(NamedTuple):
    """Row indices of one batch and which of them are real (False: padding)."""

    rows: jax.Array
    real: jax.Array


class EpochOrder(NamedTuple):
    """This epoch's batches: ``rows`` and ``real`` of shape (steps_per_epoch, batch_size)."""

    rows: jax.Array
    real: jax.Array


def steps_per_epoch(n_rows: int, batch_size: int) -> int:
    """Batches per epoch, the last one possibly partial.

    Example:
      >>> steps_per_epoch(392, 100)
      4
    """
    return math.ceil(n_rows / batch_size)


def epoch_order(key: jax.Array, epoch, n_rows: int, batch_size: int) -> EpochOrder:
    """The batches of one epoch: a fresh permutation of the rows, cut and sorted per batch."""
    per_epoch = steps_per_epoch(n_rows, batch_size)
    padded = per_epoch * batch_size
    order = jax.random.permutation(jax.random.fold_in(key, epoch), n_rows)
    # Padding gets the index n_rows so that sorting puts it last, behind the real rows.
    order = jnp.concatenate([order, jnp.full(padded - n_rows, n_rows, order.dtype)])
    rows = jnp.sort(order.reshape(per_epoch, batch_size), axis=1)
    real = rows < n_rows
    return EpochOrder(rows=jnp.minimum(rows, n_rows - 1), real=real)


def shuffled_batches(key: jax.Array, n_rows: int, batch_size: int) -> Batches:
    """A ``Batches`` stream for ``descend``: batch t of epoch e, reshuffled every epoch.

    Example:
      >>> stream = shuffled_batches(jax.random.key(0), n_rows=5, batch_size=2)
      >>> state, batch = stream.next(stream.init(), 2)   # the partial last batch of epoch 0
      >>> batch.real.tolist()
      [True, False]
    """
    per_epoch = steps_per_epoch(n_rows, batch_size)

    def init() -> EpochOrder:
        return epoch_order(key, 0, n_rows, batch_size)

    def next_batch(state: EpochOrder, step) -> tuple[EpochOrder, Batch]:
        epoch, index = jnp.divmod(step, per_epoch)
        # The step is shared by every run of a sweep, so this stays a real branch under vmap:
        # a new permutation once per epoch, not every step.
        state = jax.lax.cond((index == 0) & (epoch > 0),
                             lambda _: epoch_order(key, epoch, n_rows, batch_size),
                             lambda s: s, state)
        return state, Batch(rows=state.rows[index], real=state.real[index])

    return Batches(init=init, next=next_batch)


def batch_mse(params: LinearParams, batch: Batch, X: jax.Array, y: jax.Array,
              padded: bool) -> jax.Array:
    """MSE over the batch's real rows (``padded``: some batches carry padding rows)."""
    return rows_mse(params, X[batch.rows], y[batch.rows], batch.real, padded)


def rows_mse(params: LinearParams, X: jax.Array, y: jax.Array, real: jax.Array,
             padded: bool) -> jax.Array:
    """MSE over the rows of (X, y) marked ``real`` (``padded``: some may be padding).

    Example:
      >>> p = LinearParams(jnp.array([1.0]), jnp.array(0.0))
      >>> X, y = jnp.array([[1.0], [2.0], [9.0]]), jnp.array([0.0, 0.0, 0.0])
      >>> float(rows_mse(p, X, y, jnp.array([True, True, False]), padded=True))
      2.5
    """
    residual = dot(X, params.weight) + params.bias - y
    squares = residual * residual
    if not padded:
        return jnp.mean(squares)
    weights = real.astype(squares.dtype)
    return jnp.sum(squares * weights) / jnp.sum(weights)
