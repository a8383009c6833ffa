"""Runs a ``Plan`` chunk by chunk and assembles the chunks into the results record.

The numbers come from the library's public API (``grid_sweep``, ``fit``); this module only
runs the chunks, picks the best run and follows its descent path.

- ``run_chunk`` runs one chunk as one ``grid_sweep``: its result encoded by the library
  (``jaxgd.results.saving.encode``) as plain NumPy arrays, ready to save;
- ``check_chunk`` rebuilds a saved chunk's result (``jaxgd.results.loading.decode``);
- ``assemble`` joins the chunks' results (``jaxgd.results.joining.concatenate``) and turns
  the whole run's into the results record (``jaxgd.cli.record``);
- ``run`` does ``prepare``, every ``run_chunk`` and ``assemble`` in memory.

``jaxgd run`` saves each chunk as it finishes (see ``jaxgd.cli.checkpoint``), so a killed
run resumes where it stopped; since every chunk is the same compiled program on the same
inputs, the results are those of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import jaxgd
from jaxgd.api.settings import group
from jaxgd.cli.config import Config, ConfigError
from jaxgd.cli.plan import (
    Plan,
    grid_point,
    prepare,
)
from jaxgd.cli.record import RunRecord, make_record
from jaxgd.cli.refine import given_sample, refine_sweep
from jaxgd.cli.results import parse_json, to_json
from jaxgd.cli.settings import api_arguments, conditioning_said, reworded
from jaxgd.cli.timing import Timing, timed
from jaxgd.core import progress
from jaxgd.results import saving
from jaxgd.results.joining import concatenate, take
from jaxgd.results.loading import decode
from jaxgd.results.result import GridResult

PATH_POINTS = 40  # parameter snapshots along the best run, for the descent path figure
#: A chunk file's entry holding its result's summary (``jaxgd.results.saving.encode``);
#: its other entries beside the result's arrays.
RESULT = "result_summary"
_BESIDE = (RESULT, "learning_rates", "seconds")


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
      The chunk as plain NumPy arrays, ready to save: its ``GridResult`` as
      ``jaxgd.results.saving.encode`` gives it (the arrays, and the summary as JSON under
      ``RESULT``; ``check_chunk`` rebuilds it), ``learning_rates`` (k,) and ``seconds``
      (2,): total and compiling.
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
        arrays, summary = saving.encode(take(result, slice(0, len(rates))))  # no padding
    return {**arrays, RESULT: np.asarray(to_json(summary)),
            "learning_rates": np.asarray(rates, np.float64),
            "seconds": np.asarray([timing.total, timing.compile], np.float64)}


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
    parts = [check_chunk(plan, index, chunk, None if names is None else names[index])
             for index, chunk in enumerate(chunks)]
    try:
        result = concatenate(parts)
    except ValueError as error:  # e.g. a chunk of other steps than the first
        raise ConfigError(f"the saved chunks are not of one run ({error}): start again with "
                          "--overwrite") from None
    result = result._replace(feature_names=tuple(plan.dataset.feature_names),
                             target_name=plan.dataset.target_name,
                             errors=_reported_errors(plan, result))
    seconds = np.sum([chunk.get("seconds", np.zeros(2)) for chunk in chunks], axis=0)
    timing = Timing(total=float(seconds[0]), compile=float(seconds[1]))
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
    return make_record(plan, best, best_path, timing, refined, result)


def _reported_errors(plan: Plan, result: GridResult) -> dict[str, Any] | None:
    """The errors the results folder keeps, as it always has: RMSE and MAE of each side,
    with held-out data only."""
    if not plan.held_out:
        return None
    return {side: {metric: result.errors[side][metric] for metric in ("rmse", "mae")}
            for side in ("training", "validation")}


def check_chunk(plan: Plan, index: int, chunk: dict[str, np.ndarray],
                name: str | None = None) -> GridResult:
    """The ``GridResult`` that chunk ``index`` holds, refused if it is not a chunk of this
    run (other learning rates, not a chunk of this jaxgd, other shapes of runs).

    Raises:
      ConfigError: naming the chunk (``name``, default "saved chunk i") and what is wrong.
    """
    where = name or f"saved chunk {index}"
    rates = np.asarray(plan.chunk_rates(index), np.float64)
    shape, problem = plan.grid_shape(rates.size), None
    try:
        result = decode({k: v for k, v in chunk.items() if k not in _BESIDE},
                        parse_json(str(chunk[RESULT])), where)
    except KeyError:
        result, problem = None, f"no {RESULT}: not a chunk of this jaxgd"
    except ValueError as error:  # the library names a folder's files: here, the chunk
        problem = str(error)
        for file, said in ((saving.HISTORY, "it"), (saving.SUMMARY, "its summary")):
            problem = problem.replace(f"{Path(where) / file}: ", "").replace(
                str(Path(where) / file), said)
        result = None
    if problem is None and not np.array_equal(chunk.get("learning_rates"), rates):
        problem = "other learning rates"
    elif problem is None and (not isinstance(result, GridResult) or (
            np.shape(result.final_loss), result.num_steps) != (shape, plan.num_steps)):
        problem = (f"runs of shape {np.shape(result.final_loss)} and {result.num_steps} "
                   f"steps, not {shape} and {plan.num_steps}")
    if problem:
        raise ConfigError(f"{where} does not belong to this run ({problem}): start again "
                          "with --overwrite")
    return result


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

