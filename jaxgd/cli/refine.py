"""``[optimizer] refine``: hypergradient refinement of the whole sweep's best drawn points.

The command line runs its sweep in chunks of learning rates (and may resume them), so the
library's ``grid_sweep(refine=...)``, which refines the best runs of one call, would refine
each chunk's best. Instead, once every chunk is recorded, ``refine_sweep`` ranks all the
recorded runs by the library's objective (held-out loss with held-out data, else training
loss: ``jaxgd.tuning.refinement.objective``), takes the drawn points of the ``top`` best,
and runs those points again, crossed with the grid's other axes and the seeds, as one
``grid_sweep`` with ``refine=`` and the points as ``Sample.points``: the same runs on the
same inputs, so its ``top`` best are the sweep's ``top`` best (the runs at the stability
limit excepted: the library never starts from those). With ``data.k_folds`` a point is its
k runs, one per fold, ranked and refined on their mean, as the library does.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxgd.api.grid import grid_sweep
from jaxgd.api.settings import Sample, group
from jaxgd.cli.settings import api_arguments, grid_point
from jaxgd.tuning import refinement, search

if TYPE_CHECKING:
    from jaxgd.cli.config import Config
    from jaxgd.cli.plan import Plan
    from jaxgd.results.result import GridResult

#: A refined point beats the sweep's best when its objective is lower by more than this,
#: relatively: float32 losses of separate programs agree to about 1e-6.
BEATS_RTOL = 1e-5


def _scores(result: GridResult) -> np.ndarray:
    """Each recorded run's objective, the library's (``refinement.objective``: held-out loss
    with held-out data, else training loss), NaN where it diverged or is not finite."""
    score = np.asarray(refinement.objective(result), np.float64)
    return np.where(np.asarray(result.diverged, bool) | ~np.isfinite(score), np.nan, score)


def refine_sweep(plan: Plan, result: GridResult | None) -> dict[str, Any] | None:
    """The ``refined`` block of summary.json (None without ``optimizer.refine``).

    ``result`` is the whole sweep's ``GridResult``, every chunk's joined
    (``jaxgd.results.joining.concatenate``).
    When there is nothing to start from (every run diverged, or lies above its stability
    limit) the block has no points and a ``note`` saying why.

    Example:
      >>> from jaxgd.cli.config import parse
      >>> from jaxgd.cli.plan import prepare
      >>> plan = prepare(parse("[data]\\ndataset = 'mlcc_cars'\\n[optimizer]\\n"
      ...                      "learning_rate = 0.01\\n"))
      >>> refine_sweep(plan, None) is None  # no optimizer.refine
      True
    """
    config = plan.config
    if not config.optimizer.refine:
        return None
    settings = refinement.make_plan(config.optimizer.refine,  # checked by plan.prepare
                                    search.check_space(config.optimizer.sample))
    score = _scores(result)
    if plan.k_folds:  # a point is its k runs, ranked by their mean (NaN if a fold's is)
        score = score.mean(-1)
    usable = np.flatnonzero(np.isfinite(score.reshape(-1)))
    objective = "validation loss" if plan.held_out else "training loss"
    base = {"settings": {**refinement.DEFAULTS, **config.optimizer.refine},
            "objective": f"mean {objective} over the folds" if plan.k_folds else objective,
            "moved": [name for name, _ in settings.ranges]}
    if usable.size == 0:
        return {**base, "points": [], "note": "not refined: every run diverged"}
    ranked = usable[np.argsort(score.reshape(-1)[usable], kind="stable")]
    best = ranked[: settings.top]
    indices = np.unravel_index(best, score.shape)
    points = np.unique(indices[0])  # the drawn points (first axis) of the best runs
    began = time.perf_counter()
    try:
        result = _rerun(plan, points)
    except ValueError as error:  # e.g. every start point above its stability limit
        return {**base, "points": [], "note": f"not refined: {error}"}
    seconds = time.perf_counter() - began  # not in timing_seconds: those are the sweep's
    refined = result.refined
    rows = []
    for i, start in enumerate(np.asarray(refined.start)):
        index = (int(points[start[0]]), *map(int, start[1:]))  # in the whole sweep's grid
        end = refined.runs.point((i,))  # with k folds: the point's, without the fold
        rows.append({
            "start": {**grid_point(plan, index), "objective": float(score[index])},
            "end": {**{k: _plain(v) for k, v in end.items() if k != search.SAMPLE_AXIS},
                    "objective": float(refined.objective[i, -1]),
                    # with k folds, the folds' mean and whether any fold diverged
                    "final_loss": float(np.mean(refined.runs.final_loss[i])),
                    "diverged": bool(np.any(refined.runs.diverged[i]))},
            "objective_before": float(refined.objective[i, 0]),
            "objective_after": float(refined.objective[i, -1]),
            "steps": int(settings.steps),
            "steps_accepted": int(np.sum(np.asarray(refined.step_size[i]) > 0)),
        })
    sweep_best = float(score.reshape(-1)[ranked[0]])
    after = min(row["objective_after"] for row in rows)
    # Lower by more than float32 rounding (the sweep's runs and the rerun are separate
    # float32 programs): equal within it is no win.
    beats = after < sweep_best - BEATS_RTOL * abs(sweep_best)
    return {**base, "points": rows, "sweep_best_objective": sweep_best,
            "refined_best_objective": after, "beats_sweep": bool(beats),
            "seconds": seconds}


def _rerun(plan: Plan, points: np.ndarray):
    """The chosen drawn points crossed with the grid and the seeds, run and refined as one
    ``grid_sweep`` (full runs: no early exit, which would judge runs against each other)."""
    drawn = plan.config.drawn()
    sample = {name: np.asarray(values, np.float64)[points] for name, values in drawn.items()}
    options = api_arguments(plan.config, plan.num_steps, "refine")
    return grid_sweep(*plan.train_data, grid={**plan.grid, "seed": plan.seeds},
                      sample=given_sample(plan.config, sample),
                      refine=dict(plan.config.optimizer.refine), **group(options))


def given_sample(config: Config, points: dict[str, np.ndarray]) -> Sample:
    """``optimizer.sample`` as the library's ``Sample``, with ``points`` (some of its drawn
    points, e.g. a chunk's) run instead of a draw."""
    optimizer = config.optimizer
    return Sample(optimizer.sample, len(next(iter(points.values()))), optimizer.sampler,
                  optimizer.sample_seed, points=points)


def _plain(value) -> float | int:
    value = np.asarray(value).item()
    return value if isinstance(value, int) else float(value)
