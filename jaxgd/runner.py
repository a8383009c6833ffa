"""Runs what a ``Config`` describes, chunk by chunk, and gathers what a results folder holds.

The numbers come from the library's public API (``sweep``, ``fit``, ``solve``,
``stability``); this module only loads the data, splits the sweep into chunks, picks the
best run and arranges the arrays for saving and plotting. Parameters are reported in the
data's original units.

- ``prepare`` loads and checks the data and splits the learning rates into chunks of
  ``chunk_size`` (every seed of each learning rate in the same chunk);
- ``run_chunk`` runs one chunk as one ``sweep``: plain NumPy arrays, ready to save;
- ``assemble`` turns the chunks into the results record.

``run`` does the three in memory. ``jaxgd run`` saves each chunk as it finishes (see
``jaxgd.checkpoint``), so a killed run resumes where it stopped; since every chunk is the
same compiled program on the same inputs, the results are those of an uninterrupted run.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgd import datasets, progress
from jaxgd.config import Config, ConfigError
from jaxgd.fit import fit
from jaxgd.least_squares import solve
from jaxgd.params import LinearParams
from jaxgd.results import to_json
from jaxgd.scaling import Standardizer, unstandardize_params
from jaxgd.stability import Stability, stability
from jaxgd.sweep import sweep
from jaxgd.timing import Timing, timed

_OPTIMIZERS: dict[str, Callable[[Any], optax.GradientTransformation]] = {"sgd": optax.sgd}
PATH_POINTS = 40  # parameter snapshots along the best run, for the descent path figure
CHUNK_RUNS = 1024  # runs per chunk when the grid is larger than this and no size is given
CONDITION_WARNING = 1e4  # condition numbers from here on get a warning
_CHUNK_FIELDS = ("losses", "final_loss", "converged_step", "diverged", "diverged_step",
                 "snapshot_weight", "snapshot_bias")


@dataclass
class RunRecord:
    """What a run leaves behind: arrays for history.npz and JSON-ready data for summary.json."""

    history: dict[str, np.ndarray]
    summary: dict[str, Any]
    meta: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    """A checked run, ready to go: the data, the starting seeds and the chunks.

    Attributes:
      config: the run's config.
      dataset: the data in original units (``data.scale`` applied).
      scaler: the ``Standardizer`` when ``data.standardize``, else None.
      X: the features the runs train on (standardized when asked).
      seeds: the seeds of every learning rate.
      chunk_size: learning rates per chunk (the last chunk may hold fewer).
      limits: ``stability(X)``, of the features the runs train on.
      warnings: numerical hazards worth telling the user about before the run.
    """

    config: Config
    dataset: datasets.Dataset
    scaler: Standardizer | None
    X: np.ndarray
    seeds: tuple[int, ...]
    chunk_size: int
    limits: Stability
    warnings: tuple[str, ...] = ()

    @property
    def num_chunks(self) -> int:
        return math.ceil(len(self.config.learning_rates) / self.chunk_size)

    def chunk_rates(self, index: int) -> tuple[float, ...]:
        """The learning rates of chunk ``index``."""
        if not 0 <= index < self.num_chunks:
            raise IndexError(f"chunk {index} is outside [0, {self.num_chunks})")
        return self.config.learning_rates[index * self.chunk_size:
                                          (index + 1) * self.chunk_size]

    def fingerprint(self) -> dict[str, Any]:
        """What makes the chunks of this run the chunks of this run: the resolved config,
        the data, the software and backend, and the chunking (see ``jaxgd.checkpoint``)."""
        config = self.config.to_dict()
        if config["data"]["path"] is not None:  # the same file, wherever jaxgd runs from
            config["data"]["path"] = os.path.abspath(config["data"]["path"])
        data = hashlib.sha256()
        for array in (self.dataset.X, self.dataset.y):
            array = np.ascontiguousarray(array, np.float64)
            data.update(repr(array.shape).encode())
            data.update(array.tobytes())
        device = device_info()
        software = versions()
        environment = {name: software[name] for name in ("jaxgd", "jax", "jaxlib", "optax")}
        environment.update(backend=device["backend"], device_kind=device["device_kind"],
                           device_count=len(device["devices"]),
                           dtype=str(jnp.result_type(float)))
        return {
            "config": config,
            "config_sha256": hashlib.sha256(to_json(config).encode()).hexdigest(),
            "data_sha256": data.hexdigest(),
            "environment": environment,
            "chunk_size": self.chunk_size,
            "num_chunks": self.num_chunks,
        }


def default_chunk_size(num_rates: int, num_seeds: int, runs: int = CHUNK_RUNS) -> int:
    """Learning rates per chunk: all of them for a grid of up to ``runs`` runs, else as many
    as make about ``runs`` runs with every seed (at least one).

    Example:
      >>> default_chunk_size(7, 3), default_chunk_size(5000, 1), default_chunk_size(10, 2000)
      (7, 1024, 1)
    """
    if num_rates * num_seeds <= runs:
        return num_rates
    return max(1, runs // num_seeds)


def load_data(config: Config) -> datasets.Dataset:
    """The config's dataset in original units, with ``data.scale`` applied to its columns."""
    data = config.data
    if data.dataset in ("mlcc_cars", "synthetic") and (data.features is not None
                                                       or data.target is not None):
        raise ConfigError(f"data.features and data.target choose columns of auto_mpg or csv "
                          f"data; data.dataset = {data.dataset!r} has fixed columns: "
                          "remove them")
    if data.dataset == "synthetic":
        _check_fits_in_memory(data.n_samples * (data.n_features + 1) * 8 * 3,
                              f"data.n_samples × data.n_features = {data.n_samples} × "
                              f"{data.n_features} synthetic data")
    try:
        if data.dataset == "auto_mpg":
            dataset = datasets.auto_mpg(data.features, data.target or "mpg")
        elif data.dataset == "mlcc_cars":
            dataset = datasets.mlcc_cars()
        elif data.dataset == "synthetic":
            dataset = datasets.synthetic(jax.random.key(data.seed), data.n_samples,
                                         data.n_features, data.noise)
        elif data.dataset == "csv":
            dataset = datasets.load_csv(data.path, data.features, data.target)
        else:
            raise ConfigError(f"data.dataset = {data.dataset!r} is not supported by jaxgd "
                              "run yet")
    except UnicodeDecodeError as error:
        raise ConfigError(f"data: {data.path} is not UTF-8 text: {error}") from None
    except csv.Error as error:  # e.g. a field longer than the csv module's limit
        raise ConfigError(f"data: {data.path} is not a CSV file jaxgd can read: {error}") \
            from None
    except (ValueError, TypeError, FileNotFoundError, OSError) as error:
        raise ConfigError(f"data: {error}") from None
    except MemoryError:
        raise ConfigError(f"data: not enough memory to load {data.path or data.dataset}") \
            from None
    return _rescale(dataset, data.scale)


def _rescale(dataset: datasets.Dataset, scale: dict[str, float]) -> datasets.Dataset:
    columns = (*dataset.feature_names, dataset.target_name)
    unknown = sorted(set(scale) - set(columns))
    if unknown:
        raise ConfigError(f"data.scale names {unknown}, which are not among the columns "
                          f"{list(columns)}")
    X, y = dataset.X.copy(), dataset.y.copy()
    names = list(dataset.feature_names)
    with np.errstate(over="ignore"):  # reported below
        for i, name in enumerate(dataset.feature_names):
            if name in scale:
                X[:, i] *= scale[name]
                names[i] = f"{name} ×{scale[name]:g}"
        target = dataset.target_name
        if target in scale:
            y *= scale[target]
            target = f"{target} ×{scale[target]:g}"
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise ConfigError("data.scale makes some values overflow to infinity: use smaller "
                          "factors")
    return dataset._replace(X=X, y=y, feature_names=tuple(names), target_name=target)


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _check_fits_in_memory(needed: float, what: str) -> None:
    available = _memory_bytes()
    if available is not None and needed > available:
        raise ConfigError(f"{what} would take {needed / 2**30:,.1f} GiB, more than this "
                          f"machine's {available / 2**30:,.1f} GiB of memory: make it smaller")


def path_steps(num_steps: int, points: int = PATH_POINTS) -> tuple[int, ...]:
    """Roughly geometric steps from 0 to num_steps: dense early, where the path moves most."""
    steps = np.unique(np.round(np.geomspace(1, num_steps + 1, points)).astype(int) - 1)
    return tuple(int(s) for s in np.union1d(steps, [0, num_steps]))


def conditioning_warnings(limits: Stability, standardized: bool) -> tuple[str, ...]:
    """A warning when the features make gradient descent crawl, saying what to do.

    Example:
      >>> import numpy as np
      >>> X = np.array([[1000.0], [2000.0], [3000.0]])
      >>> print(conditioning_warnings(stability(X), standardized=False)[0][:56])
      the features are badly conditioned (condition number 3.2
    """
    kappa = limits.condition_number
    if standardized:
        if not math.isfinite(kappa):
            return ("the standardized features are linearly dependent (a column is constant "
                    "or a combination of others): the least-squares weights are not unique; "
                    "drop the redundant column",)
        if kappa >= CONDITION_WARNING:
            return (f"the standardized features are nearly collinear (condition number "
                    f"{kappa:.3g}): gradient descent crawls along their difference and "
                    "standardizing cannot help; drop one of the correlated features",)
        return ()
    if kappa >= CONDITION_WARNING:
        number = "infinite: a column is constant or a combination of others" if not (
            math.isfinite(kappa)) else f"{kappa:.3g}"
        return (f"the features are badly conditioned (condition number {number}): plain "
                "gradient descent crawls along a long narrow valley, needing about that many "
                "steps; set data.standardize = true (results are still reported in original "
                "units) or rescale columns with data.scale",)
    return ()


def prepare(config: Config, chunk_size: int | None = None) -> Plan:
    """Loads and checks the config's data and plans the chunks; nothing heavy runs yet.

    Args:
      config: the run.
      chunk_size: learning rates per chunk; None picks ``default_chunk_size``.

    Raises:
      ConfigError: for data that cannot be loaded or used, a chunk size below 1, or
        results too large for this machine's memory.
    """
    check_supported(config)
    dataset = load_data(config)
    scaler = Standardizer.fit(dataset.X) if config.data.standardize else None
    X = scaler.transform(dataset.X) if scaler else dataset.X
    seeds = tuple(config.model.seeds or (config.model.seed,))
    rates = config.learning_rates
    if chunk_size is None:
        chunk_size = default_chunk_size(len(rates), len(seeds))
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigError(f"the chunk size must be an integer >= 1, got {chunk_size!r}")
    chunk_size = min(chunk_size, len(rates))
    itemsize = jnp.dtype(jnp.result_type(float)).itemsize
    runs = len(rates) * len(seeds)
    snapshots = len(config.train.snapshot_steps or ()) + 3
    _check_fits_in_memory(
        runs * (config.train.num_steps + snapshots * (X.shape[1] + 2)) * itemsize,
        f"the history of {len(rates)} learning rates × {len(seeds)} seeds × "
        f"{config.train.num_steps} steps",
    )
    limits = stability(X)
    return Plan(config=config, dataset=dataset, scaler=scaler, X=X, seeds=seeds,
                chunk_size=chunk_size, limits=limits,
                warnings=conditioning_warnings(limits, config.data.standardize))


#: Config keys (section, key, the value that means "not used") that ``jaxgd run`` cannot
#: honour yet: a config that sets one is refused rather than silently run without it.
_NOT_YET = (
    ("data", "stream", False),
    ("optimizer", "grid", {}),
    ("train", "batch_size", None),
    ("train", "epochs", None),
    ("train", "l2", 0.0),
    ("train", "log_every", 1),
)


def check_supported(config: Config) -> None:
    """Refuses config settings that the library has but ``jaxgd run`` does not use yet.

    Raises:
      ConfigError: naming the key.
    """
    if config.data.dataset not in ("auto_mpg", "mlcc_cars", "synthetic", "csv"):
        raise ConfigError(f"data.dataset = {config.data.dataset!r} is not supported by "
                          "jaxgd run yet: load it with the library (see README)")
    for section, key, unused in _NOT_YET:
        value = getattr(getattr(config, section), key, unused)
        if value != unused:
            raise ConfigError(f"{section}.{key} = {value!r} is not supported by jaxgd run "
                              f"yet: leave it out (it defaults to {unused!r})")


def _options(config: Config) -> dict[str, Any]:
    train, optimizer = config.train, config.optimizer
    options = dict(
        num_steps=train.num_steps,
        optimizer=_OPTIMIZERS.get(optimizer.name, optimizer.name),
        init_scale=0.0 if config.model.zeros else config.model.init_scale,
        tol=train.tol,
        patience=train.patience,
        divergence_factor=train.divergence_factor,
        stop_at_convergence=train.stop_at_convergence,
        reference=False,
        progress_every=max(1, train.num_steps // 100),
    )
    # Settings newer configs have; passed on only when set, so older ones run as before.
    for source, key, unused in ((optimizer, "schedule", "constant"),
                                (optimizer, "schedule_steps", {}),
                                (optimizer, "hyperparameters", {}),
                                (train, "engine", "auto")):
        value = getattr(source, key, unused)
        if value != unused:
            options[key] = value
    return options


def run_chunk(plan: Plan, index: int,
              on_progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Runs chunk ``index``: every seed of its learning rates, as one ``sweep``.

    The last chunk is padded to ``chunk_size`` learning rates with copies of its last one
    (dropped from the result), so every chunk is the same compiled program.

    Returns:
      NumPy arrays, learning rates first: ``learning_rates`` (k,), ``losses`` (k, S, T),
      ``final_loss``, ``converged_step``, ``diverged``, ``diverged_step`` (k, S),
      ``snapshot_weight`` (k, S, P, d) and ``snapshot_bias`` (k, S, P) in the units the
      runs train on, ``snapshot_steps`` (P,), and ``seconds`` (2,): total and compiling.
    """
    rates = plan.chunk_rates(index)
    padded = rates + (rates[-1],) * (plan.chunk_size - len(rates))
    with timed() as timing, progress.listening(on_progress or (lambda _: None)):
        result = sweep(plan.X, plan.dataset.y, learning_rates=padded, seeds=plan.seeds,
                       snapshot_steps=plan.config.train.snapshot_steps,
                       **_options(plan.config))
        result = jax.device_get(result)
    k = len(rates)
    return {
        "learning_rates": np.asarray(rates, np.float64),
        "losses": np.asarray(result.losses)[:k],
        "final_loss": np.asarray(result.final_loss)[:k],
        "converged_step": np.asarray(result.converged_step)[:k],
        "diverged": np.asarray(result.diverged)[:k],
        "diverged_step": np.asarray(result.diverged_step)[:k],
        "snapshot_weight": np.asarray(result.snapshots.weight)[:k],
        "snapshot_bias": np.asarray(result.snapshots.bias)[:k],
        "snapshot_steps": np.asarray(result.snapshot_steps),
        "seconds": np.asarray([timing.total, timing.compile], np.float64),
    }


def assemble(plan: Plan, chunks: Sequence[dict[str, np.ndarray]]) -> RunRecord:
    """The results record of a run from its chunks, in order (see ``run_chunk``).

    Raises:
      ConfigError: if a chunk does not belong to this run (other learning rates or shapes).
    """
    if len(chunks) != plan.num_chunks:
        raise ConfigError(f"{len(chunks)} chunks given, the run has {plan.num_chunks}")
    for index, chunk in enumerate(chunks):
        rates = np.asarray(plan.chunk_rates(index), np.float64)
        missing = [name for name in (*_CHUNK_FIELDS, "learning_rates", "snapshot_steps")
                   if name not in chunk]
        if missing or not np.array_equal(chunk["learning_rates"], rates) or any(
                chunk[name].shape[:2] != (rates.size, len(plan.seeds))
                for name in _CHUNK_FIELDS):
            raise ConfigError(f"saved chunk {index} does not belong to this run (other "
                              "learning rates, seeds or fields): start again with --overwrite")
    grid = {name: np.concatenate([chunk[name] for chunk in chunks]) for name in _CHUNK_FIELDS}
    grid["snapshot_steps"] = chunks[0]["snapshot_steps"]
    seconds = np.sum([chunk.get("seconds", np.zeros(2)) for chunk in chunks], axis=0)
    timing = Timing(total=float(seconds[0]), compile=float(seconds[1]))
    config, dataset = plan.config, plan.dataset
    best = best_index(grid["final_loss"], grid["diverged"])
    best_path = None
    if best is not None:
        rate, seed = config.learning_rates[best[0]], plan.seeds[best[1]]
        best_path = fit(plan.X, dataset.y, learning_rate=rate, seed=seed,
                        snapshot_steps=path_steps(config.train.num_steps),
                        **_options(config))
    return _record(plan, grid, best, best_path, timing)


def run(config: Config, on_progress: Callable[[int], None] | None = None,
        chunk_size: int | None = None) -> RunRecord:
    """Runs the config's sweep (one run is a sweep of one) and collects the results.

    ``on_progress`` hears the steps done over all chunks (``num_steps`` per chunk).
    """
    plan = prepare(config, chunk_size)
    steps = config.train.num_steps
    chunks = []
    for index in range(plan.num_chunks):
        report = None if on_progress is None else (
            lambda done, base=index * steps: on_progress(base + min(done, steps)))
        chunks.append(run_chunk(plan, index, report))
    return assemble(plan, chunks)


def best_index(final_loss: np.ndarray, diverged: np.ndarray) -> tuple[int, int] | None:
    """(k, s) of the lowest final loss among the runs that neither diverged nor ended on a
    NaN or infinite loss; None if there is no such run.

    Example:
      >>> best_index(np.array([[np.nan], [2.0], [1.0]]), np.array([[True], [False], [True]]))
      (1, 0)
    """
    final = np.asarray(final_loss, np.float64)
    usable = ~np.asarray(diverged, bool) & np.isfinite(final)
    if not usable.any():
        return None
    flat = int(np.argmin(np.where(usable, final, np.inf)))
    return tuple(int(i) for i in np.unravel_index(flat, final.shape))


def _to_original(params: LinearParams, scaler: Standardizer | None) -> LinearParams:
    params = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)
    return unstandardize_params(params, scaler) if scaler is not None else params


def _losses_of(params: LinearParams, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """MSE of a batch of parameters (..., d) on (X, y), float64, NaN-safe."""
    with np.errstate(all="ignore"):
        predictions = params.weight @ X.T + params.bias[..., None]
        return np.mean((predictions - y) ** 2, axis=-1)


def _record(plan: Plan, grid, best, best_path, timing) -> RunRecord:
    config, dataset, scaler, limits = plan.config, plan.dataset, plan.scaler, plan.limits
    X, y = dataset.X, dataset.y
    optimum = solve(X, y)
    snapshots = _to_original(LinearParams(grid["snapshot_weight"], grid["snapshot_bias"]),
                             scaler)
    history = {
        "learning_rates": np.asarray(config.learning_rates, np.float64),  # as written
        "seeds": np.asarray(plan.seeds, np.int64),
        "losses": grid["losses"],
        "final_loss": grid["final_loss"],
        "converged_step": grid["converged_step"],
        "diverged": grid["diverged"],
        "diverged_step": grid["diverged_step"],
        "best_index": np.asarray(best if best is not None else (-1, -1), np.int64),
        "snapshot_steps": np.asarray(grid["snapshot_steps"]),
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
    summary["chunks"] = {"learning_rates_per_chunk": plan.chunk_size, "count": plan.num_chunks}
    summary["warnings"] = list(plan.warnings)
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
