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
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.inputs.validation import default_float, is_traced

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
        weights); its floats are cast to the run's float dtype. Must be concrete: it is
        also the structure a run's ``init=`` must have (``fit(..., model=m, init=p0)``
        starts from ``p0`` instead, which may be the caller's tracer: ``jax.grad`` with
        respect to the start flows through the runs).
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
                             "give Model concrete arrays (its structure) and the traced start "
                             "as fit's, sweep's or grid_sweep's init=")
        for leaf in leaves:
            if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
                raise TypeError(f"Model: init's arrays must be floats, got one of dtype "
                                f"{jnp.result_type(leaf)}")
            if not np.isfinite(np.asarray(leaf)).all():
                raise ValueError("Model: init holds NaN or infinite values")

    def start_values(self, init, run_shape: tuple[int, ...] = (),
                     axes: tuple[str, ...] = ()) -> dict[str, Any]:
        """``train``'s traced inputs that hold the runs' start: one per leaf of ``init``
        (``START`` and the leaf's place), the runs' grid ``run_shape`` unrolled in row-major
        order in front (none for one run). The start enters the compiled program as data,
        so ``jax.grad`` with respect to it flows through the runs.

        Args:
          init: the start given to fit, sweep or grid_sweep (None: this model's ``init``): a
            pytree with ``init``'s structure, each leaf of its leaf's shape (one start for
            every run), or with the runs' axes ``run_shape`` in front (one per run, as a
            sweep's result's ``params`` have; an axis of 1 is shared along that axis). It
            may be traced (checked by shape and dtype only); concrete leaves must be finite.
          run_shape: the runs' grid shape (``()`` for one run).
          axes: the grid's axis names, for the errors.

        Raises:
          TypeError: another structure than ``init``'s, or a leaf that is not floats.
          ValueError: a leaf of another shape, or NaN or infinite values.

        Example:
          >>> m = Model(lambda p, b: jnp.mean((b[0] @ p["w"] - b[1]) ** 2), {"w": np.zeros(2)})
          >>> m.start_values({"w": np.ones((3, 2))}, (3,), ("learning_rate",))[START + "0"].shape
          (3, 2)
        """
        leaves = _start_leaves(self.init if init is None else init, self.init)
        lead = _run_axes(leaves, jax.tree_util.tree_leaves(self.init), run_shape, axes)
        xp = jnp if is_traced(leaves) else np
        values = {}
        for place, (leaf, own) in enumerate(zip(leaves, jax.tree_util.tree_leaves(self.init),
                                                strict=True)):
            shape = np.shape(own)
            leaf = xp.asarray(leaf, default_float())
            if run_shape:
                leaf = xp.broadcast_to(xp.reshape(leaf, (*lead, *shape)), (*run_shape, *shape))
                leaf = xp.reshape(leaf, (-1, *shape))
            values[f"{START}{place}"] = leaf
        return values

    def start_from(self, inputs: Mapping[str, jax.Array], dtype) -> PyTree:
        """A run's start from its traced inputs (``start_values``), in the run's ``dtype``."""
        treedef = jax.tree_util.tree_structure(self.init)
        return jax.tree_util.tree_unflatten(treedef, [
            jnp.asarray(inputs[f"{START}{place}"], dtype) for place in range(treedef.num_leaves)])

    def size(self) -> int:
        """The number of parameters (the scalars in ``init``)."""
        return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(self.init)))


#: The prefix of ``train``'s traced inputs that hold a model's start (``Model.start_values``).
START = "model_init:"


def _start_leaves(init, own) -> list:
    """``init``'s leaves, checked against the model's own ``init`` (its structure, floats,
    finite where concrete)."""
    if jax.tree_util.tree_structure(init) != jax.tree_util.tree_structure(own):
        raise TypeError(f"init must have the structure of the model's init "
                        f"({jax.tree_util.tree_structure(own)}), e.g. a result's params; got "
                        f"{jax.tree_util.tree_structure(init)}")
    leaves = jax.tree_util.tree_leaves(init)
    for leaf in leaves:
        dtype = None if isinstance(leaf, str | bytes) else jnp.result_type(leaf)
        if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"init's arrays must be floats (the start's values), got "
                            f"{type(leaf).__name__ if dtype is None else dtype}")
        if not is_traced(leaf) and not np.isfinite(np.asarray(leaf)).all():
            raise ValueError("init holds NaN or inf: the start must be finite")
    return leaves


def _run_axes(leaves, own, run_shape: tuple[int, ...], axes: tuple[str, ...]) -> tuple:
    """The run axes in front of every leaf of a given start: () (one start for every run) or
    axes that fit ``run_shape`` (1 or its size each), the same for every leaf."""
    leads = set()
    for leaf, mine in zip(leaves, own, strict=True):
        shape, size = np.shape(leaf), np.ndim(mine)
        if shape[len(shape) - size:] != np.shape(mine) or len(shape) < size:
            leads.add(None)
        else:
            leads.add(tuple(shape[:len(shape) - size]))
    lead = leads.pop() if len(leads) == 1 else None
    fits = lead == () or (lead is not None and len(lead) == len(run_shape) and all(
        size in (1, runs) for size, runs in zip(lead, run_shape, strict=True)))
    if not fits:
        named = f" ({', '.join(axes)})" if axes else ""
        per_run = (f", or one per run: the runs' axes {tuple(run_shape)}{named} in front of "
                   f"each (an axis of 1 is shared)") if run_shape else ""
        raise ValueError(f"init's arrays have shapes {[np.shape(leaf) for leaf in leaves]}: "
                         f"expected the model's init's, {[np.shape(m) for m in own]}, one "
                         f"start for every run{per_run}")
    return lead


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
