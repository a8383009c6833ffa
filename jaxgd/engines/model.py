"""The engine of a user's own model (``jaxgd.Model``): its loss on the rows, on the direct path.

The engine reads what the direct engine reads (``engine.Rows``: the rows, and with k folds
one row weighting per fold), so held-out splits, k folds, sharding and early exit treat it
as they treat the direct engine; only the loss, the start and the held-out loss are the
model's. It descends in the model's own parameters (no change of coordinates), from the start
in the run's traced inputs (``Engine.start``: the model's ``init``, or the ``init=`` given to
fit, sweep or grid_sweep), never a constant of the program, so ``jax.grad`` with respect to
the start flows through the runs. The ridge ``l2`` is not applied
(``jaxgd.pipeline.custom`` refuses it): a penalty is part of the model's loss.

The loss's noise floor is unknown (0: the monitor takes 16·eps²·loss₀, as ``descend`` does
for a bare loss), and so is the optimum: verdicts come from the losses alone.

Example:
  >>> import jax.numpy as jnp, numpy as np
  >>> from jaxgd.core.custom_model import Model
  >>> model = Model(lambda p, b: jnp.mean((b[0] @ p - b[1]) ** 2), jnp.zeros(1))
  >>> engine = model_engine(model)
  >>> data = engine.prepare(np.ones((2, 1)), np.array([1.0, 3.0]), 0.0, jnp.float32)
  >>> float(engine.loss(data, 0.0)(jnp.array([2.0])))
  1.0
  >>> engine.start(data, model.start_values(jnp.array([2.0])))
  Array([2.], dtype=float32)
"""

from __future__ import annotations

import weakref

import jax
import jax.numpy as jnp

from jaxgd.core.custom_model import Model
from jaxgd.engines.engine import DIRECT, Engine, Rows

#: One engine per model, so that jit, which keys on the engine, compiles once per model.
_ENGINES: weakref.WeakKeyDictionary[Model, Engine] = weakref.WeakKeyDictionary()


def model_engine(model: Model) -> Engine:
    """The ``Engine`` that trains ``model`` (the same value for the same model)."""
    engine = _ENGINES.get(model)
    if engine is None:
        engine = _make(model)
        _ENGINES[model] = engine
    return engine


def rows_loss(model: Model, params, rows: Rows) -> jax.Array:
    """The model's loss on ``rows``: ``loss(params, (X, y))``, or with a row weighting
    (k folds) the weighted sum of the one-row losses (equal to the mean over the weighted
    rows for a loss that is a mean over rows)."""
    if rows.weight is None:
        return model.loss(params, (rows.X, rows.y))
    one_row = jax.vmap(lambda x, t: model.loss(params, (x[None], t[None])))(rows.X, rows.y)
    return jnp.sum(rows.weight * one_row, axis=-1)


def _make(model: Model) -> Engine:
    return DIRECT._replace(
        name="direct",
        to_coordinates=lambda data, params: params,
        from_coordinates=lambda data, coordinates: coordinates,
        loss=lambda data, l2: lambda params: rows_loss(model, params, data),
        noise=lambda data: 0.0,
        n_features=lambda data: model.size(),
        held_loss=lambda data, held, params: rows_loss(model, params, held),
        batch_loss=lambda data, params, batch, padded: batch_loss(model, params, batch,
                                                                  data, padded),
        start=lambda data, inputs: model.start_from(inputs, data.X.dtype),
    )


def batch_loss(model: Model, params, batch, rows: Rows, padded: bool) -> jax.Array:
    """The model's loss on a mini-batch (``jaxgd.core.minibatch.Batch``: row indices, and
    which are real): ``loss(params, (X[rows], y[rows]))``; a batch that may carry padding
    (``padded``: batch_size does not divide n) takes the mean of the one-row losses over
    its real rows (for a loss that is a mean over rows, the same)."""
    X, y = rows.X[batch.rows], rows.y[batch.rows]
    if not padded:
        return model.loss(params, (X, y))
    one_row = jax.vmap(lambda x, t: model.loss(params, (x[None], t[None])))(X, y)
    weights = batch.real.astype(one_row.dtype)
    return jnp.sum(one_row * weights) / jnp.sum(weights)


__all__ = ["batch_loss", "model_engine", "rows_loss"]
