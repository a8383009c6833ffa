"""Early exit that saves compute: a sweep run in segments, finished runs leaving the batch.

A vmapped scan runs every member to the last step, even one that converged at step 11 of
50,000 (``stop_at_convergence`` only freezes it). Here the sweep runs ``segment_steps`` steps
at a time; each segment carries the whole loop state (parameters, optimizer state, monitor,
snapshots) to the next (``jaxgd.core.descent.descent_loop``). After a segment, the runs that are
done leave the batch and the survivors are re-packed into power-of-two batches (of at least
``MIN_BATCH`` runs), so at most about log2(runs / MIN_BATCH) + 1 batch sizes compile, each
once (and cached for the next sweep):

- a diverged run (frozen anyway: its later losses are NaN);
- with ``stop_at_convergence``, a converged run whose frozen loss is already in its history
  (its later losses repeat that value);
- with ``pruning="halving"`` (successive halving), at each rung ``min_steps·η^k`` the runs
  still going but outside the best ``1/η`` by ``selection_loss``; a pruned run is frozen
  there (``pruned_step``), its later losses repeat its ``final_loss``. The ranking reads
  the loop state at the rung, not the logged history (with ``log_every`` > 1 its last entry
  may be a whole segment old): the training loss of the last step run (the monitor's), or
  with held-out data (``jaxgd.pipeline.holdout``) the held-out loss of the parameters there. With
  k folds a grid point's folds are ranked by their mean and pruned together (``points``).

Histories keep their shape, padded as an unsegmented run pads them (the held-out history,
``validation_losses``, exactly like ``losses``), so every value a run computed, and every
verdict, equals the plain scan's (``tests/tuning/test_segments.py`` checks this): to float
rounding, since segments and re-packed batches are other compiled programs, which XLA may
sum in another order by the batch size and the CPU at hand (a few ulps; bit for bit only
where it compiles them to the same arithmetic).
``steps_run`` records the steps each run was computed for.

Under the caller's ``jit``/``vmap`` (traced inputs) the host cannot re-pack, and the sweep
falls back to the plain scan: same results, no saving.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxgd.core.descent import Descent, LoopState
from jaxgd.engines import engine as engines
from jaxgd.inputs.validation import check_positive_int
from jaxgd.pipeline import sharding
from jaxgd.pipeline.options import Options, RunConfig
from jaxgd.pipeline.training import in_weights, run_loop

#: Pruning rules: None (only finished runs leave) or "halving" (successive halving).
PRUNING = (None, "halving")
#: Segments per sweep when ``segment_steps`` is not given (without pruning).
SEGMENTS = 32
#: Batches are not re-packed below this many runs: on a CPU a step of a narrower batch
#: costs about as much, and every batch size is one more compile (about a second each).
MIN_BATCH = 64
#: Early exit (``stop_at_convergence`` without ``segment_steps``) runs in segments only from
#: this much work of the plain scan, in multiply-adds (``work``): about a second of one CPU
#: core. Below it the segments' own programs (three, and one more per batch size, each
#: compiled in a good part of a second on a CPU) and their host round trips cost more than
#: the steps they could save, and the plain scan freezes converged runs all the same.
PAYS_FROM = 1e9
#: What a run-step costs beside its loss and gradient (monitor, freezing, history), in
#: multiply-adds: measured as ~13 ns per run-step on a CPU (BENCHMARKS.md, K=8,192).
STEP_OVERHEAD = 50


class Plan(NamedTuple):
    """How a sweep runs in segments (host-side; nothing here is compiled in).

    Attributes:
      segment_steps: steps per segment, a multiple of ``log_every``.
      pruning: None or "halving".
      halving_rate: η, keep the best 1/η at each rung.
      min_steps: the first rung; later rungs at ``min_steps·η^k``.
    """

    segment_steps: int
    pruning: str | None = None
    halving_rate: int = 3
    min_steps: int = 0

    def rungs(self, num_steps: int) -> list[int]:
        """The steps at which successive halving ranks the runs.

        Example:
          >>> Plan(100, "halving", 3, 100).rungs(1000)
          [100, 300, 900]
        """
        if self.pruning is None:
            return []
        steps, rung = [], self.min_steps
        while rung < num_steps:
            steps.append(rung)
            rung *= self.halving_rate
        return steps


def work(engine: str, n_samples: int, n_features: int, num_runs: int, num_steps: int) -> float:
    """The plain scan's work in multiply-adds: each run-step's loss and gradient on the
    engine (``engines.step_cost``) plus its ``STEP_OVERHEAD``.

    Example:
      >>> work("eigen", n_samples=392, n_features=7, num_runs=7, num_steps=3000)
      1386000.0
    """
    per_step = engines.step_cost(engine, n_samples, n_features) + STEP_OVERHEAD
    return float(per_step) * num_runs * num_steps


def make_plan(options: Options, config: RunConfig,
              work: Callable[[], float] | None = None) -> Plan | None:
    """The segment plan for these options, or None when the plain scan serves as well (no
    early exit asked for, a single segment, or, for ``stop_at_convergence`` without
    ``segment_steps``, too little ``work()`` for segments to pay: see ``PAYS_FROM``).

    Raises:
      ValueError: naming the bad option (pruning, halving_rate, min_steps, segment_steps).

    Example:
      >>> from jaxgd.pipeline.options import make_config
      >>> options = Options(num_steps=6400, stop_at_convergence=True)
      >>> make_plan(options, make_config(options))
      Plan(segment_steps=200, pruning=None, halving_rate=3, min_steps=0)
    """
    pruning = options.pruning
    if pruning not in PRUNING:
        raise ValueError(f"pruning must be one of {PRUNING}, got {pruning!r}")
    rate = check_positive_int(options.halving_rate, "halving_rate", minimum=2)
    log_every, num_steps = config.log_every, config.num_steps
    min_steps = 0
    if pruning is not None:
        if config.batch_size is not None:
            raise ValueError("pruning is for full-batch runs (give num_steps, not "
                             "batch_size and epochs)")
        min_steps = options.min_steps
        if min_steps is None:  # rungs at T/η³, T/η², T/η: three halvings
            min_steps = max(1, num_steps // rate ** 3)
        min_steps = check_positive_int(min_steps, "min_steps")
    elif not config.stop_at_convergence:
        if options.segment_steps is not None:
            raise ValueError("segment_steps needs stop_at_convergence=True or pruning")
        return None
    steps = options.segment_steps
    if steps is None and pruning is None and work is not None and work() < PAYS_FROM:
        return None
    if steps is None:
        steps = min_steps if pruning else -(-num_steps // SEGMENTS)
    steps = -(-check_positive_int(steps, "segment_steps") // log_every) * log_every
    if steps >= num_steps and pruning is None:
        return None
    return Plan(steps, pruning, rate, min_steps)


def selection_loss(at_rung: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The loss by which successive halving ranks grid points at a rung: per point (index
    ``0 .. points.max()``), the mean of its runs' losses at the rung (``at_rung``, one per
    run; +inf for a run that diverged, whose loss is NaN or blown up), so a point with
    k folds is judged by its mean over them, as ``GridResult.best`` judges it at the end,
    and a diverged fold rules it out. Without folds every run is its own point.

    Example:
      >>> selection_loss(np.array([2.0, 4.0, 1.0, np.inf]), np.array([0, 0, 1, 1])).tolist()
      [3.0, inf]
    """
    at_rung = np.where(np.isnan(at_rung), np.inf, np.asarray(at_rung, np.float64))
    return np.bincount(points, weights=at_rung) / np.bincount(points)


# One compiled program per (batch size, segment length): the step counter ``first`` is a
# shared traced scalar, so every segment of a length reuses its program, and under vmap the
# counter stays unbatched (snapshot and progress conds stay real branches).
@partial(jax.jit, static_argnames=("engine", "config"))
def _start(engine: engines.Engine, data, hyper, config: RunConfig, held=None) -> LoopState:
    return jax.vmap(lambda h: run_loop(engine, data, h, config, segmented=True,
                                       held=held)[0].init())(hyper)


@partial(jax.jit, static_argnames=("engine", "config", "length"))
def _advance(engine: engines.Engine, data, hyper, state: LoopState, first, config: RunConfig,
             length: int, held=None):
    def one(h, s):
        loop = run_loop(engine, data, h, config, segmented=True, held=held)[0]
        state, (losses, logged) = loop.run(s, first, length)
        # The held-out loss of the parameters at the segment's end, which successive
        # halving ranks by: what a run stopped here reports as its final_validation_loss
        # (only that field of finish is used, the rest is dead code to XLA).
        at_end = None if held is None else loop.finish(state, None).final_validation_loss
        return state, (losses, logged.validation, at_end)

    return jax.vmap(one)(hyper, state)


@partial(jax.jit, static_argnames=("engine", "config"))
def _finish(engine: engines.Engine, data, hyper, state: LoopState, position,
            config: RunConfig, held=None) -> Descent:
    def one(h, s, p):
        loop, engine_run, data_run = run_loop(engine, data, h, config, segmented=True,
                                              held=held)
        return in_weights(engine_run, data_run, loop.finish(s, None, position=p))

    return jax.vmap(one)(hyper, state, position)


def run_segments(engine: engines.Engine, data, hyper: dict[str, np.ndarray], config: RunConfig,
                 plan: Plan, chunk_size: int, mode: str, held=None,
                 points: np.ndarray | None = None) -> Descent:
    """Every run of ``hyper`` (one entry per run), segment by segment; NumPy results with
    the runs on the leading axis, as the plain scan would give them. ``held``: held-out
    data, as in ``jaxgd.pipeline.training.train``; their history is carried and padded like the
    losses, and successive halving ranks by the held-out loss. ``points``: the grid point
    of each run (with k folds, a point's folds share one; ``selection_loss``), None: every
    run its own."""
    num_runs = next(iter(hyper.values())).size
    points = np.arange(num_runs) if points is None else np.asarray(points)
    batches = _Batches(hyper, chunk_size, mode)
    state = batches.gather(np.arange(num_runs),
                           lambda h, _: _start(engine, data, h, config, held))
    log_every, num_steps = config.log_every, config.num_steps
    num_logs = -(-num_steps // log_every)
    dtype = np.asarray(state.monitor.previous_loss).dtype
    losses = np.full((num_runs, num_logs), np.nan, dtype)
    # The held-out history (None without held-out data), kept like the losses.
    validation = None if held is None else np.full((num_runs, num_logs), np.nan, dtype)
    steps_run = np.zeros(num_runs, np.int32)
    # Each run's loss at the end of its last segment, which halving ranks by (a run that
    # left keeps its last one: a frozen run's stays its loss).
    at_rung = np.full(num_runs, np.inf)
    pruned = np.full(num_runs, -1, np.int32)
    rungs = plan.rungs(num_steps)
    active, position = np.arange(num_runs), 0
    while active.size and position < num_steps:
        # Every segment as long, the last one too (its steps past the end are masked): one
        # program per batch size, not two.
        length, first = plan.segment_steps, np.int32(position)  # no conversion program
        new, (logs, held_logs, held_now) = batches.gather(
            active, partial(_advance, engine, data, first=first, config=config, length=length,
                            held=held), state)
        _put(state, active, new)
        logged = slice(position // log_every, min((position + length) // log_every, num_logs))
        losses[active, logged] = logs[:, :logged.stop - logged.start]
        if validation is not None:
            validation[active, logged] = held_logs[:, :logged.stop - logged.start]
        position += length
        steps_run[active] = min(position, num_steps)
        done = _finished(state, active, position, config)
        at_rung[active] = _at_end(state, active, held_now)
        if rungs and rungs[0] <= position < num_steps:  # one ranking for the rungs passed
            rungs = [rung for rung in rungs if rung > position]
            losing = _losing(at_rung, points, active, done, plan)
            pruned[active[losing]] = position
            done |= losing
        for history in (losses, validation):
            if history is not None:
                _pad(history, active[done], state, position // log_every)
        active = active[~done]
    run = batches.gather(np.arange(num_runs), partial(_finish, engine, data, config=config,
                                                      held=held),
                         state, per_run=steps_run)
    for r in np.flatnonzero(pruned >= 0):  # frozen at the rung: later losses repeat it
        losses[r, pruned[r] // log_every:] = run.final_loss[r]
        if validation is not None:
            validation[r, pruned[r] // log_every:] = run.final_validation_loss[r]
    steps = {"snapshot_steps": np.asarray(run.snapshot_steps[0]),
             "loss_steps": np.asarray(run.loss_steps[0])}
    return run._replace(losses=losses, steps_run=steps_run, pruned_step=pruned,
                        validation_losses=validation, **steps)


def _finished(state: LoopState, active: np.ndarray, position: int,
              config: RunConfig) -> np.ndarray:
    """Which active runs are done: diverged, or (stop_at_convergence) converged early
    enough that the last logged loss of this segment is already their frozen loss."""
    monitor = state.monitor
    done = np.asarray(monitor.diverged_step)[active] >= 0
    if config.stop_at_convergence:
        converged = np.asarray(monitor.converged_step)[active]
        # Frozen from the step that proved it, converged_step + patience, on.
        frozen_at = np.where(converged >= 0, converged + config.patience, np.iinfo(np.int32).max)
        done |= frozen_at <= position - config.log_every
    return done


def _at_end(state: LoopState, active: np.ndarray, held_now) -> np.ndarray:
    """The active runs' losses at the end of this segment: the held-out loss of their
    parameters (``held_now``, None without held-out data), else the training loss of the
    last step run (the monitor's; with ``log_every=1`` the history's last entry); +inf
    where diverged."""
    monitor = state.monitor
    loss = np.asarray(monitor.previous_loss)[active] if held_now is None else held_now
    return np.where(np.asarray(monitor.diverged_step)[active] >= 0, np.inf, loss)


def _losing(at_rung: np.ndarray, points: np.ndarray, active: np.ndarray, done: np.ndarray,
            plan: Plan) -> np.ndarray:
    """The active runs successive halving stops at this rung: the runs still going (not
    done) of the points outside the best ceil(n/η) of the n points with a run still going,
    by ``selection_loss`` (ties: the lower point index goes on)."""
    losing = np.zeros(active.size, bool)
    going = np.unique(points[active[~done]])  # the points in the race, in index order
    if going.size == 0:
        return losing
    keep = max(1, math.ceil(going.size / plan.halving_rate))
    score = selection_loss(at_rung, points)[going]
    losers = going[np.argsort(score, kind="stable")[keep:]]
    return ~done & np.isin(points[active], losers)


def _pad(losses: np.ndarray, leaving: np.ndarray, state: LoopState, logged: int) -> None:
    """The history (training or held-out) past a finished run's last segment, as the plain
    scan fills it: NaN after divergence, else the run's frozen loss (its last logged value).
    Pruned runs are overwritten with their final loss once it is known."""
    if leaving.size == 0 or logged >= losses.shape[1]:
        return
    diverged = np.asarray(state.monitor.diverged_step)[leaving] >= 0
    fill = np.where(diverged, np.nan, losses[leaving, logged - 1])
    losses[leaving, logged:] = fill[:, None]


def _rows(index: np.ndarray, leaf: np.ndarray) -> np.ndarray:
    return leaf[index]


def _put(state: LoopState, index: np.ndarray, new: LoopState) -> None:
    for out, leaf in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(new),
                         strict=True):
        out[index] = leaf


class _Batches:
    """Runs split into batches of at most ``chunk_size`` (a power of two, and a multiple of
    the devices in "runs" mode), each padded to a power of two, and to at least
    ``MIN_BATCH`` (or the sweep's first batch size, if smaller), by repeating its first
    run: the batch sizes a sweep compiles stay few, and padded members cost no recompile."""

    def __init__(self, hyper: dict[str, np.ndarray], chunk_size: int, mode: str):
        self.hyper, self.mode = hyper, mode
        self.cap = max(sharding.padded_size(1, mode), 2 ** int(math.log2(chunk_size)))
        num_runs = next(iter(hyper.values())).size
        self.floor = min(MIN_BATCH, self.cap, 1 << (num_runs - 1).bit_length())

    def gather(self, index: np.ndarray, call: Callable, state: Any = None,
               per_run: np.ndarray | None = None):
        """``call(hyper, state)`` on each batch of the runs ``index``; the outputs of those
        runs stacked in NumPy (``per_run``: a host array to take along, e.g. positions)."""
        out = None
        for start in range(0, index.size, self.cap):
            part = index[start:start + self.cap]
            size = sharding.padded_size(max(self.floor, 1 << (part.size - 1).bit_length()),
                                        self.mode)
            take = np.concatenate([part, np.full(size - part.size, part[0])])
            members = sharding.place_runs({k: v[take] for k, v in self.hyper.items()},
                                          self.mode)
            carried = None if state is None else sharding.place_runs(
                jax.tree_util.tree_map(partial(_rows, take), state), self.mode)
            args = (members, carried) + (() if per_run is None else (
                sharding.place_runs(per_run[take], self.mode),))
            result = jax.device_get(sharding.gather(call(*args)))
            if out is None:
                out = jax.tree_util.tree_map(
                    lambda leaf: np.empty((index.size, *np.shape(leaf)[1:]), leaf.dtype),
                    result)
            for o, leaf in zip(jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(result),
                               strict=True):
                o[start:start + part.size] = leaf[:part.size]
        return out

