"""The one compiled descent loop: any pytree of parameters, any scalar loss, any optax optimizer.

Everything else in jaxgd (``fit``, ``sweep``, ``grid_sweep``) is a thin layer over
``descend``. The loop is a single ``lax.scan`` of fixed length, so a whole grid of runs is
one ``vmap`` of it; the only host round trips are the ones asked for (a progress report
every ``progress_every`` steps, batches streamed from a file). It is pure: it runs under the
caller's ``jit``, ``vmap``, ``grad`` and ``jvp``, with traced ``tol`` and
``divergence_factor`` too. ``descent_loop`` hands out the same loop as ``init``, ``run`` and
``finish``, so that a sweep can run it in segments and let finished runs go
(``jaxgd.tuning.segments``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgd.core import convergence, progress
from jaxgd.core.convergence import Monitor, init_monitor, update_monitor
from jaxgd.core.record import Descent
from jaxgd.core.snapshots import (
    MAX_KEPT_APART,
    MAX_PIECES,
    check_snapshot_steps,
    default_snapshot_steps,
    fill_snapshots,
    keep_snapshots_apart,
    snapshot_cuts,
    take,
    take_snapshot,
    write_snapshot,
    write_snapshots,
)
from jaxgd.inputs.validation import (
    check_bool,
    check_non_negative,
    check_positive_int,
    is_traced,
)

PyTree = Any


class Batches(NamedTuple):
    """A stream of batches for ``descend``: ``init() -> state``, ``next(state, step) ->
    (state, batch)``; with it the loss is called as ``loss_fn(params, batch)``."""

    init: Callable[[], PyTree]
    next: Callable[[PyTree, jax.Array], tuple[PyTree, PyTree]]


class LoopState(NamedTuple):
    """Everything the descent loop carries from one step to the next (``Loop``'s state)."""

    params: PyTree
    opt_state: PyTree
    monitor: Monitor
    snapshots: PyTree
    stream: PyTree


class Loop(NamedTuple):
    """``descend``'s loop as three pure functions, to run it in segments (``descent_loop``).

    ``init() -> state`` at the initial parameters; ``run(state, first_step, length) ->
    (state, (losses, logged))`` runs steps ``first_step .. first_step + length - 1``
    (``length`` static, a multiple of ``log_every``; ``first_step`` a multiple of
    ``log_every``, traced or not) and logs every ``log_every``-th loss (``logged``: a
    ``Logged`` of what else was recorded there); ``finish(state, losses, logged, position)``
    returns the ``Descent``, ``position`` being the steps run so far: snapshot slots at or
    past it take the state's parameters (frozen, for a run that stopped). ``descend`` is
    ``init``, one ``run`` over all the steps, then ``finish``; the same steps run in
    several ``run`` calls give the same state and losses. A concrete ``first_step`` lets
    ``run`` take a few snapshots on block boundaries in its one scan on a CPU
    (``keep_snapshots_apart``), or cut its scan at them elsewhere, instead of testing every
    step; a traced one (``jaxgd.tuning.segments``) takes every snapshot from a cond; either
    way the snapshots are the same copies of the parameters.
    """

    init: Callable[[], LoopState]
    run: Callable[[LoopState, Any, int], tuple[LoopState, tuple[jax.Array, Logged]]]
    finish: Callable[..., Descent]


class Logged(NamedTuple):
    """What the loop records at each logged step beside the loss (None when not asked for):
    ``loss_fn``'s aux (``has_aux``), ``observe``'s output and the held-out loss
    (``validation``)."""

    aux: PyTree = None
    observed: PyTree = None
    validation: jax.Array | None = None


class LoopSettings(NamedTuple):
    """``descend``'s settings as one value (its keywords and their defaults; see ``descend``
    for each), which ``descent_loop`` takes, plus ``segmented`` (see ``descent_loop``).

    Example:
      >>> LoopSettings(tol=1e-4)._replace(log_every=10).log_every
      10
    """

    tol: float = convergence.DEFAULT_TOL
    patience: int = convergence.DEFAULT_PATIENCE
    divergence_factor: float = convergence.DEFAULT_DIVERGENCE_FACTOR
    stop_at_convergence: bool = False
    snapshot_steps: Sequence[int] | None = None
    progress_every: int = 0
    log_every: int = 1
    batches: Batches | None = None
    noise: Any = 0.0
    initial_loss: Any = None
    has_aux: bool = False
    optimum: Any = None
    monotone: bool = False
    unstable: Any = False
    segmented: bool = False
    observe: Callable[[PyTree, PyTree], PyTree] | None = None
    validation: Callable[[PyTree], jax.Array] | None = None
    unroll: int | None = None
    at_optimum: Callable[[PyTree], jax.Array] | None = None


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
    observe: Callable[[PyTree, PyTree], PyTree] | None = None,
    validation: Callable[[PyTree], jax.Array] | None = None,
    unroll: int | None = None,
    at_optimum: Callable[[PyTree], jax.Array] | None = None,
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
    ``jaxgd.core.convergence`` for the exact criteria.

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
      progress_every: if > 0, call ``jaxgd.core.progress.report(steps_done)`` on the host every
        this many steps (static; shared by all runs of a vmapped sweep).
      log_every: keep every k-th loss (steps 0, k, 2k, ...), so a long run's history takes
        num_steps/k entries. Convergence is still judged at every step.
      batches: a stream of mini-batches (see ``jaxgd.core.minibatch``); then ``loss_fn`` takes
        ``(params, batch)`` and each step's loss is that of its batch.
      noise: the loss's absolute rounding floor near the optimum, or a pair ``(floor,
        spread)`` (the floor plus spread·√loss): changes within it count as flat, and a loss
        within it of ``optimum`` as near (see ``jaxgd.core.convergence``). 0: unknown, and
        16·eps²·(the loss at step 0) stands in.
      initial_loss: the loss divergence is measured against (the loss at step 0 if None).
      has_aux: ``loss_fn`` returns ``(loss, aux)``; the result's ``aux`` then holds aux at
        each logged step.
      optimum: the lowest loss there is, if known (may be traced; None or NaN if not): a
        flat run far above it is stalled, not converged (see ``jaxgd.core.convergence``).
      monotone: the loss can only fall below the optimizer's stability limit (plain
        gradient descent on a quadratic): rising for ``patience`` steps means diverging.
      unstable: the run is known to be above its optimizer's stability limit (may be
        traced): its loss rising past its start means diverging.
      observe: ``observe(params, opt_state)`` -> a pytree of float arrays, recorded at
        every logged step in the result's ``observed`` (NaN after a divergence, like the
        losses); ``opt_state`` is the state after that step's update, the one it was
        computed with (e.g. ``jaxgd.theory.sharpness.tracker``). None records nothing.
      validation: maps parameters to a held-out loss (see ``jaxgd.pipeline.holdout``), evaluated
        only at the logged steps, on the same parameters as ``losses`` (NaN after a
        divergence), and at the end: the result's ``validation_losses`` and
        ``final_validation_loss`` (NaN if the run diverged); without it both are None.
        It is not differentiated by the loop and does not steer the descent.
      unroll: steps per iteration of the compiled loop (``lax.scan``'s ``unroll``; static).
        None: the backend's default (``default_unroll``). A speed setting: the same steps
        in the same order, in another compiled program (XLA may fuse an unrolled body
        differently, so equal to float rounding, not always bit for bit).
      at_optimum: maps the final parameters to whether they are the optimum's to the
        dtype's resolution (``jaxgd.core.convergence.at_optimum``); a run flat at its end
        and there has converged however high its loss reads (``final_verdicts``). None:
        judged by the loss alone.

    Returns:
      A ``Descent`` with the final parameters, loss history, verdicts and snapshots.

    Raises:
      TypeError: before anything is traced, naming the argument: a loss that is not a
        scalar float (or not ``(loss, aux)`` with ``has_aux``), an optimizer that is not a
        ``GradientTransformation`` (``optax.sgd`` for ``optax.sgd(0.1)``), a switch that
        is not True or False, or a static argument (``num_steps``, ``snapshot_steps``)
        traced by the caller.

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

      A held-out loss is recorded at the same steps, and for the final parameters:

      >>> run = descend(lambda p: (p - 3.0) ** 2, jnp.float32(0.0), optax.sgd(0.25), 4,
      ...               validation=lambda p: (p - 2.0) ** 2)
      >>> run.validation_losses.tolist(), float(run.final_validation_loss)
      ([4.0, 0.25, 0.0625, 0.390625], 0.66015625)
    """
    # Every keyword, as one value (the parameters' names are its fields).
    given = locals()
    settings = LoopSettings(**{name: given[name] for name in LoopSettings._fields
                               if name in given})
    loop = descent_loop(loss_fn, params, optimizer, num_steps, settings)
    steps_scanned = -(-num_steps // log_every) * log_every
    state, (losses, logged) = loop.run(loop.init(), 0, steps_scanned)
    return loop.finish(state, losses, logged)


def descent_loop(
    loss_fn: Callable[[PyTree], jax.Array],
    params: PyTree,
    optimizer: optax.GradientTransformation,
    num_steps: int,
    settings: LoopSettings | None = None,
    **keywords: Any,
) -> Loop:
    """``descend``'s loop as a ``Loop`` of pure functions, to run in segments that carry the
    whole state (parameters, optimizer state, monitor, snapshots) from one to the next.

    Takes ``descend``'s arguments, its keywords as one ``LoopSettings`` (None: the defaults)
    or as keywords that replace its fields, plus ``segmented``: the loop will run in
    pieces, and steps at or past ``num_steps`` (a last segment that runs over) must change
    nothing.
    ``jaxgd.tuning.segments`` uses it to let finished runs of a sweep leave between segments.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> loss = lambda p: (p - 3.0) ** 2
      >>> loop = descent_loop(loss, jnp.float32(0.0), optax.sgd(0.25), 20, segmented=True)
      >>> state, (first, _) = loop.run(loop.init(), 0, 8)
      >>> state, (rest, _) = loop.run(state, 8, 16)  # runs past step 20: masked
      >>> whole = descend(loss, jnp.float32(0.0), optax.sgd(0.25), 20)
      >>> bool((jnp.concatenate([first, rest[:12]]) == whole.losses).all())
      True
      >>> bool(loop.finish(state, None, position=20).params == whole.params)
      True
    """
    unknown = sorted(set(keywords) - set(LoopSettings._fields))
    if unknown:
        raise TypeError(f"descent_loop got unknown settings {', '.join(unknown)}; valid: "
                        f"{', '.join(LoopSettings._fields)}")
    settings = (LoopSettings() if settings is None else settings)._replace(**keywords)
    (tol, patience, divergence_factor, stop_at_convergence, snapshot_steps, progress_every,
     log_every, batches, noise, initial_loss, has_aux, optimum, monotone, unstable, segmented,
     observe, validation, unroll, at_optimum) = settings  # in the fields' order
    num_steps = check_positive_int(num_steps, "num_steps")
    patience = check_positive_int(patience, "patience")
    log_every = check_positive_int(log_every, "log_every")
    tol = check_non_negative(tol, "tol")
    if not is_traced(divergence_factor) and not divergence_factor > 1:
        raise ValueError(f"divergence_factor must be > 1, got {divergence_factor}")
    unroll = default_unroll() if unroll is None else check_positive_int(unroll, "unroll")
    steps = check_snapshot_steps(snapshot_steps, num_steps)
    stop_at_convergence = check_bool(stop_at_convergence, "stop_at_convergence")
    has_aux, monotone = check_bool(has_aux, "has_aux"), check_bool(monotone, "monotone")
    optimizer = _check_optimizer(optimizer)
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a function of the parameters, got "
                        f"{type(loss_fn).__name__} {loss_fn!r}")
    snapshot_at = jnp.asarray(steps, jnp.int32)
    if batches is None:  # full batch: one stream whose batch is nothing
        batches = Batches(init=lambda: (), next=lambda state, step: (state, ()))
        full_loss = loss_fn
        loss_fn = lambda params, _: full_loss(params)  # noqa: E731
    _, first_batch = jax.eval_shape(batches.next, batches.init(), jnp.int32(0))
    loss_dtype = _loss_dtype(loss_fn, params, first_batch, has_aux)
    if not has_aux:  # one form inside: (loss, aux), with no aux
        plain_loss = loss_fn
        loss_fn = lambda params, batch: (plain_loss(params, batch), None)  # noqa: E731
    value_and_grad = jax.value_and_grad(loss_fn, has_aux=True)
    floor_loss = jnp.nan if optimum is None else optimum
    optimizer = optax.with_extra_args_support(optimizer)
    num_logs = -(-num_steps // log_every)
    # The last block (or segment) runs past num_steps.
    padded = num_logs * log_every != num_steps or segmented
    start_params = params

    def step_fn(carry, step, take_at=snapshot_at):
        params, opt_state, monitor, snapshots, stream = carry
        held = None
        if validation is not None and log_every == 1:  # on the parameters the loss is of
            held = jnp.where(monitor.diverged, jnp.nan, validation(params))
        stream, batch = batches.next(stream, step)
        (loss, aux), grads = value_and_grad(params, batch)
        was_diverged = monitor.diverged
        new_monitor = update_monitor(monitor, loss, step, tol, patience, divergence_factor,
                                     noise, floor_loss, monotone, unstable)
        if padded:  # steps past the end change nothing
            new_monitor = _select(step < num_steps, new_monitor, monitor)
        monitor = new_monitor
        if take_at is not None:
            snapshots = take_snapshot(snapshots, take_at, step, params)
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
        seen = None
        if observe is not None:  # off: the step computes exactly what it did before
            seen = jax.tree_util.tree_map(lambda leaf: jnp.where(was_diverged, jnp.nan, leaf),
                                          observe(params, new_opt_state))
        if progress_every > 0:
            _maybe_report(step + 1, progress_every, num_steps)
        return (params, opt_state, monitor, snapshots, stream), (recorded,
                                                                 Logged(aux, seen, held))

    def block_fn(carry, first_step, take_at=snapshot_at):
        # log_every steps; only the first one's logs are kept, so the held-out loss is
        # computed once per block, on the parameters before the block's first update.
        held = None
        if validation is not None:
            held = jnp.where(carry[2].diverged, jnp.nan, validation(carry[0]))
        carry, logs = jax.lax.scan(partial(step_fn, take_at=take_at), carry,
                                   first_step + jnp.arange(log_every))
        recorded, logged = jax.tree_util.tree_map(lambda leaf: leaf[0], logs)
        return carry, (recorded, logged._replace(validation=held))

    def init() -> LoopState:
        snapshots = jax.tree_util.tree_map(
            lambda leaf: jnp.zeros((len(steps), *jnp.shape(leaf)), jnp.result_type(leaf)),
            start_params)
        return LoopState(start_params, optimizer.init(start_params),
                         init_monitor(loss_dtype, initial_loss, level=at_optimum is not None),
                         snapshots, batches.init())

    def run(state: LoopState, first_step, length: int):
        length = check_positive_int(length, "length")
        if length % log_every or (not padded and not (
                isinstance(first_step, int) and first_step + length <= num_steps)):
            raise ValueError(f"run {length} steps from step {first_step}: the length must be a "
                             f"multiple of log_every={log_every}, and a loop made without "
                             f"segmented=True cannot run past num_steps={num_steps}")
        body = step_fn if log_every == 1 else block_fn
        concrete = bool(steps) and isinstance(first_step, int)
        if concrete and keep_snapshots_apart():
            within = [s for s in steps if first_step <= s < first_step + length]
            later = [s for s in within if s > first_step]
            if len(later) <= MAX_KEPT_APART and not any(
                    (s - first_step) % log_every for s in within):
                return _run_keeping_apart(body, state, first_step, length, later)
        cuts, inside = snapshot_cuts(steps, first_step, length, log_every) if concrete else (
            (), [])
        if not steps or not 0 < len(cuts) <= MAX_PIECES:
            # No snapshots, a traced step counter (segments), or many snapshot steps (a
            # mini-batch run keeps every epoch's start): one scan, and each snapshot from a
            # cond on the (unbatched) counter. Cut at each of 40 snapshot steps, the loop
            # compiled its step 40 times (40 s for a 60-epoch mini-batch fit on a CPU).
            take_at = snapshot_at if steps else None
            return _scan(partial(body, take_at=take_at), state, first_step, length // log_every)
        # A concrete counter and a few snapshots (the course's three) off a CPU, or one inside
        # a block: a snapshot on a block boundary cuts the scan there instead of testing
        # every step (a cond per step costs a host round trip for its predicate on a GPU);
        # only a step inside a block (log_every > 1) still takes its snapshot from a cond.
        # Same values: a snapshot is a copy of the parameters at its step either way.
        take_at = jnp.asarray([s if s in inside else -1 for s in steps],
                              jnp.int32) if inside else None
        pieces = []
        for start, stop in zip(cuts, (*cuts[1:], first_step + length), strict=True):
            if start in steps:
                state = state._replace(snapshots=write_snapshot(
                    state.snapshots, steps.index(start), state.params))
            if stop > start:
                state, logs = _scan(partial(body, take_at=take_at), state, start,
                                    (stop - start) // log_every)
                pieces.append(logs)
        return state, jax.tree_util.tree_map(lambda *parts: jnp.concatenate(parts), *pieces)

    def _run_keeping_apart(body, state: LoopState, first_step: int, length: int,
                           later: list[int]):
        # One scan, the step compiled once (on a CPU, ``keep_snapshots_apart``). The snapshot
        # at the first step is taken here; the later ones are kept apart from the snapshots,
        # taken from a cond on the (unbatched) counter after the iteration that hands on
        # their step's parameters (read after the update, the parameters are not copied,
        # and the false branch is empty). Cut at the middle snapshot instead, the loop
        # compiled the step twice (~0.2 s of XLA:CPU's compile); a cond on all the
        # snapshots, before the update, made 8,192 runs 1.4x as slow. Same values: a
        # snapshot is a copy of the parameters at its step.
        if first_step in steps:
            state = state._replace(snapshots=write_snapshot(
                state.snapshots, steps.index(first_step), state.params))
        step_body = partial(body, take_at=None)
        if not later:
            return _scan(step_body, state, first_step, length // log_every)
        at = jnp.asarray(later, jnp.int32)

        def step_then_take(carry, first):
            *carry, taken = carry
            carry, logs = step_body(tuple(carry), first)
            hit = first + log_every == at
            taken = jax.lax.cond(jnp.any(hit), partial(take, hit, carry[0]), lambda t: t,
                                 taken)
            return (*carry, taken), logs

        taken = jax.tree_util.tree_map(
            lambda leaf: jnp.zeros((len(later), *jnp.shape(leaf)), jnp.result_type(leaf)),
            state.params)
        firsts = jnp.asarray(first_step + np.arange(length // log_every) * log_every,
                             jnp.int32)
        (*carry, taken), logs = jax.lax.scan(step_then_take, (*state, taken), firsts,
                                             unroll=unroll)
        state = LoopState(*carry)
        return state._replace(snapshots=write_snapshots(
            state.snapshots, {steps.index(s): i for i, s in enumerate(later)}, taken)), logs

    def _scan(body, state: LoopState, first_step, num_iterations: int):
        firsts = jnp.asarray(first_step, jnp.int32) + jnp.arange(
            num_iterations, dtype=jnp.int32) * log_every
        carry, logs = jax.lax.scan(body, tuple(state), firsts, unroll=unroll)
        return LoopState(*carry), logs

    def finish(state: LoopState, losses, logged: Logged | None = None,
               position=num_steps) -> Descent:
        params, _, monitor, snapshots, stream = state
        logged = Logged() if logged is None else logged
        if steps:  # slots at or past the steps run hold the last (or frozen) parameters
            snapshots = fill_snapshots(snapshots, snapshot_at, position, params)
        _, last_batch = batches.next(stream, jnp.int32(num_steps))
        steps_run = jnp.minimum(jnp.asarray(position, jnp.int32), num_steps)
        converged_step, stalled = monitor.converged_step, monitor.stalled(patience)
        if at_optimum is not None:  # judged by the final parameters too
            converged_step, stalled = convergence.final_verdicts(
                converged_step, monitor.diverged, stalled, monitor.level_steps, patience,
                steps_run - 1, at_optimum(params))
        return Descent(
            params=params,
            losses=losses,
            final_loss=loss_fn(params, last_batch)[0],
            converged_step=converged_step,
            diverged=monitor.diverged,
            diverged_step=monitor.diverged_step,
            stalled=stalled,
            snapshots=snapshots,
            snapshot_steps=snapshot_at,
            loss_steps=jnp.arange(num_logs, dtype=jnp.int32) * log_every,
            aux=logged.aux if has_aux else None,
            steps_run=steps_run,
            pruned_step=jnp.asarray(-1, jnp.int32),
            observed=logged.observed,
            validation_losses=logged.validation,
            # NaN where the run diverged: its frozen parameters' held-out loss measures
            # nothing (convergence.diverged_as_nan, the rule errors follow too).
            final_validation_loss=None if validation is None else convergence.diverged_as_nan(
                validation(params), monitor.diverged),
        )

    return Loop(init, run, finish)


def _check_optimizer(optimizer):
    """An optax optimizer value (``init`` and ``update``), not the function that builds one
    (``optax.sgd`` for ``optax.sgd(0.1)``), which optax would fail on deep inside."""
    if callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update",
                                                                        None)):
        return optimizer
    got = f"{type(optimizer).__name__} {optimizer!r}"
    if callable(optimizer):
        name = getattr(optimizer, "__name__", "it")
        if getattr(optimizer, "__module__", "").startswith("optax"):
            name = f"optax.{name}"
        got = (f"the function {name}, which builds one: call it with a learning rate, e.g. "
               f"{name}(0.1)")
    raise TypeError(f"optimizer must be an optax GradientTransformation (with init and "
                    f"update), e.g. optax.sgd(0.1), got {got}")


def _loss_dtype(loss_fn, params, batch, has_aux: bool):
    """The loss's dtype, from the shapes ``loss_fn`` returns (nothing is computed); a loss
    of the wrong form is named here rather than failing inside ``jax.grad``."""
    out = jax.eval_shape(loss_fn, params, batch)
    if has_aux:
        if not (isinstance(out, tuple | list) and len(out) == 2):
            raise TypeError(f"with has_aux=True loss_fn must return (loss, aux), got "
                            f"{_form(out)}; leave has_aux out for a loss alone")
        out = out[0]
    scalar = isinstance(out, jax.ShapeDtypeStruct) and out.shape == () and jnp.issubdtype(
        out.dtype, jnp.floating)
    if not scalar:
        hint = "; for (loss, aux) pass has_aux=True" if isinstance(out, tuple) else ""
        raise TypeError(f"loss_fn must return a scalar float loss, got {_form(out)}{hint}")
    return out.dtype


def _form(out) -> str:
    """What a function returned, in words, from ``jax.eval_shape``'s answer."""
    if isinstance(out, jax.ShapeDtypeStruct):
        return f"an array of shape {out.shape} and dtype {out.dtype}"
    if isinstance(out, tuple | list):
        return f"a {type(out).__name__} of {len(out)}"
    return type(out).__name__


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


def _maybe_report(steps_done: jax.Array, every: int, num_steps: int) -> None:
    # The step counter is not batched under vmap, so this fires once per `every` steps for a
    # whole sweep; the cond keeps the host round trip off the other steps.
    jax.lax.cond(
        (steps_done % every == 0) & (steps_done <= num_steps),
        lambda: jax.debug.callback(progress.report, steps_done),
        lambda: None,
    )


def _select(pred: jax.Array, on_true: PyTree, on_false: PyTree) -> PyTree:
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


__all__ = ["Batches", "Descent", "Logged", "Loop", "LoopSettings", "LoopState", "Monitor",
           "default_snapshot_steps", "default_unroll", "descend", "descent_loop"]
