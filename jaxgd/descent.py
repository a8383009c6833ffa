"""The one compiled descent loop: any pytree of parameters, any scalar loss, any optax optimizer.

Everything else in jaxgd (``fit``, ``sweep``, ``grid_sweep``) is a thin layer over
``descend``. The loop is a single ``lax.scan`` of fixed length, so a whole grid of runs is
one ``vmap`` of it; the only host round trips are the ones asked for (a progress report
every ``progress_every`` steps, batches streamed from a file). It is pure: it runs under the
caller's ``jit``, ``vmap``, ``grad`` and ``jvp``, with traced ``tol`` and
``divergence_factor`` too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxgd import convergence, progress
from jaxgd.convergence import Monitor, init_monitor, update_monitor
from jaxgd.result import Descent
from jaxgd.validation import check_non_negative, check_positive_int, is_traced

PyTree = Any


class Batches(NamedTuple):
    """A stream of batches for ``descend``: ``init() -> state``, ``next(state, step) ->
    (state, batch)``; with it the loss is called as ``loss_fn(params, batch)``."""

    init: Callable[[], PyTree]
    next: Callable[[PyTree, jax.Array], tuple[PyTree, PyTree]]


def check_snapshot_steps(snapshot_steps: Sequence[int] | None, num_steps: int) -> tuple[int, ...]:
    """Validates snapshot steps (each in [0, num_steps]) and returns them sorted, unique."""
    if snapshot_steps is None:
        return ()
    steps = tuple(sorted({int(s) for s in snapshot_steps}))
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


def descend(
    loss_fn: Callable[[PyTree], jax.Array],
    params: PyTree,
    optimizer: optax.GradientTransformation,
    num_steps: int,
    *,
    tol: float = convergence.DEFAULT_TOL,
    patience: int = convergence.DEFAULT_PATIENCE,
    divergence_factor: float = convergence.DEFAULT_DIVERGENCE_FACTOR,
    stop_at_convergence: bool = False,
    snapshot_steps: Sequence[int] | None = None,
    progress_every: int = 0,
    log_every: int = 1,
    batches: Batches | None = None,
    noise=0.0,
    initial_loss=None,
    has_aux: bool = False,
    optimum=None,
    monotone: bool = False,
    unstable=False,
    unroll: int | None = None,
) -> Descent:
    """Runs ``num_steps`` steps of ``optimizer`` on ``loss_fn`` from ``params`` in one scan.

    Each step computes the loss and its gradient with ``jax.value_and_grad``, asks the
    optimizer for an update and applies it. The optimizer's ``update`` also gets optax's
    extra arguments ``value`` (the loss), ``grad`` and ``value_fn`` (the loss as a function
    of the parameters), so transformations that need them, such as
    ``optax.contrib.reduce_on_plateau`` or ``optax.lbfgs``, work as they are. A run that
    diverges stops updating (its params stay where the blow-up was seen, later losses are
    NaN); with ``stop_at_convergence`` a
    converged run stops updating too (later losses repeat its final loss). Either way the
    history keeps its fixed length, so ``descend`` stays vmappable. See
    ``jaxgd.convergence`` for the exact criteria.

    Args:
      loss_fn: maps parameters to a scalar loss (or to ``(loss, aux)`` with ``has_aux``).
      params: initial parameters, any pytree of float arrays.
      optimizer: an optax ``GradientTransformation``, e.g. ``optax.sgd(0.1)``.
      num_steps: number of updates (static: it fixes the history's length).
      tol: relative loss change at or below which a step counts as flat (may be traced).
      patience: flat steps in a row that prove convergence.
      divergence_factor: a loss above this multiple of the initial loss means divergence
        (may be traced).
      stop_at_convergence: freeze the parameters once converged.
      snapshot_steps: steps in [0, num_steps] whose parameters to keep (static).
      progress_every: if > 0, call ``jaxgd.progress.report(steps_done)`` on the host every
        this many steps (static; shared by all runs of a vmapped sweep).
      log_every: keep every k-th loss (steps 0, k, 2k, ...), so a long run's history takes
        num_steps/k entries. Convergence is still judged at every step.
      batches: a stream of mini-batches (see ``jaxgd.minibatch``); then ``loss_fn`` takes
        ``(params, batch)`` and each step's loss is that of its batch.
      noise: the loss's absolute rounding noise: changes within it count as flat.
      initial_loss: the loss divergence is measured against (the loss at step 0 if None).
      has_aux: ``loss_fn`` returns ``(loss, aux)``; the result's ``aux`` then holds aux at
        each logged step.
      optimum: the lowest loss there is, if known (may be traced; None or NaN if not): a
        flat run far above it is stalled, not converged (see ``jaxgd.convergence``).
      monotone: the loss can only fall below the optimizer's stability limit (plain
        gradient descent on a quadratic): rising for ``patience`` steps means diverging.
      unstable: the run is known to be above its optimizer's stability limit (may be
        traced): its loss rising past its start means diverging.
      unroll: steps per iteration of the compiled loop (``lax.scan``'s ``unroll``; static).
        None: the backend's default (``default_unroll``). A speed setting: the same steps
        in the same order (bit-identical on XLA:CPU in the tests; a compiler may fuse an
        unrolled body differently, within float rounding).

    Returns:
      A ``Descent`` with the final parameters, loss history, verdicts and snapshots.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> run = descend(lambda p: (p - 3.0) ** 2, jnp.float32(0.0), optax.sgd(0.25), 20)
      >>> round(float(run.params), 4), run.losses.shape, float(run.losses[0])
      (3.0, (20,), 9.0)

      The loss may carry auxiliary outputs, recorded at every logged step:

      >>> run = descend(lambda p: ((p - 3.0) ** 2, {"p": p}), jnp.float32(0.0),
      ...               optax.sgd(0.25), 4, has_aux=True)
      >>> run.aux["p"].tolist()
      [0.0, 1.5, 2.25, 2.625]
    """
    num_steps = check_positive_int(num_steps, "num_steps")
    patience = check_positive_int(patience, "patience")
    log_every = check_positive_int(log_every, "log_every")
    tol = check_non_negative(tol, "tol")
    if not is_traced(divergence_factor) and not divergence_factor > 1:
        raise ValueError(f"divergence_factor must be > 1, got {divergence_factor}")
    unroll = default_unroll() if unroll is None else check_positive_int(unroll, "unroll")
    steps = check_snapshot_steps(snapshot_steps, num_steps)
    snapshot_at = jnp.asarray(steps, jnp.int32)
    if batches is None:  # full batch: one stream whose batch is nothing
        batches = Batches(init=lambda: (), next=lambda state, step: (state, ()))
        full_loss = loss_fn
        loss_fn = lambda params, _: full_loss(params)  # noqa: E731
    if not has_aux:  # one form inside: (loss, aux), with no aux
        plain_loss = loss_fn
        loss_fn = lambda params, batch: (plain_loss(params, batch), None)  # noqa: E731
    value_and_grad = jax.value_and_grad(loss_fn, has_aux=True)
    floor_loss = jnp.nan if optimum is None else optimum
    optimizer = optax.with_extra_args_support(optimizer)
    _, first_batch = jax.eval_shape(batches.next, batches.init(), jnp.int32(0))
    loss_dtype = jax.eval_shape(loss_fn, params, first_batch)[0].dtype
    num_logs = -(-num_steps // log_every)
    padded = num_logs * log_every != num_steps  # the last block runs past num_steps
    # Snapshots at the loop's boundaries (step 0, the end, a block's first step) split the loop
    # instead of testing every step: a cond per step costs a host round trip for its
    # predicate on a GPU and splits the step's fusions on any backend. Only a step inside a
    # block (log_every > 1) still takes its snapshot from a cond.
    cuts = tuple(s // log_every for s in steps
                 if s % log_every == 0 and 0 < s < num_logs * log_every)
    inside = [s if s % log_every and s != num_steps else -1 for s in steps]
    inside_at = jnp.asarray(inside, jnp.int32) if any(s >= 0 for s in inside) else None
    snapshots = jax.tree_util.tree_map(
        lambda leaf: jnp.zeros((len(steps), *jnp.shape(leaf)), jnp.result_type(leaf)), params
    )

    def step_fn(carry, step):
        params, opt_state, monitor, snapshots, stream = carry
        stream, batch = batches.next(stream, step)
        (loss, aux), grads = value_and_grad(params, batch)
        was_diverged = monitor.diverged
        new_monitor = update_monitor(monitor, loss, step, tol, patience, divergence_factor,
                                     noise, floor_loss, monotone, unstable)
        if padded:  # steps past the end change nothing
            new_monitor = _select(step < num_steps, new_monitor, monitor)
        monitor = new_monitor
        if inside_at is not None:
            snapshots = _take_snapshot(snapshots, inside_at, step, params)
        updates, new_opt_state = optimizer.update(
            grads, opt_state, params, value=loss, grad=grads,
            value_fn=lambda p: loss_fn(p, batch)[0])
        new_params = optax.apply_updates(params, updates)
        moving = ~monitor.diverged
        if stop_at_convergence:
            moving &= ~monitor.converged
        if padded:
            moving &= step < num_steps
        params = _select(moving, new_params, params)
        opt_state = _select(moving, new_opt_state, opt_state)
        recorded = jnp.where(was_diverged, jnp.nan, loss).astype(loss_dtype)
        if progress_every > 0:
            _maybe_report(step + 1, progress_every, num_steps)
        return (params, opt_state, monitor, snapshots, stream), (recorded, aux)

    def block_fn(carry, first_step):
        # log_every steps; only the first one's loss is kept.
        carry, logs = jax.lax.scan(step_fn, carry, first_step + jnp.arange(log_every))
        return carry, jax.tree_util.tree_map(lambda leaf: leaf[0], logs)

    if 0 in steps:
        snapshots = _write_snapshot(snapshots, steps.index(0), params)
    carry = (params, optimizer.init(params), init_monitor(loss_dtype, initial_loss), snapshots,
             batches.init())
    body = step_fn if log_every == 1 else block_fn
    firsts = jnp.arange(num_logs, dtype=jnp.int32) * log_every
    pieces = []
    for start, stop in zip((0, *cuts), (*cuts, num_logs), strict=True):
        carry, logs = jax.lax.scan(body, carry, firsts[start:stop], unroll=unroll)
        pieces.append(logs)
        if stop < num_logs:  # a cut: the params after stop·log_every steps
            slot = steps.index(stop * log_every)
            carry = (*carry[:3], _write_snapshot(carry[3], slot, carry[0]), *carry[4:])
    losses, auxes = jax.tree_util.tree_map(lambda *parts: jnp.concatenate(parts), *pieces)
    params, _, monitor, snapshots, stream = carry
    if num_steps in steps:
        snapshots = _write_snapshot(snapshots, steps.index(num_steps), params)
    _, last_batch = batches.next(stream, jnp.int32(num_steps))
    return Descent(
        params=params,
        losses=losses,
        final_loss=loss_fn(params, last_batch)[0],
        converged_step=monitor.converged_step,
        diverged=monitor.diverged,
        diverged_step=monitor.diverged_step,
        stalled=monitor.stalled(patience),
        snapshots=snapshots,
        snapshot_steps=snapshot_at,
        loss_steps=jnp.arange(num_logs, dtype=jnp.int32) * log_every,
        aux=auxes if has_aux else None,
    )


def _maybe_report(steps_done: jax.Array, every: int, num_steps: int) -> None:
    # The step counter is not batched under vmap, so this fires once per `every` steps for a
    # whole sweep; the cond keeps the host round trip off the other steps.
    jax.lax.cond(
        (steps_done % every == 0) & (steps_done <= num_steps),
        lambda: jax.debug.callback(progress.report, steps_done),
        lambda: None,
    )


def default_unroll(backend: str | None = None) -> int:
    """Steps per iteration of the compiled loop on ``backend`` (JAX's default if None).

    On a CPU one step per iteration is fastest: XLA:CPU runs an unrolled body's larger
    fusions no faster and compiles them longer (measured in BENCHMARKS.md). On a GPU or TPU
    every iteration costs kernel launches whatever its work, so several steps share one.

    Example:
      >>> default_unroll("cpu"), default_unroll("gpu")
      (1, 8)
    """
    backend = jax.default_backend() if backend is None else backend
    return UNROLL.get(backend, UNROLL["gpu"])


#: ``default_unroll`` by backend (others, TPU included, take the GPU's).
UNROLL = {"cpu": 1, "gpu": 8}


def _write_snapshot(snapshots: PyTree, slot: int, params: PyTree) -> PyTree:
    return jax.tree_util.tree_map(lambda slots, leaf: slots.at[slot].set(leaf), snapshots,
                                  params)


def _select(pred: jax.Array, on_true: PyTree, on_false: PyTree) -> PyTree:
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def _take_snapshot(snapshots: PyTree, snapshot_at: jax.Array, step, params: PyTree) -> PyTree:
    # A handful of slots, each written only at its own step, instead of keeping every step's
    # parameters (num_steps x size) just to index a few. The step counter is shared by all
    # runs of a sweep, so the cond stays a real branch under vmap and the other steps skip it.
    hit = snapshot_at == step

    def write(snapshots):
        def update(slots, leaf):
            mask = hit.reshape((-1,) + (1,) * jnp.ndim(leaf))
            return jnp.where(mask, leaf, slots)

        return jax.tree_util.tree_map(update, snapshots, params)

    return jax.lax.cond(jnp.any(hit), write, lambda s: s, snapshots)


__all__ = ["Batches", "Descent", "Monitor", "default_snapshot_steps", "default_unroll", "descend"]
