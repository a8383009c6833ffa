"""``Descent``, what one run of the compiled loop returns, and what every result type shares:
registration as a pytree of arrays with static metadata, NamedTuple-style helpers, the
fields that hold one entry per run, and the float64 reference loss in hashable form.

``descend`` (``jaxgd.core.descent``) returns a ``Descent``; ``fit`` and the sweeps return its
subclasses (``jaxgd.results.result``).

Example:
  >>> import jax, jax.numpy as jnp
  >>> d = Descent(params=jnp.zeros(2), losses=jnp.ones(3), final_loss=jnp.array(1.0),
  ...             converged_step=jnp.array(-1), diverged=jnp.array(False),
  ...             diverged_step=jnp.array(-1), snapshots=None, snapshot_steps=jnp.zeros(0),
  ...             loss_steps=jnp.arange(3))
  >>> bool(d.converged), len(jax.tree_util.tree_leaves(d))
  (False, 8)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

PyTree = Any


def pytree_record(*meta: str):
    """Registers a dataclass as a pytree: ``meta`` fields are static, the rest are leaves."""

    def register(cls):
        names = [f.name for f in dataclasses.fields(cls)]
        data = [name for name in names if name not in meta]
        cls._meta_fields = tuple(meta)  # read by jaxgd.results.saving
        return jax.tree_util.register_dataclass(cls, data_fields=data, meta_fields=list(meta))

    return register


class Record:
    """NamedTuple-style helpers shared by every result type."""

    def _replace(self, **changes):
        if "optimal_loss" in changes:  # stored in its hashable form
            changes["reference"] = freeze(changes.pop("optimal_loss"))
        return dataclasses.replace(self, **changes)

    def _asdict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @property
    def converged(self):
        """Per run: whether it converged (``converged_step >= 0``)."""
        return self.converged_step >= 0


@pytree_record()
@dataclasses.dataclass(frozen=True, kw_only=True)
class Descent(Record):
    """What one descent run returns (under ``vmap`` every field gains the grid's axes).

    Attributes:
      params: parameters after the last update (frozen where the run stopped).
      losses: ``(num_logs,)``; entry i is the loss of the parameters before update
        ``loss_steps[i]``, so entry 0 is the loss at initialization. NaN after the step at
        which the run diverged.
      final_loss: the loss of ``params``, i.e. after the last update.
      converged_step: first step of the flat stretch that proved convergence, -1 if never.
      diverged: whether the loss became non-finite or grew past the divergence multiple.
      diverged_step: the step at which it did, -1 if never.
      stalled: the run ended flat but not converged: its loss stopped falling while still
        far above the known optimum, and its parameters short of the optimum's, because its
        steps are too small to matter (see ``jaxgd.core.convergence``); more steps, or a
        larger learning rate, would lower it.
      snapshots: ``params`` with a leading axis, one entry per snapshot step.
      snapshot_steps: the steps of the snapshots; step t means the parameters before update t
        (step ``num_steps`` means the final parameters).
      loss_steps: the step of each history entry: 0, k, 2k, ... with ``log_every=k``.
      epoch_losses: mini-batch runs only: ``(epochs + 1,)``, the loss on all the data at the
        start of each epoch and at the end; None for full-batch runs.
      aux: with a loss that returns ``(loss, aux)`` (``descend(..., has_aux=True)``), the aux
        pytree at each logged step, stacked like ``losses``; else None.
      validation_losses: with held-out data (``jaxgd.pipeline.holdout``), the held-out MSE at each
        logged step (same ``loss_steps`` as ``losses``, NaN after a divergence); else None.
      final_validation_loss: the held-out MSE of ``params``, NaN where the run diverged
        (its frozen parameters estimate nothing; ``jaxgd.core.convergence.diverged_as_nan``); None
        without held-out data.
      steps_run: the steps computed for the run: ``num_steps``, or fewer where it left a
        segmented sweep early (converged, diverged or pruned; see ``jaxgd.tuning.segments``).
      pruned_step: the step at which successive halving stopped the run, -1 if it did not.
      observed: what ``descend``'s ``observe`` returned at each logged step, stacked like
        ``losses``: with ``track_sharpness=True``, Adam's preconditioned sharpness
        (``jaxgd.theory.sharpness``); else None.
    """

    params: PyTree
    losses: jax.Array
    final_loss: jax.Array
    converged_step: jax.Array
    diverged: jax.Array
    diverged_step: jax.Array
    snapshots: PyTree
    snapshot_steps: jax.Array
    stalled: jax.Array | None = None
    loss_steps: jax.Array
    epoch_losses: jax.Array | None = None
    aux: PyTree = None
    validation_losses: jax.Array | None = None
    final_validation_loss: jax.Array | None = None
    steps_run: jax.Array | None = None
    pruned_step: jax.Array | None = None
    observed: PyTree = None


#: The result axis of the points drawn from a search space (``jaxgd.tuning.search``).
SAMPLE_AXIS = "sample"

#: The fields that hold one entry per run; the rest of a ``Descent`` is shared by all runs.
PER_RUN = ("params", "losses", "final_loss", "converged_step", "diverged", "diverged_step",
           "stalled", "snapshots", "epoch_losses", "aux", "steps_run", "pruned_step",
           "observed", "validation_losses", "final_validation_loss", "errors")
SHARED = ("snapshot_steps", "loss_steps")



def freeze(optimal_loss):
    """A reference loss in hashable form (static pytree metadata): a float, None, or
    ``(shape, values)`` for an array."""
    if optimal_loss is None:
        return None
    if np.ndim(optimal_loss) == 0:
        return float(optimal_loss)
    array = np.asarray(optimal_loss, np.float64)
    return (array.shape, tuple(array.reshape(-1).tolist()))


def thaw(reference):
    """The inverse of ``freeze``."""
    if reference is None or isinstance(reference, float):
        return reference
    shape, values = reference
    return np.asarray(values, np.float64).reshape(shape)
