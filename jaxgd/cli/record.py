"""What a run leaves behind (``RunRecord``): the arrays of history.npz and the JSON-ready
summary.json, parameters reported in the data's original units.

``make_record`` arranges the assembled grid for saving and plotting: the losses with the
grid's axes first, snapshots and the best run's descent path mapped back from standardized
units, the least-squares (ridge) optimum of each l2 (``optima_of``), and the summary with every
run, the best one, the stability limits, the timing, versions and device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from jaxgd.cli import sharpness
from jaxgd.cli.environment import device_info, versions
from jaxgd.cli.explain import explainer
from jaxgd.cli.settings import (
    INTEGER_AXES,
    drawn_limit_label,
    grid_point,
    holdout_options,
    limit_label,
)
from jaxgd.cli.training_rows import training_mask
from jaxgd.core import minibatch
from jaxgd.core.convergence import gap_to_optimum
from jaxgd.core.params import LinearParams
from jaxgd.data.scaling import Standardizer, unstandardize_params
from jaxgd.results import saving
from jaxgd.results.errors import moment_mse
from jaxgd.theory.least_squares import LeastSquares, solve

if TYPE_CHECKING:
    from jaxgd.cli.plan import Plan
    from jaxgd.results.result import GridResult

#: The per-run fields a run with held-out data adds (``jaxgd.cli.execute.run_chunk``).
HELD_OUT_FIELDS = ("validation_losses", "final_validation_loss", "training_rmse",
                   "training_mae", "validation_rmse", "validation_mae")
_HELD_OUT_SCALARS = HELD_OUT_FIELDS[1:]


@dataclass
class RunRecord:
    """What a run leaves behind: arrays for history.npz and JSON-ready data for summary.json."""

    history: dict[str, np.ndarray]
    summary: dict[str, Any]
    meta: dict[str, Any]


def _axis_values(values: Sequence, name: str) -> np.ndarray:
    return np.asarray(values, np.int64 if name in INTEGER_AXES else np.float64)


def _to_original(params: LinearParams, scaler: Standardizer | None) -> LinearParams:
    params = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)
    return unstandardize_params(params, scaler) if scaler is not None else params


def optima_of(plan: Plan) -> list[tuple[float, LeastSquares]]:
    """(l2, the least-squares or ridge optimum in original units) for each l2 of the run.

    The optimum is that of the objective the runs descend: with standardized features the
    ridge penalty acts on the standardized weights, so the problem is solved there and the
    parameters mapped back; its loss is the objective's value (MSE + l2·‖weight‖²). With
    held-out data, the optimum of the training rows (of fold 0 with k folds: the fold the
    best run's index names).
    """
    optima = []
    (X, y), _ = plan.split()
    for l2 in plan.l2_values:
        optimum = solve(X, y, l2=l2)
        params = _to_original(LinearParams(np.asarray(optimum.params.weight),
                                           np.asarray(optimum.params.bias)), plan.scaler)
        optima.append((float(l2), LeastSquares(params, float(optimum.loss))))
    return optima


def make_record(plan: Plan, best, best_path, timing, refined: dict[str, Any] | None,
                result: GridResult) -> RunRecord:
    """The record of a run from the library's result of the whole run (its chunks joined;
    the folder holds it too, ``jaxgd.load`` reads it back), the ``best`` run's grid index
    (None if every run diverged), its descent path (a ``FitResult`` with snapshots, or
    None), the run's ``Timing`` and the ``refined`` block of summary.json
    (``jaxgd.cli.refine``; None without ``optimizer.refine``)."""
    config, dataset, scaler, limits = plan.config, plan.dataset, plan.scaler, plan.limits
    grid = _per_run(result)
    optima = optima_of(plan)
    l2_of_best = 0
    if "l2" in plan.grid and best is not None:
        l2_of_best = best[plan.axes.index("l2")]
    optimum = optima[l2_of_best][1]
    snapshots = _to_original(LinearParams(grid["snapshot_weight"], grid["snapshot_bias"]),
                             scaler)
    values = plan.axis_values
    history = {
        "learning_rates": np.asarray(config.learning_rates, np.float64),  # as written
        "seeds": np.asarray(plan.seeds, np.int64),
        "grid_axes": np.asarray(plan.axes),
        **{f"grid_values_{axis}": _axis_values(v, axis)
           for axis, v in zip(plan.axes, values, strict=True)},
        "losses": grid["losses"],
        "loss_steps": np.asarray(grid["loss_steps"], np.int64),
        "num_steps": np.asarray(plan.num_steps, np.int64),
        "final_loss": grid["final_loss"],
        "converged_step": grid["converged_step"],
        "diverged": grid["diverged"],
        "diverged_step": grid["diverged_step"],
        **({"stalled": grid["stalled"]} if "stalled" in grid else {}),
        **{name: grid[name] for name in ("steps_run", "pruned_step") if name in grid},
        "best_index": np.asarray(best if best is not None else (-1,) * len(plan.axes),
                                 np.int64),
        "snapshot_steps": np.asarray(grid["snapshot_steps"]),
        "snapshot_weight": snapshots.weight,
        "snapshot_bias": snapshots.bias,
        "snapshot_loss": _snapshot_losses(plan, snapshots),
        "optimum_weight": optimum.params.weight,
        "optimum_bias": np.asarray(optimum.params.bias),
        "optimal_loss": np.asarray(optimum.loss),
        **_plot_rows(*_training_data(plan), config.output.max_plot_rows),
    }
    if "epoch_losses" in grid:
        history["epoch_losses"] = grid["epoch_losses"]
    history.update({name: grid[name] for name in HELD_OUT_FIELDS if name in grid})
    history.update(sharpness.history_fields(plan, grid))  # optimizer.track_sharpness
    drawn = config.drawn()
    if drawn:  # optimizer.sample: every drawn value, along the first (learning rate) axis
        history["sampled"] = np.asarray(list(drawn))
        history.update({f"sampled_values_{name}": np.asarray(values, np.float64)
                        for name, values in drawn.items()})
    if "l2" in plan.grid:
        history.update(
            optimum_l2=np.asarray([l2 for l2, _ in optima], np.float64),
            optimum_weights=np.stack([o.params.weight for _, o in optima]),
            optimum_biases=np.asarray([float(o.params.bias) for _, o in optima]),
            optimal_losses=np.asarray([o.loss for _, o in optima]),
        )
    if plan.streamed:  # the figures' loss surface reads the moments instead of rows
        history.update({f"moment_{name}": np.asarray(value, np.float64)
                        for name, value in plan.stats._asdict().items()})
    if best_path is not None:
        path = _to_original(best_path.snapshots, scaler)
        history.update(path_steps=np.asarray(best_path.snapshot_steps),
                       path_weight=path.weight, path_bias=path.bias)
    meta = {
        "title": config.title or f"{config.data.dataset}: {', '.join(dataset.feature_names)}"
                                 f" → {dataset.target_name}",
        "feature_names": list(dataset.feature_names),
        "target_name": dataset.target_name,
        "max_learning_rate": (limits.max_learning_rate
                              if config.optimizer.name == limits.optimizer else None),
        "limit_label": drawn_limit_label(limit_label(limits), plan.k_folds),
        "optimizer": config.optimizer.name,
    }
    summary = _summary(plan, history, best, optima, timing, meta, result)
    if refined is not None:
        summary["refined"] = refined
    summary["chunks"] = {"learning_rates_per_chunk": plan.chunk_size, "count": plan.num_chunks}
    summary["warnings"] = list(plan.warnings)
    arrays, described = saving.encode(result, history)
    history.update(arrays)
    summary.update(described)
    return RunRecord(history=history, summary=summary, meta=meta)


def _per_run(result: GridResult) -> dict[str, np.ndarray]:
    """The result's per-run arrays (snapshots in the units the runs train on) and steps,
    by their names in history.npz; the fields a run does not have are left out."""
    errors = result.errors or {}
    fields = {name: getattr(result, name) for name in (
        "losses", "final_loss", "converged_step", "diverged", "diverged_step", "stalled",
        "steps_run", "pruned_step", "epoch_losses", "validation_losses",
        "final_validation_loss", "snapshot_steps", "loss_steps")}
    fields.update({f"{side}_{metric}": errors[side][metric] for side in errors
                   for metric in ("rmse", "mae")})
    fields.update(snapshot_weight=result.snapshots.weight,
                  snapshot_bias=result.snapshots.bias, sharpness=result.observed)
    return {name: np.asarray(value) for name, value in fields.items() if value is not None}


def _training_data(plan: Plan, fold: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The rows the runs of ``fold`` train on, in original units: the data points the
    figures draw beside the best run (fold 0's with k folds, the fold its index names) and
    its loss surface."""
    mask = training_mask(plan.config, plan.n_rows, fold)
    X, y = plan.dataset.X, plan.dataset.y
    return (X, y) if mask is None else (X[mask], y[mask])


def _snapshot_losses(plan: Plan, snapshots: LinearParams) -> np.ndarray:
    """Each snapshot's loss on the rows its run trains on (with k folds its own fold's:
    the fold is the last grid axis, before the snapshots'); from the moments by the
    library's ``moment_mse``."""
    if plan.streamed:
        return moment_mse(snapshots, plan.stats)
    if not plan.k_folds:
        return _losses_of(snapshots, *_training_data(plan))
    losses = np.empty(np.shape(snapshots.bias))
    for fold in range(plan.k_folds):
        runs = LinearParams(snapshots.weight[..., fold, :, :], snapshots.bias[..., fold, :])
        losses[..., fold, :] = _losses_of(runs, *_training_data(plan, fold))
    return losses


def _losses_of(params: LinearParams, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """MSE of a batch of parameters (..., P, d) on (X, y), float64, NaN-safe: the library's
    ``jaxgd.results.errors.errors`` computes it as one product over every run, whose last
    bit differs from this product run by run from about 40 features on, and the snapshot
    losses of history.npz keep their bits."""
    with np.errstate(all="ignore"):
        predictions = params.weight @ X.T + params.bias[..., None]
        return np.mean((predictions - y) ** 2, axis=-1)


def _plot_rows(X: np.ndarray, y: np.ndarray, limit: int) -> dict[str, np.ndarray]:
    # Figures need the data points, not all of a huge data set: keep an even subsample.
    rows = np.linspace(0, len(y) - 1, min(limit, len(y))).round().astype(int)
    return {"X": X[rows], "y": y[rows]}


def _least_squares(names, l2: float, optimum: LeastSquares) -> dict[str, Any]:
    return {
        "l2": l2,
        "weight": dict(zip(names, map(float, optimum.params.weight), strict=True)),
        "bias": float(optimum.params.bias),
        "loss": optimum.loss,
    }


def _summary(plan: Plan, history, best, optima, timing, meta, result) -> dict[str, Any]:
    config, dataset, limits = plan.config, plan.dataset, plan.limits
    axes = plan.axes
    shape = history["final_loss"].shape
    runs = []
    explain = explainer(plan)
    peaks = sharpness.peaks(history) if "sharpness" in history else None
    varies = sharpness.varies(history)
    for index in np.ndindex(*shape):
        runs.append({
            **grid_point(plan, index),
            "final_loss": _finite_or_none(history["final_loss"][index]),
            "converged_step": int(history["converged_step"][index]),
            "diverged": bool(history["diverged"][index]),
            "diverged_step": int(history["diverged_step"][index]),
            **({"stalled": bool(history["stalled"][index])} if "stalled" in history else {}),
            **{name: _finite_or_none(history[name][index]) for name in _HELD_OUT_SCALARS
               if name in history},
            **{name: int(history[name][index]) for name in ("steps_run", "pruned_step")
               if name in history},
            **sharpness.run_fields(history, peaks, index, varies),
        })
        if runs[-1]["diverged"]:  # why, in words (jaxgd.cli.explain)
            runs[-1]["explanation"] = explain(runs[-1])
    names = meta["feature_names"]
    best_run = None
    if best is not None:
        final = history["path_weight"][-1], float(history["path_bias"][-1])
        l2_index = best[axes.index("l2")] if "l2" in plan.grid else 0
        best_run = {
            **runs[int(np.ravel_multi_index(best, shape))],
            "weight": dict(zip(names, map(float, final[0]), strict=True)),
            "bias": final[1],
            # As Result.gap: a float32 loss rounded below the optimum's is a gap of 0.
            "gap_to_optimum": float(gap_to_optimum(history["final_loss"][best],
                                                   optima[l2_index][1].loss)),
            "selected_by": "validation" if plan.held_out else "training",
        }
        if plan.k_folds:  # judged by the mean over its folds
            point = best[:-1]
            best_run["fold"] = None
            for name in _HELD_OUT_SCALARS:
                best_run[f"mean_{name}"] = _finite_or_none(np.mean(history[name][point]))
    least_squares = [_least_squares(names, l2, optimum) for l2, optimum in optima]
    train = config.train
    return {
        "config": config.recorded(),
        "versions": versions(),
        "device": device_info(),
        "data": {
            "dataset": config.data.dataset,
            "source": dataset.source,
            "features": names,
            "target": meta["target_name"],
            "rows": plan.n_rows,
            "rows_dropped": None if plan.streamed else int(dataset.n_dropped),
            "standardized": config.data.standardize,
            "streamed": plan.streamed,
        },
        "grid": {"axes": list(axes), "shape": list(shape)},
        "validation": _validation(plan),
        **({"sample": {
            "space": {k: list(v) for k, v in config.optimizer.sample.items()},
            "num_samples": config.optimizer.num_samples,
            "sampler": config.optimizer.sampler,
            "seed": config.optimizer.sample_seed,
            "along": axes[0],
            "values": {k: v.tolist() for k, v in config.drawn().items()},
        }} if config.optimizer.sample else {}),
        "training": {
            "num_steps": plan.num_steps,
            "batch_size": train.batch_size,
            "epochs": train.epochs,
            "steps_per_epoch": None if train.batch_size is None else (
                minibatch.steps_per_epoch(plan.n_rows, train.batch_size)),
            "log_every": train.log_every,
            "history_length": int(history["losses"].shape[-1]),
            "engine": result.engine,
            # Fewer executed than scheduled where runs left a segmented sweep early.
            "run_steps_executed": result.run_steps_executed,
            "run_steps_scheduled": result.run_steps_scheduled,
        },
        "runs": runs,
        "best_run": best_run,
        "least_squares": least_squares if "l2" in plan.grid else least_squares[0],
        **({"sharpness": sharpness.summary_block(history, peaks)} if peaks is not None
           else {}),
        "stability": {
            "max_learning_rate": limits.max_learning_rate,
            "fastest_learning_rate": limits.fastest_learning_rate,
            "optimizer": limits.optimizer,
            "momentum": limits.momentum,
            "limit": limit_label(limits),
            "condition_number": _finite_or_none(limits.condition_number),
            "features": "standardized" if config.data.standardize else "as given",
            "l2": max(plan.l2_values),
            **_limit_rows(plan),
        },
        "timing_seconds": {"total": timing.total, "compile": timing.compile, "run": timing.run},
    }


def _limit_rows(plan: Plan) -> dict[str, Any]:
    """The rows the stability limit is of: the training rows with held-out data; with k
    folds each fold's limit, and which fold's (the smallest) is reported."""
    if not plan.held_out:
        return {"rows": "all"}
    if not plan.k_folds:
        return {"rows": "training"}
    return {"rows": "training", "fold": plan.limits_fold,
            "per_fold": [{"max_learning_rate": limits.max_learning_rate,
                          "fastest_learning_rate": limits.fastest_learning_rate,
                          "condition_number": _finite_or_none(limits.condition_number)}
                         for limits in plan.fold_limits]}


def _validation(plan: Plan) -> dict[str, Any] | None:
    """How the held-out rows were drawn (``jaxgd.pipeline.holdout``), or None without any."""
    if not plan.held_out:
        return None
    options = holdout_options(plan.config)
    return {"fraction": options.get("validation_fraction"), "k_folds": options.get("k_folds"),
            "seed": options["validation_seed"], "selected_by": "validation loss"
            + (" (mean over folds)" if plan.k_folds else "")}
def _finite_or_none(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None
