"""Runs what a ``Config`` describes and gathers everything a results folder holds.

The numbers come from the library's public API (``sweep``, ``fit``, ``solve``,
``stability``); this module only loads the data, picks the best run and arranges the arrays
for saving and plotting. Parameters are reported in the data's original units.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
import optax

from jaxgd import datasets, progress
from jaxgd.config import Config, ConfigError
from jaxgd.fit import fit
from jaxgd.least_squares import solve
from jaxgd.params import LinearParams
from jaxgd.scaling import Standardizer, unstandardize_params
from jaxgd.stability import stability
from jaxgd.sweep import SweepResult, sweep
from jaxgd.timing import timed

_OPTIMIZERS: dict[str, Callable[[Any], optax.GradientTransformation]] = {"sgd": optax.sgd}
PATH_POINTS = 40  # parameter snapshots along the best run, for the descent path figure


@dataclass
class RunRecord:
    """What a run leaves behind: arrays for history.npz and JSON-ready data for summary.json."""

    history: dict[str, np.ndarray]
    summary: dict[str, Any]
    meta: dict[str, Any]


def load_data(config: Config) -> datasets.Dataset:
    """The config's dataset in original units, with ``data.scale`` applied to its columns."""
    data = config.data
    try:
        if data.dataset == "auto_mpg":
            dataset = datasets.auto_mpg(data.features, data.target or "mpg")
        elif data.dataset == "mlcc_cars":
            dataset = datasets.mlcc_cars()
        elif data.dataset == "synthetic":
            dataset = datasets.synthetic(jax.random.key(data.seed), data.n_samples,
                                         data.n_features, data.noise)
        else:
            dataset = datasets.load_csv(data.path, data.features, data.target)
    except (ValueError, TypeError, FileNotFoundError, OSError) as error:
        raise ConfigError(f"data: {error}") from None
    return _rescale(dataset, data.scale)


def _rescale(dataset: datasets.Dataset, scale: dict[str, float]) -> datasets.Dataset:
    columns = (*dataset.feature_names, dataset.target_name)
    unknown = sorted(set(scale) - set(columns))
    if unknown:
        raise ConfigError(f"data.scale names {unknown}, which are not among the columns "
                          f"{list(columns)}")
    X, y = dataset.X.copy(), dataset.y.copy()
    names = list(dataset.feature_names)
    for i, name in enumerate(dataset.feature_names):
        if name in scale:
            X[:, i] *= scale[name]
            names[i] = f"{name} ×{scale[name]:g}"
    target = dataset.target_name
    if target in scale:
        y *= scale[target]
        target = f"{target} ×{scale[target]:g}"
    return dataset._replace(X=X, y=y, feature_names=tuple(names), target_name=target)


def path_steps(num_steps: int, points: int = PATH_POINTS) -> tuple[int, ...]:
    """Roughly geometric steps from 0 to num_steps: dense early, where the path moves most."""
    steps = np.unique(np.round(np.geomspace(1, num_steps + 1, points)).astype(int) - 1)
    return tuple(int(s) for s in np.union1d(steps, [0, num_steps]))


def run(config: Config, on_progress: Callable[[int], None] | None = None) -> RunRecord:
    """Runs the config's sweep (one run is a sweep of one) and collects the results."""
    dataset = load_data(config)
    scaler = Standardizer.fit(dataset.X) if config.data.standardize else None
    X = scaler.transform(dataset.X) if scaler else dataset.X
    optimizer = _OPTIMIZERS[config.optimizer.name]
    train = config.train
    options = dict(
        num_steps=train.num_steps,
        optimizer=optimizer,
        init_scale=0.0 if config.model.zeros else config.model.init_scale,
        tol=train.tol,
        patience=train.patience,
        divergence_factor=train.divergence_factor,
        stop_at_convergence=train.stop_at_convergence,
        reference=False,
        progress_every=max(1, train.num_steps // 100),
    )
    seeds = config.model.seeds or (config.model.seed,)
    with timed() as timing, progress.listening(on_progress or (lambda _: None)):
        result = sweep(X, dataset.y, learning_rates=config.learning_rates, seeds=seeds,
                       snapshot_steps=train.snapshot_steps, **options)
        jax.block_until_ready(result)
    best = _best_index(result)
    best_path = None
    if best is not None:
        rate, seed = config.learning_rates[best[0]], seeds[best[1]]
        best_path = fit(X, dataset.y, learning_rate=rate, seed=seed,
                        snapshot_steps=path_steps(train.num_steps), **options)
    return _record(config, dataset, scaler, X, result, best, best_path, timing)


def _best_index(result: SweepResult) -> tuple[int, int] | None:
    try:
        return result.best()
    except ValueError:  # every run diverged
        return None


def _to_original(params: LinearParams, scaler: Standardizer | None) -> LinearParams:
    params = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)
    return unstandardize_params(params, scaler) if scaler is not None else params


def _losses_of(params: LinearParams, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """MSE of a batch of parameters (..., d) on (X, y), float64, NaN-safe."""
    with np.errstate(all="ignore"):
        predictions = params.weight @ X.T + params.bias[..., None]
        return np.mean((predictions - y) ** 2, axis=-1)


def _record(config, dataset, scaler, X_train, result, best, best_path, timing) -> RunRecord:
    X, y = dataset.X, dataset.y
    optimum = solve(X, y)
    limits = stability(X_train)
    snapshots = _to_original(result.snapshots, scaler)
    history = {
        "learning_rates": np.asarray(config.learning_rates, np.float64),  # as written
        "seeds": np.asarray(result.seeds, np.int64),
        "losses": np.asarray(result.losses),
        "final_loss": np.asarray(result.final_loss),
        "converged_step": np.asarray(result.converged_step),
        "diverged": np.asarray(result.diverged),
        "diverged_step": np.asarray(result.diverged_step),
        "best_index": np.asarray(best if best is not None else (-1, -1), np.int64),
        "snapshot_steps": np.asarray(result.snapshot_steps),
        "snapshot_weight": snapshots.weight,
        "snapshot_bias": snapshots.bias,
        "snapshot_loss": _losses_of(snapshots, X, y),
        "optimum_weight": optimum.params.weight,
        "optimum_bias": np.asarray(optimum.params.bias),
        "optimal_loss": np.asarray(optimum.loss),
        **_plot_rows(X, y, config.output.max_plot_rows),
    }
    if best_path is not None:
        path = _to_original(best_path.snapshots, scaler)
        history.update(path_steps=np.asarray(best_path.snapshot_steps),
                       path_weight=path.weight, path_bias=path.bias)
    meta = {
        "title": config.title or f"{config.data.dataset}: {', '.join(dataset.feature_names)}"
                                 f" → {dataset.target_name}",
        "feature_names": list(dataset.feature_names),
        "target_name": dataset.target_name,
        "max_learning_rate": limits.max_learning_rate if config.optimizer.name == "sgd" else None,
        "optimizer": config.optimizer.name,
    }
    summary = _summary(config, dataset, history, best, optimum, limits, timing, meta)
    return RunRecord(history=history, summary=summary, meta=meta)


def _plot_rows(X: np.ndarray, y: np.ndarray, limit: int) -> dict[str, np.ndarray]:
    # Figures need the data points, not all of a huge data set: keep an even subsample.
    rows = np.linspace(0, len(y) - 1, min(limit, len(y))).round().astype(int)
    return {"X": X[rows], "y": y[rows]}


def _summary(config, dataset, history, best, optimum, limits, timing, meta) -> dict[str, Any]:
    runs = []
    for k, rate in enumerate(history["learning_rates"]):
        for s, seed in enumerate(history["seeds"]):
            runs.append({
                "learning_rate": float(rate),
                "seed": int(seed),
                "final_loss": _finite_or_none(history["final_loss"][k, s]),
                "converged_step": int(history["converged_step"][k, s]),
                "diverged": bool(history["diverged"][k, s]),
                "diverged_step": int(history["diverged_step"][k, s]),
            })
    names = meta["feature_names"]
    best_run = None
    if best is not None:
        k, s = best
        final = history["path_weight"][-1], float(history["path_bias"][-1])
        best_run = {
            **runs[k * len(history["seeds"]) + s],
            "weight": dict(zip(names, map(float, final[0]), strict=True)),
            "bias": final[1],
            "gap_to_optimum": float(history["final_loss"][k, s]) - optimum.loss,
        }
    return {
        "config": config.to_dict(),
        "versions": versions(),
        "device": device_info(),
        "data": {
            "dataset": config.data.dataset,
            "source": dataset.source,
            "features": names,
            "target": meta["target_name"],
            "rows": int(dataset.X.shape[0]),
            "rows_dropped": int(dataset.n_dropped),
            "standardized": config.data.standardize,
        },
        "runs": runs,
        "best_run": best_run,
        "least_squares": {
            "weight": dict(zip(names, map(float, optimum.params.weight), strict=True)),
            "bias": float(optimum.params.bias),
            "loss": optimum.loss,
        },
        "stability": {
            "max_learning_rate": limits.max_learning_rate,
            "fastest_learning_rate": limits.fastest_learning_rate,
            "condition_number": _finite_or_none(limits.condition_number),
            "features": "standardized" if config.data.standardize else "as given",
        },
        "timing_seconds": {"total": timing.total, "compile": timing.compile, "run": timing.run},
    }


def _finite_or_none(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def versions() -> dict[str, str]:
    """Versions of jaxgd, JAX, jaxlib, optax, NumPy and Python."""
    import jaxlib

    import jaxgd

    return {"jaxgd": jaxgd.__version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "optax": optax.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def device_info() -> dict[str, Any]:
    """The default backend and its devices."""
    devices = jax.devices()
    return {"backend": jax.default_backend(), "device_kind": devices[0].device_kind,
            "devices": [str(d) for d in devices]}
