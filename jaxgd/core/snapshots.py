"""Where the descent loop keeps its snapshots: the parameters at a few steps, copied in the
compiled loop (``jaxgd.core.descent``) into slots, one per snapshot step.

A concrete step counter on a CPU takes a few snapshots in one scan (``keep_snapshots_apart``:
the step compiles once); elsewhere the scan is cut at them (``snapshot_cuts``); a traced
counter, or many snapshot steps, takes each from a cond every step (``take_snapshot``).
Either way a snapshot is a copy of the parameters at its step.

Example:
  >>> import jax.numpy as jnp
  >>> slots = write_snapshot(jnp.zeros((3, 2)), 1, jnp.ones(2))
  >>> slots.tolist()
  [[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxgd.inputs.validation import check_integer, check_static

PyTree = Any


def check_snapshot_steps(snapshot_steps: Sequence[int] | None, num_steps: int) -> tuple[int, ...]:
    """Validates snapshot steps (each an integer in [0, num_steps]; a list, even of one) and
    returns them sorted, unique. They fix the snapshots' shape, so they are static."""
    if snapshot_steps is None:
        return ()
    check_static(snapshot_steps, "snapshot_steps", "a list of Python ints")
    listed = isinstance(snapshot_steps, Sequence | set | frozenset) or getattr(
        snapshot_steps, "ndim", None) == 1
    if isinstance(snapshot_steps, str | bytes) or not listed:
        raise TypeError(f"snapshot_steps must be a list of steps (e.g. [0, 10]), got "
                        f"{type(snapshot_steps).__name__} {snapshot_steps!r}")
    steps = tuple(sorted({check_integer(s, f"snapshot_steps[{i}]")
                          for i, s in enumerate(snapshot_steps)}))
    bad = [s for s in steps if not 0 <= s <= num_steps]
    if bad:
        raise ValueError(f"snapshot_steps must lie in [0, num_steps={num_steps}], got {bad}")
    return steps


def default_snapshot_steps(num_steps: int) -> tuple[int, ...]:
    """The course's three pictures: the model at the beginning, middle and end of training.

    The middle is taken on a log scale of steps, at √num_steps: a loss curve falls fast and
    then flattens, so step num_steps/2 would show the model as finished as at the end, while
    √num_steps shows it on its way (the course's "medium loss" picture).

    Example:
      >>> default_snapshot_steps(1000)
      (0, 31, 1000)
    """
    return tuple(sorted({0, math.isqrt(num_steps), num_steps}))


#: The most pieces ``run`` cuts its scan into at snapshot steps: each piece compiles the step
#: once more (about a quarter of a second on a CPU).
MAX_PIECES = 2


def snapshot_cuts(steps: tuple[int, ...], first_step: int, length: int,
                  log_every: int) -> tuple[tuple[int, ...], list[int]]:
    """Where ``run`` cuts its scan (``first_step`` and each snapshot step on a block
    boundary in the run), and the snapshot steps inside a block, which take a cond."""
    within = [s for s in steps if first_step <= s < first_step + length]
    cuts = sorted({first_step, *(s for s in within if (s - first_step) % log_every == 0)})
    return tuple(cuts), [s for s in within if (s - first_step) % log_every]


#: The most snapshot steps past its first that ``run`` keeps apart in its loop; with more (a
#: mini-batch run keeps every epoch's start), every snapshot comes from a cond on them all.
MAX_KEPT_APART = 4


def keep_snapshots_apart(backend: str | None = None) -> bool:
    """Whether ``run`` takes a few snapshots in one scan from a cond (``True``: on a CPU,
    where the step then compiles once) or cuts its scan at them (a GPU or TPU, where a cond
    each step would cost a host round trip for its predicate).

    Example:
      >>> keep_snapshots_apart("cpu"), keep_snapshots_apart("gpu")
      (True, False)
    """
    backend = jax.default_backend() if backend is None else backend
    return backend == "cpu"


def write_snapshot(snapshots: PyTree, slot: int, params: PyTree) -> PyTree:
    """``snapshots`` with slot ``slot`` (static) set to ``params``."""
    return write_snapshots(snapshots, {slot: 0}, jax.tree_util.tree_map(
        lambda leaf: leaf[None], params))


def write_snapshots(snapshots: PyTree, rows: dict[int, int], taken: PyTree) -> PyTree:
    """``snapshots`` with slot ``s`` set to ``taken``'s row ``rows[s]``: a few slots stacked
    row by row (static slots), which traces and compiles less than an indexed update each."""
    def write(slots, new):
        if slots.shape[0] > len(rows) + 8:  # many slots: the few written ones updated
            for s, row in rows.items():
                slots = slots.at[s].set(new[row])
            return slots
        return jnp.stack([new[rows[s]] if s in rows else slots[s]
                          for s in range(slots.shape[0])])

    return jax.tree_util.tree_map(write, snapshots, taken)


def take(hit: jax.Array, params: PyTree, taken: PyTree) -> PyTree:
    """``taken`` with ``params`` in the slots where ``hit``."""
    return jax.tree_util.tree_map(
        lambda slots, leaf: jnp.where(hit.reshape((-1,) + (1,) * jnp.ndim(leaf)), leaf[None],
                                      slots), taken, params)


def fill_snapshots(snapshots: PyTree, snapshot_at: jax.Array, position,
                   params: PyTree) -> PyTree:
    """``snapshots`` with every slot whose step is at or past ``position`` (the steps run)
    set to ``params``: the final (or frozen) parameters."""
    hit = snapshot_at >= position

    def update(slots, leaf):
        return jnp.where(hit.reshape((-1,) + (1,) * jnp.ndim(leaf)), leaf, slots)

    return jax.tree_util.tree_map(update, snapshots, params)


def take_snapshot(snapshots: PyTree, snapshot_at: jax.Array, step, params: PyTree) -> PyTree:
    """``snapshots`` with ``params`` in the slot whose step is ``step``, from a cond."""
    # A handful of slots, each written only at its own step, instead of keeping every step's
    # parameters (num_steps x size) just to index a few. The step counter is shared by all
    # runs of a sweep, so the cond stays a real branch under vmap and the other steps skip it;
    # the step's slot is written alone.
    hit = snapshot_at == step  # -1 marks a slot written elsewhere (see ``run``)
    slot = jnp.argmax(hit)

    def write(snapshots):
        return jax.tree_util.tree_map(lambda slots, leaf: slots.at[slot].set(leaf), snapshots,
                                      params)

    return jax.lax.cond(jnp.any(hit), write, lambda s: s, snapshots)
