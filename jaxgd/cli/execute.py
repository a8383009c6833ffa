"""Runs a ``Plan`` chunk by chunk and assembles the chunks into the results record.

The numbers come from the library's public API (``grid_sweep``, ``fit``); this module only
runs the chunks, picks the best run and follows its descent path.

- ``run_chunk`` runs one chunk as one ``grid_sweep``: plain NumPy arrays, ready to save;
- ``assemble`` turns the chunks into the results record (``jaxgd.cli.record``);
- ``run`` does ``prepare``, every ``run_chunk`` and ``assemble`` in memory.

``jaxgd run`` saves each chunk as it finishes (see ``jaxgd.cli.checkpoint``), so a killed
run resumes where it stopped; since every chunk is the same compiled program on the same
inputs, the results are those of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import numpy as np

import jaxgd
from jaxgd.api.settings import group
from jaxgd.cli.config import Config, ConfigError
from jaxgd.cli.plan import (
    Plan,
    grid_point,
    prepare,
)
from jaxgd.cli.record import HELD_OUT_FIELDS, RunRecord, make_record
from jaxgd.cli.refine import given_sample, refine_sweep
from jaxgd.cli.settings import api_arguments, conditioning_said, reworded
from jaxgd.cli.sharpness import tracking
from jaxgd.cli.timing import Timing, timed
from jaxgd.core import progress
from jaxgd.core.params import LinearParams
from jaxgd.core.record import freeze, thaw
from jaxgd.results.result import GridResult

PATH_POINTS = 40  # parameter snapshots along the best run, for the descent path figure
#: Per-run fields of a chunk: the grid's axes first (learning rates, grid names, seeds).
_CHUNK_FIELDS = ("losses", "final_loss", "converged_step", "diverged", "diverged_step",
                 "stalled", "snapshot_weight", "snapshot_bias", "steps_run", "pruned_step",
                 "weight", "bias")


def path_steps(num_steps: int, points: int = PATH_POINTS) -> tuple[int, ...]:
    """Roughly geometric steps from 0 to num_steps: dense early, where the path moves most."""
    steps = np.unique(np.round(np.geomspace(1, num_steps + 1, points)).astype(int) - 1)
    return tuple(int(s) for s in np.union1d(steps, [0, num_steps]))


def run_chunk(plan: Plan, index: int,
              on_progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Runs chunk ``index``: every grid point of its learning rates, as one ``grid_sweep``.

    The last chunk is padded to ``chunk_size`` learning rates with copies of its last one
    (dropped from the result), so every chunk is the same compiled program.

    Returns:
      NumPy arrays, the grid's axes first (k learning rates, then ``plan.grid``'s sizes
      G..., then S seeds): ``learning_rates`` (k,), ``losses`` (k, G..., S, T),
      ``final_loss``, ``converged_step``, ``diverged``, ``diverged_step``, ``stalled``
      ``steps_run``, ``pruned_step`` (k, G..., S),
      ``snapshot_weight`` (k, G..., S, P, d) and ``snapshot_bias`` (k, G..., S, P) in the
      units the runs train on, ``snapshot_steps`` (P,), ``loss_steps`` (T,), for mini-batch
      runs ``epoch_losses`` (k, G..., S, epochs + 1), ``engine`` (the engine that ran), and
      ``seconds`` (2,): total and compiling. With held-out data also ``HELD_OUT_FIELDS``
      (``validation_losses`` shaped like ``losses``); with ``optimizer.track_sharpness``
      ``sharpness``, shaped like ``losses`` (the result's ``observed``); with k folds every
      per-run array has one more axis, the fold, after the seeds.
    """
    rates = plan.chunk_rates(index)
    padded = _padded(rates, plan.chunk_size)
    grid = {"learning_rate": padded, **plan.grid, "seed": plan.seeds}
    options = api_arguments(plan.config, plan.num_steps)
    if on_progress is not None:  # a callback in the program: JAX's cache keeps it not
        options["progress_every"] = max(1, plan.num_steps // 100)
    with timed() as timing, progress.listening(on_progress or (lambda _: None)):
        with conditioning_said(), _in_config_words():
            sample = None
            if plan.sampled:  # drawn points: the rates and their companions, one axis
                start = index * plan.chunk_size
                sample = given_sample(plan.config, {"learning_rate": padded, **{
                    name: _padded(v[start:start + len(rates)], plan.chunk_size)
                    for name, v in plan.sampled.items()}})
                del grid["learning_rate"]
            result = jaxgd.grid_sweep(*plan.train_data, grid=grid, sample=sample,
                                      **group(options))
        per_run = {name: getattr(result, name) for name in (
            "losses", "final_loss", "converged_step", "diverged", "diverged_step",
            "stalled", "epoch_losses", "steps_run", "pruned_step", "validation_losses",
            "final_validation_loss")}
        if plan.held_out:
            per_run.update({f"{side}_{metric}": result.errors[side][metric]
                            for side in ("training", "validation") for metric in ("rmse",
                                                                                   "mae")})
        per_run.update(snapshot_weight=result.snapshots.weight,
                       snapshot_bias=result.snapshots.bias, sharpness=result.observed,
                       weight=result.params.weight, bias=result.params.bias,
                       **{f"{ALONG}{name}": result.values[name]
                          for name in (result.axes[0], *result.sampled)})
        per_run = jax.device_get(per_run)
        shared = jax.device_get({"snapshot_steps": result.snapshot_steps,
                                 "loss_steps": result.loss_steps})
        library = jax.device_get(_described(result))
    k = len(rates)
    chunk = {"learning_rates": np.asarray(rates, np.float64)}
    for name, value in per_run.items():
        if value is not None:
            chunk[name] = np.asarray(value)[:k]
    chunk.update(snapshot_steps=np.asarray(shared["snapshot_steps"]),
                 loss_steps=np.asarray(shared["loss_steps"]),
                 engine=np.asarray(result.engine),
                 seconds=np.asarray([timing.total, timing.compile], np.float64),
                 **{name: np.asarray(value) for name, value in library.items()})
    return chunk


@contextlib.contextmanager
def _in_config_words() -> Iterator[None]:
    """The library checks the numbers; its refusal reaches the user naming the config key."""
    try:
        yield
    except (TypeError, ValueError) as error:
        raise reworded(error) from None


def _best(result: GridResult) -> tuple[int, ...] | None:
    """The best run's grid index (``GridResult.best``: by held-out loss when there is one;
    with k folds by the mean over the folds, and then fold 0's run), None if every run
    diverged."""
    try:
        best = result.best()
    except ValueError:  # every run diverged
        return None
    return (*best, 0) if "fold" in result.axes else best


#: Chunk entries that rebuild the library's ``GridResult`` of the whole run (``whole``):
#: values along the first axis (concatenated), the other axes' values, the fixed values.
ALONG, VALUES, FIXED = "result_along_", "result_values_", "result_fixed_"


def _described(result) -> dict[str, Any]:
    """What a chunk keeps of its ``GridResult`` beside the per-run arrays: its axes, the
    values of its axes but the first, its fixed values, its optimum and step count."""
    along = (result.axes[0], *result.sampled)
    return {"result_axes": np.asarray(result.axes, str),
            "result_num_steps": np.asarray(result.num_steps, np.int64),
            **({} if result.reference is None else {
                "result_optimal_loss": np.asarray(thaw(result.reference), np.float64)}),
            **{f"{VALUES}{name}": value for name, value in result.values.items()
               if name not in along},
            **{f"{FIXED}{name}": value for name, value in result.fixed.items()}}


def whole(plan: Plan, chunks: Sequence[dict[str, np.ndarray]],
          grid: dict[str, np.ndarray]) -> GridResult:
    """The library's ``GridResult`` of the whole run, from its chunks (``run_chunk``) and
    their assembled per-run arrays ``grid`` (snapshots in the units the runs trained in):
    what ``jaxgd.load`` gives back from the results folder."""
    first = chunks[0]
    axes = tuple(str(axis) for axis in first["result_axes"])
    values = {name[len(ALONG):]: np.concatenate([chunk[name] for chunk in chunks])
              for name in first if name.startswith(ALONG)}
    if "sample" in values:  # each chunk numbers its points from 0
        values["sample"] = np.arange(values["sample"].size, dtype=first[f"{ALONG}sample"].dtype)
    values.update({name[len(VALUES):]: first[name] for name in first if name.startswith(VALUES)})
    reference = first.get("result_optimal_loss")
    errors = {side: {metric: grid[f"{side}_{metric}"] for metric in ("rmse", "mae")}
              for side in ("training", "validation")} if plan.held_out else None
    return GridResult(
        params=LinearParams(grid["weight"], grid["bias"]),
        snapshots=LinearParams(grid["snapshot_weight"], grid["snapshot_bias"]),
        **{name: grid.get(name) for name in (
            "losses", "final_loss", "converged_step", "diverged", "diverged_step", "stalled",
            "epoch_losses", "steps_run", "pruned_step", "validation_losses",
            "final_validation_loss", "snapshot_steps", "loss_steps")},
        observed=grid.get("sharpness"), errors=errors, engine=grid["engine"],
        reference=None if reference is None else (
            float(reference) if reference.ndim == 0 else freeze(reference)),
        feature_names=tuple(plan.dataset.feature_names), target_name=plan.dataset.target_name,
        num_steps=int(first["result_num_steps"]), axes=axes, values=values,
        fixed={name[len(FIXED):]: first[name] for name in first if name.startswith(FIXED)})


def _padded(values: Sequence[float], size: int) -> np.ndarray:
    """``values`` (a list, or drawn values' array) padded to ``size`` with copies of the
    last, as float64 (the last chunk's, so every chunk is the same program)."""
    values = np.asarray(values, np.float64)
    return np.concatenate([values, np.full(size - values.size, values[-1])])


def assemble(plan: Plan, chunks: Sequence[dict[str, np.ndarray]],
             names: Sequence[str] | None = None) -> RunRecord:
    """The results record of a run from its chunks, in order (see ``run_chunk``).

    ``names``: what to call each chunk in messages (its file), default "saved chunk i".

    Raises:
      ConfigError: if a chunk does not belong to this run (other learning rates, fields or
        shapes), naming the chunk.
    """
    if len(chunks) != plan.num_chunks:
        raise ConfigError(f"{len(chunks)} chunks given, the run has {plan.num_chunks}")
    fields = _fields(plan)
    for index, chunk in enumerate(chunks):
        check_chunk(plan, index, chunk, None if names is None else names[index], chunks[0])
    grid = {name: np.concatenate([chunk[name] for chunk in chunks]) for name in fields}
    grid["snapshot_steps"] = chunks[0]["snapshot_steps"]
    grid["loss_steps"] = chunks[0]["loss_steps"]
    engine = chunks[0].get("engine")
    grid["engine"] = None if engine is None else str(engine)
    seconds = np.sum([chunk.get("seconds", np.zeros(2)) for chunk in chunks], axis=0)
    timing = Timing(total=float(seconds[0]), compile=float(seconds[1]))
    result = whole(plan, chunks, grid)
    best = _best(result)
    best_path = None
    if best is not None:
        point = grid_point(plan, best)
        options = api_arguments(plan.config, plan.num_steps, "fit")
        hyper = {**options.pop("hyperparameters"),
                 **{k: v for k, v in point.items() if (k in plan.grid or k in plan.sampled)
                    and k not in ("l2", "batch_seed")}}
        extra = {"batch_seed": point["batch_seed"]} if "batch_seed" in point else {}
        options["l2"] = point.get("l2", options["l2"])
        data, held = plan.split(point.get("fold", 0)) if plan.held_out else (
            plan.train_data, {})
        with conditioning_said(), _in_config_words():
            best_path = jaxgd.fit(*data, learning_rate=point["learning_rate"],
                                  seed=point["seed"], **group({
                                      "hyperparameters": hyper, **extra, **options,
                                      "snapshot_steps": path_steps(plan.num_steps)}),
                                  **held)
    with conditioning_said():  # from the whole sweep's best points, once every chunk ran
        refined = refine_sweep(plan, result)
    return make_record(plan, grid, best, best_path, timing, refined, result)


def _fields(plan: Plan) -> tuple[str, ...]:
    return _CHUNK_FIELDS + (("epoch_losses",) if plan.config.train.batch_size else ()) + (
        HELD_OUT_FIELDS if plan.held_out else ()) + (
        ("sharpness",) if tracking(plan.config) else ())


def check_chunk(plan: Plan, index: int, chunk: dict[str, np.ndarray], name: str | None = None,
                first: dict[str, np.ndarray] | None = None) -> None:
    """Refuses chunk ``index`` if it is not a chunk of this run: other learning rates,
    missing fields, arrays of other shapes, or other steps than ``first`` (the first chunk).

    Raises:
      ConfigError: naming the chunk (``name``, default "saved chunk i") and what is wrong.
    """
    problem = _chunk_problem(plan, index, chunk, chunk if first is None else first,
                             _fields(plan))
    if problem:
        raise ConfigError(f"{name or f'saved chunk {index}'} does not belong to this run "
                          f"({problem}): start again with --overwrite")


def _chunk_problem(plan: Plan, index: int, chunk: dict[str, np.ndarray],
                   first: dict[str, np.ndarray], fields: Sequence[str]) -> str | None:
    """What is wrong with chunk ``index`` (None if nothing): its learning rates, its fields,
    or the shapes of its arrays, against the plan and the first chunk."""
    missing = [name for name in (*fields, "learning_rates", "snapshot_steps", "loss_steps")
               if name not in chunk]
    if missing:
        return f"no {', '.join(missing)}"
    if not np.array_equal(chunk["learning_rates"], np.asarray(plan.chunk_rates(index),
                                                              np.float64)):
        return "other learning rates"
    shape = plan.grid_shape(len(plan.chunk_rates(index)))
    points = int(np.asarray(chunk["snapshot_steps"]).size)
    log_every = plan.config.train.log_every
    logged = (-(-plan.num_steps // log_every),)
    trailing = {"losses": logged, "validation_losses": logged, "sharpness": logged,
                "snapshot_weight": (points, int(plan.dataset.X.shape[1])),
                "snapshot_bias": (points,), "weight": (int(plan.dataset.X.shape[1]),),
                "epoch_losses": ((plan.config.train.epochs or 0) + 1,)}
    for name in fields:
        expected = shape + trailing.get(name, ())
        if np.shape(chunk[name]) != expected:
            return f"{name} has shape {np.shape(chunk[name])}, expected {expected}"
    for name in ("snapshot_steps", "loss_steps"):
        if np.ndim(chunk[name]) != 1 or not np.array_equal(chunk[name], first[name]):
            return f"its {name} differ from those of the first chunk"
    return None


def run(config: Config, on_progress: Callable[[int], None] | None = None,
        chunk_size: int | None = None) -> RunRecord:
    """Runs the config's grid (one run is a grid of one) and collects the results.

    ``on_progress`` hears the steps done over all chunks (``Plan.num_steps`` per chunk).
    """
    plan = prepare(config, chunk_size)
    steps = plan.num_steps
    chunks = []
    for index in range(plan.num_chunks):
        report = None if on_progress is None else (
            lambda done, base=index * steps: on_progress(base + min(done, steps)))
        chunks.append(run_chunk(plan, index, report))
    return assemble(plan, chunks)

