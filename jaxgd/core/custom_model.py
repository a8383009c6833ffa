"""A user's own differentiable model for ``fit``, ``sweep`` and ``grid_sweep``: ``Model``.

Linear regression is jaxgd's fast path (its engines read the data's moments); any other model
is given as its loss, its starting parameters and, optionally, its prediction, and runs on
the direct path: the same compiled loop, verdicts, held-out losses, k folds, early exit,
pruning and search, each step computing ``loss(params, (X_rows, y_rows))`` from the rows
(``jaxgd.engines.model``).

Without a least-squares problem there is no known optimum: runs are judged by their losses
alone (converged: flat for ``patience`` steps; diverged: non-finite, past
``divergence_factor`` times the starting loss, or, for plain gradient descent, rising for
``patience`` steps to above its start), the results' ``optimal_loss`` is None and nothing
is "stalled" (that test measures the distance to a known optimum).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.inputs.validation import is_traced

PyTree = Any


@dataclasses.dataclass(frozen=True, eq=False)
class Model:
    """A differentiable model for ``fit``, ``sweep`` and ``grid_sweep`` (``model=``).

    Compared and hashed by identity: the compiled programs are keyed on it, so pass the same
    ``Model`` again to reuse them.

    Attributes:
      loss: ``loss(params, (X_rows, y_rows)) -> scalar``: the training loss on some rows of
        the data (X's rows ``(m, n_features)``, y's ``(m,)``). Held-out losses are the same
        function on the held-out rows. With ``k_folds``, and with a ``batch_size`` that does
        not divide n, it must be a mean over the rows (those losses are weighted sums of
        the one-row losses).
      init: the starting parameters of every run, a pytree of float arrays (e.g. a dict of
        weights); its floats are cast to the run's float dtype. Must be concrete.
      predict: ``predict(params, X) -> predictions`` (one per row), for the results'
        ``predict``; None: the results cannot predict.

    Example:
      >>> import jax, jax.numpy as jnp, numpy as np, jaxgd
      >>> def loss(params, batch):  # logistic regression: binary cross-entropy
      ...     X, y = batch
      ...     logits = X @ params["w"] + params["b"]
      ...     return jnp.mean(jnp.logaddexp(0.0, logits) - y * logits)
      >>> model = jaxgd.Model(loss, {"w": jnp.zeros(1), "b": jnp.zeros(())},
      ...                     predict=lambda p, X: jax.nn.sigmoid(X @ p["w"] + p["b"]))
      >>> X, y = np.array([[-2.0], [-1.0], [1.0], [2.0]]), np.array([0.0, 1.0, 0.0, 1.0])
      >>> r = jaxgd.sweep(X, y, model=model, learning_rates=[0.1, 1.0], num_steps=50)
      >>> r.losses.shape, r.optimal_loss, r.predict(X).shape
      ((2, 50), None, (2, 4))
    """

    loss: Callable[[PyTree, tuple[jax.Array, jax.Array]], jax.Array]
    init: PyTree
    predict: Callable[[PyTree, jax.Array], jax.Array] | None = None

    def __post_init__(self):
        if not callable(self.loss):
            raise TypeError(f"Model: loss must be a function loss(params, (X, y)), got "
                            f"{type(self.loss).__name__}")
        if self.predict is not None and not callable(self.predict):
            raise TypeError(f"Model: predict must be a function predict(params, X) or None, "
                            f"got {type(self.predict).__name__}")
        leaves = jax.tree_util.tree_leaves(self.init)
        if not leaves:
            raise ValueError("Model: init has no arrays: give the starting parameters, e.g. "
                             "{'w': jnp.zeros(d), 'b': jnp.zeros(())}")
        if is_traced(leaves):
            raise ValueError("Model: init is traced (inside the caller's jit, vmap or grad): "
                             "the start is part of the compiled program, so give concrete "
                             "arrays")
        for leaf in leaves:
            if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
                raise TypeError(f"Model: init's arrays must be floats, got one of dtype "
                                f"{jnp.result_type(leaf)}")
            if not np.isfinite(np.asarray(leaf)).all():
                raise ValueError("Model: init holds NaN or infinite values")

    def start(self, dtype) -> PyTree:
        """``init`` in the run's float ``dtype``."""
        return jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf, dtype), self.init)

    def size(self) -> int:
        """The number of parameters (the scalars in ``init``)."""
        return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(self.init)))


def predict_runs(model: Model, params: PyTree, X, run_ndim: int) -> jax.Array:
    """Every run's predictions from ``model.predict``: ``(*run_axes, n_samples)``, the
    ``run_ndim`` leading axes of ``params``' leaves being the runs' (0 for ``fit``).

    Raises:
      ValueError: if the model has no ``predict``.
    """
    if model.predict is None:
        raise ValueError("this result's model has no predict function: give "
                         "Model(loss, init, predict=...) to predict from its runs")
    X = jnp.asarray(X, jnp.result_type(*jax.tree_util.tree_leaves(params)))
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    run_shape = np.shape(jax.tree_util.tree_leaves(params)[0])[:run_ndim]
    flat = jax.tree_util.tree_map(lambda leaf: jnp.reshape(leaf, (-1, *np.shape(leaf)[run_ndim:])),
                                  params)
    out = jax.vmap(lambda p: model.predict(p, X))(flat)
    return out.reshape(*run_shape, *out.shape[1:])
