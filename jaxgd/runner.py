"""Runs what a ``Config`` describes, chunk by chunk, and gathers what a results folder holds.

The numbers come from the library's public API (``grid_sweep``, ``fit``, ``solve``,
``stability``, ``statistics.accumulate``); this module only loads the data, splits the grid
into chunks, picks the best run and arranges the arrays for saving and plotting. Parameters
are reported in the data's original units.

A run is a full grid: learning rates, then ``optimizer.grid``'s hyperparameters in order,
then seeds (``Plan.axes``). Every per-run array of the results has these axes first.

- ``prepare`` loads and checks the data (rows in memory, or a file streamed into its
  sufficient statistics, and for mini-batch SGD read batch by batch) and splits the learning
  rates into chunks of ``chunk_size`` (every other grid point of each learning rate in the
  same chunk);
- ``run_chunk`` runs one chunk as one ``grid_sweep``: plain NumPy arrays, ready to save;
- ``assemble`` turns the chunks into the results record.

``run`` does the three in memory. ``jaxgd run`` saves each chunk as it finishes (see
``jaxgd.checkpoint``), so a killed run resumes where it stopped; since every chunk is the
same compiled program on the same inputs, the results are those of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import math
import os
import platform
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgd import datasets, eigen, minibatch, progress
from jaxgd.config import Config, ConfigError
from jaxgd.fit import fit, make_config
from jaxgd.grid import grid_sweep
from jaxgd.least_squares import LeastSquares, solve
from jaxgd.params import LinearParams
from jaxgd.results import to_json
from jaxgd.scaling import Standardizer, unstandardize_params
from jaxgd.stability import Stability, stability
from jaxgd.statistics import SufficientStats, accumulate
from jaxgd.timing import Timing, timed

PATH_POINTS = 40  # parameter snapshots along the best run, for the descent path figure
CHUNK_RUNS = 1024  # runs per chunk when the grid is larger than this and no size is given
CONDITION_WARNING = 1e4  # condition numbers from here on get a warning
#: Per-run fields of a chunk: the grid's axes first (learning rates, grid names, seeds).
_CHUNK_FIELDS = ("losses", "final_loss", "converged_step", "diverged", "diverged_step",
                 "snapshot_weight", "snapshot_bias")
#: Grid names whose values are integers (the others are numbers).
_INTEGER_AXES = ("seed", "batch_seed")


@dataclass
class RunRecord:
    """What a run leaves behind: arrays for history.npz and JSON-ready data for summary.json."""

    history: dict[str, np.ndarray]
    summary: dict[str, Any]
    meta: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    """A checked run, ready to go: the data, the grid and the chunks.

    Attributes:
      config: the run's config.
      dataset: the data in original units (``data.scale`` applied); streamed data keep no
        rows here (``X`` is ``(0, d)``), only their names and source.
      scaler: the ``Standardizer`` when ``data.standardize``, else None.
      X: what the runs train on: the features (standardized when asked), or the streamed
        data's ``SufficientStats`` (then ``y`` is None).
      seeds: the seeds of every grid point.
      chunk_size: learning rates per chunk (the last chunk may hold fewer).
      limits: ``stability(X, l2)``, of the features the runs train on, at the largest l2 of
        the run (2/λmax then holds for every run).
      warnings: numerical hazards worth telling the user about before the run.
      y: the targets the runs train on; None for streamed data.
      stats: streamed data's moments in original units; None for data in memory.
      source: streamed data for mini-batch SGD: the file's rows (``data.scale`` applied),
        from which the runs read their batches; None otherwise.
      grid: ``optimizer.grid``: hyperparameter name -> values, the axes between the learning
        rates and the seeds.
      num_steps: updates per run (for mini-batch SGD, epochs × ceil(n / batch_size)).
    """

    config: Config
    dataset: datasets.Dataset
    scaler: Standardizer | None
    X: Any
    seeds: tuple[int, ...]
    chunk_size: int
    limits: Stability
    warnings: tuple[str, ...] = ()
    y: np.ndarray | None = None
    stats: SufficientStats | None = None
    grid: dict[str, tuple[float, ...]] = field(default_factory=dict)
    num_steps: int = 0
    source: datasets.RowSource | None = None

    @property
    def streamed(self) -> bool:
        """Whether the data were streamed into their moments (no rows in memory)."""
        return self.stats is not None

    @property
    def train_data(self) -> tuple[Any, Any]:
        """(X, y) as the runs take them: the rows, the moments, or the file's rows."""
        return (self.source, None) if self.source is not None else (self.X, self.y)

    @property
    def n_rows(self) -> int:
        return int(self.stats.n) if self.streamed else int(self.dataset.X.shape[0])

    @property
    def axes(self) -> tuple[str, ...]:
        """The run's grid axes: learning rate, ``optimizer.grid``'s names, seed."""
        return ("learning_rate", *self.grid, "seed")

    def grid_shape(self, num_rates: int | None = None) -> tuple[int, ...]:
        """The grid's shape, with ``num_rates`` learning rates (default: all of them)."""
        rates = len(self.config.learning_rates) if num_rates is None else num_rates
        return (rates, *(len(v) for v in self.grid.values()), len(self.seeds))

    @property
    def l2_values(self) -> tuple[float, ...]:
        """The run's l2 strengths: the grid's, or the one of ``train.l2``."""
        return tuple(self.grid["l2"]) if "l2" in self.grid else (self.config.train.l2,)

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
        the data (streamed data: their float64 moments), the software and backend, and the
        chunking (see ``jaxgd.checkpoint``)."""
        config = self.config.to_dict()
        if config["data"]["path"] is not None:  # the same file, wherever jaxgd runs from
            config["data"]["path"] = os.path.abspath(config["data"]["path"])
        data = hashlib.sha256()
        arrays = self.stats if self.streamed else (self.dataset.X, self.dataset.y)
        for array in arrays:
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
    as make about ``runs`` runs with every seed (at least one). ``num_seeds`` counts the runs
    of each learning rate: seeds times the other grid points.

    Example:
      >>> default_chunk_size(7, 3), default_chunk_size(5000, 1), default_chunk_size(10, 2000)
      (7, 1024, 1)
    """
    if num_rates * num_seeds <= runs:
        return num_rates
    return max(1, runs // num_seeds)


def is_streamed(config: Config) -> bool:
    """Whether the config's data are streamed from a file into their moments: a .npy file
    always is, a CSV file with ``data.stream = true``."""
    return config.data.dataset == "npy" or bool(getattr(config.data, "stream", False))


@contextlib.contextmanager
def _data_errors(path: str | None, what: str) -> Iterator[None]:
    """Turns the ways a data file can fail into ``ConfigError`` messages starting "data:"."""
    try:
        yield
    except ConfigError:
        raise
    except UnicodeDecodeError as error:
        raise ConfigError(f"data: {path} is not UTF-8 text: {error}") from None
    except csv.Error as error:  # e.g. a field longer than the csv module's limit
        raise ConfigError(f"data: {path} is not a CSV file jaxgd can read: {error}") \
            from None
    except (ValueError, TypeError, FileNotFoundError, OSError) as error:
        raise ConfigError(f"data: {error}") from None
    except MemoryError:
        raise ConfigError(f"data: not enough memory to load {path or what}") from None


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
    with _data_errors(data.path, data.dataset):
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
            raise ConfigError(f"data.dataset = {data.dataset!r} is streamed: see load_stream")
    return _rescale(dataset, data.scale)


def load_stream(config: Config) -> tuple[datasets.Dataset, SufficientStats]:
    """The config's file read once, block by block, into its float64 sufficient statistics
    (``data.scale`` applied); no rows are kept.

    Returns:
      A ``Dataset`` holding the names and source but no rows (``X`` is ``(0, d)``), and the
      moments of all the rows.
    """
    data = config.data
    path = data.path
    with _data_errors(path, data.dataset):
        if data.dataset == "npy":
            stats = accumulate(datasets.npy_blocks(path, target=data.target_column,
                                                   block_rows=data.block_rows))
            source = f".npy file {path}"
        else:
            stats = accumulate(datasets.csv_blocks(path, data.features, data.target,
                                                   block_rows=data.block_rows))
            source = f"CSV file {path}"
        names, target_name = _stream_columns(config)
    stats, names, target_name = _rescale_stats(stats, names, target_name, data.scale)
    empty = datasets.Dataset(np.zeros((0, len(names))), np.zeros(0), names, target_name, 0,
                             f"{source}, streamed")
    return empty, stats


def _stream_columns(config: Config) -> tuple[tuple[str, ...], str]:
    """Feature and target names of a streamed file (a .npy file's columns are x0, x1, …)."""
    data = config.data
    if data.dataset != "npy":
        return tuple(data.features), data.target
    width = np.load(data.path, mmap_mode="r", allow_pickle=False).shape[1]
    target = data.target_column % width
    return tuple(f"x{i}" for i in range(width) if i != target), "y"


def load_rows(config: Config) -> datasets.RowSource:
    """The config's file as rows for mini-batch SGD to read batch by batch, ``data.scale``
    applied to each row (``load_stream`` has checked the file and the scale's names)."""
    data = config.data
    with _data_errors(data.path, data.dataset):
        if data.dataset == "npy":
            source = datasets.npy_rows(data.path, target=data.target_column,
                                       block_rows=data.block_rows)
        else:
            source = datasets.csv_rows(data.path, data.features, data.target,
                                       block_rows=data.block_rows)
        names, target = _stream_columns(config)
    return source.rescaled([data.scale.get(name, 1.0) for name in names],
                           data.scale.get(target, 1.0))


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


def _rescale_stats(stats: SufficientStats, names: tuple[str, ...], target: str,
                   scale: dict[str, float]):
    """``data.scale`` applied to the moments: column i times c_i scales its mean by c_i and
    its (co)variances by the products of the factors."""
    columns = (*names, target)
    unknown = sorted(set(scale) - set(columns))
    if unknown:
        raise ConfigError(f"data.scale names {unknown}, which are not among the columns "
                          f"{list(columns)}")
    factors = np.array([scale.get(name, 1.0) for name in names])
    ty = scale.get(target, 1.0)
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = SufficientStats(
            n=stats.n,
            mean_x=np.asarray(stats.mean_x) * factors,
            mean_y=np.float64(stats.mean_y * ty),
            cov_xx=np.asarray(stats.cov_xx) * np.outer(factors, factors),
            cov_xy=np.asarray(stats.cov_xy) * factors * ty,
            var_y=np.float64(stats.var_y * ty * ty),
        )
    if not all(np.isfinite(np.asarray(a)).all() for a in scaled):
        raise ConfigError("data.scale makes some values overflow to infinity: use smaller "
                          "factors")
    names = tuple(f"{n} ×{scale[n]:g}" if n in scale else n for n in names)
    target = f"{target} ×{ty:g}" if target in scale else target
    return scaled, names, target


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


def conditioning_warnings(limits: Stability, standardized: bool,
                          can_standardize: bool = True) -> tuple[str, ...]:
    """A warning when the features make gradient descent crawl, saying what to do.

    ``can_standardize``: False for streamed data, which ``data.standardize`` cannot take.

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
        advice = ("set data.standardize = true (results are still reported in original "
                  "units) or rescale columns with data.scale") if can_standardize else (
            "rescale columns with data.scale (streamed data cannot be standardized)")
        return (f"the features are badly conditioned (condition number {number}): plain "
                "gradient descent crawls along a long narrow valley, needing about that many "
                f"steps; {advice}",)
    return ()


def _grid(config: Config) -> dict[str, tuple]:
    """``optimizer.grid`` with integer seeds for ``batch_seed`` (TOML numbers are floats)."""
    grid = {}
    for name, values in getattr(config.optimizer, "grid", {}).items():
        if name in _INTEGER_AXES:
            bad = [v for v in values if not float(v).is_integer() or not 0 <= v < 2**32]
            if bad:
                raise ConfigError(f"optimizer.grid.{name} must hold integers in [0, 2**32), "
                                  f"got {bad}")
            values = tuple(int(v) for v in values)
        grid[name] = tuple(values)
    return grid


def _num_steps(config: Config, n_rows: int) -> int:
    """Updates per run: ``train.num_steps``, or epochs × ceil(n / batch_size)."""
    train = config.train
    if train.batch_size is None:
        return train.num_steps
    if train.batch_size > n_rows:
        raise ConfigError(f"train.batch_size must be <= the number of rows ({n_rows}), "
                          f"got {train.batch_size}")
    return train.epochs * minibatch.steps_per_epoch(n_rows, train.batch_size)


def prepare(config: Config, chunk_size: int | None = None) -> Plan:
    """Loads and checks the config's data and plans the chunks; nothing heavy runs yet.

    Args:
      config: the run.
      chunk_size: learning rates per chunk; None picks ``default_chunk_size``.

    Raises:
      ConfigError: for data that cannot be loaded or used, settings the run cannot honour,
        a chunk size below 1, or results too large for this machine's memory.
    """
    check_supported(config)
    source = None
    if is_streamed(config):
        dataset, stats = load_stream(config)
        scaler, X, y = None, stats, None
        n_rows = int(stats.n)
        if config.train.batch_size is not None:  # batches are read from the file
            source = load_rows(config)
    else:
        dataset, stats = load_data(config), None
        scaler = Standardizer.fit(dataset.X) if config.data.standardize else None
        X = scaler.transform(dataset.X) if scaler else dataset.X
        y, n_rows = dataset.y, dataset.X.shape[0]
    grid = _grid(config)
    num_steps = _num_steps(config, n_rows)
    _check_run_options(config, num_steps, n_rows)
    seeds = tuple(config.model.seeds or (config.model.seed,))
    rates = config.learning_rates
    per_rate = math.prod(len(v) for v in grid.values()) * len(seeds)
    if chunk_size is None:
        chunk_size = default_chunk_size(len(rates), per_rate)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigError(f"the chunk size must be an integer >= 1, got {chunk_size!r}")
    chunk_size = min(chunk_size, len(rates))
    itemsize = jnp.dtype(jnp.result_type(float)).itemsize
    runs = len(rates) * per_rate
    logs = -(-num_steps // config.train.log_every) + (config.train.epochs or 0) + 1
    snapshots = len(config.train.snapshot_steps or ()) + 3
    d = len(dataset.feature_names)
    others = "".join(f" × {len(v)} {name}" for name, v in grid.items())
    _check_fits_in_memory(
        runs * (logs + snapshots * (d + 2)) * itemsize,
        f"the history of {len(rates)} learning rates{others} × {len(seeds)} seeds × "
        f"{num_steps} steps",
    )
    l2_values = tuple(grid["l2"]) if "l2" in grid else (config.train.l2,)
    limits = stability(X, l2=max(l2_values))
    weakest = limits if min(l2_values) == max(l2_values) else stability(X, l2=min(l2_values))
    warnings = conditioning_warnings(weakest, config.data.standardize,
                                     can_standardize=stats is None)
    return Plan(config=config, dataset=dataset, scaler=scaler, X=X, y=y, seeds=seeds,
                chunk_size=chunk_size, limits=limits, warnings=warnings, stats=stats,
                grid=grid, num_steps=num_steps, source=source)


def _check_run_options(config: Config, num_steps: int, n_rows: int) -> None:
    """The run options as the library will check them, refused now as config errors rather
    than failing in the middle of the run."""
    train = config.train
    bad = [s for s in train.snapshot_steps or () if not 0 <= s <= num_steps]
    if bad:
        raise ConfigError(f"train.snapshot_steps must lie in [0, {num_steps}] (the run's "
                          f"steps), got {bad}")
    if train.batch_size is not None and train.stop_at_convergence:
        raise ConfigError("train.stop_at_convergence is for full-batch runs: leave it out "
                          "with train.batch_size and train.epochs")
    options = _options(config, num_steps)
    try:
        make_config(
            num_steps=options["num_steps"], optimizer=options["optimizer"],
            init_scale=options["init_scale"], tol=options["tol"],
            patience=options["patience"], divergence_factor=options["divergence_factor"],
            stop_at_convergence=options["stop_at_convergence"],
            snapshot_steps=train.snapshot_steps, log_every=options["log_every"],
            schedule=options["schedule"], schedule_steps=options["schedule_steps"],
            batch_size=options["batch_size"], epochs=options["epochs"], n_rows=n_rows)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"train: {error}") from None


def check_supported(config: Config) -> None:
    """Refuses settings that ``jaxgd run`` cannot honour together.

    Streamed data (``data.dataset = "npy"``, or ``"csv"`` with ``data.stream = true``) are
    read into their moments, and mini-batch SGD reads its batches from the file, one batch
    order for every run (``jaxgd.streaming``); whatever needs all the rows in memory is
    refused with them: standardizing, full-batch descent with the direct engine, and several
    batch orders. A .npy file's columns are numbered, not named.

    Raises:
      ConfigError: naming the keys.
    """
    data, train = config.data, config.train
    dataset = data.dataset
    if dataset not in ("auto_mpg", "mlcc_cars", "synthetic", "csv", "npy"):
        raise ConfigError(f"data.dataset = {dataset!r} is not supported by jaxgd run")
    if not is_streamed(config) and getattr(data, "block_rows",
                                           datasets.DEFAULT_BLOCK_ROWS) != (
            datasets.DEFAULT_BLOCK_ROWS):
        raise ConfigError("data.block_rows is only for streamed data (data.dataset = 'npy', "
                          "or 'csv' with data.stream = true)")
    _check_engine(config)
    if dataset != "npy" and getattr(data, "target_column", -1) != -1:
        raise ConfigError("data.target_column is only for data.dataset = 'npy': name the "
                          "target with data.target")
    if dataset == "npy" and (getattr(data, "features", None) is not None
                             or getattr(data, "target", None) is not None):
        raise ConfigError("a .npy file's columns have no names: leave data.features and "
                          "data.target out, and give the target's column index as "
                          "data.target_column (default -1, the last); the other columns "
                          "are the features")
    if not is_streamed(config):
        return
    why = ("data.dataset = 'npy'" if dataset == "npy" else "data.stream = true") + (
        " reads the file only into its moments, never keeping the rows")
    if getattr(data, "standardize", False):
        raise ConfigError(f"data.standardize = true needs the rows in memory, and {why}: "
                          "leave data.standardize out (rescale columns with data.scale "
                          "instead), or drop data.stream for a CSV file that fits in memory")
    if getattr(train, "batch_size", None) is not None:
        batch_seeds = config.optimizer.grid.get("batch_seed", ())
        if len(batch_seeds) > 1:
            raise ConfigError("optimizer.grid.batch_seed: streamed mini-batch SGD reads one "
                              "batch order from the file for every run, so the axis may hold "
                              f"one value only, got {list(batch_seeds)}")
        return
    if getattr(train, "engine", "auto") == "direct":
        raise ConfigError(f"train.engine = 'direct' computes the loss from the rows, and "
                          f"{why}: use engine 'auto', 'eigen' or 'gram'")


def _check_engine(config: Config) -> None:
    """Refuses an engine that cannot run this config (the library would raise mid-run)."""
    engine_name = getattr(config.train, "engine", "auto")
    if engine_name in ("gram", "eigen") and config.train.batch_size is not None:
        raise ConfigError(f"train.engine = {engine_name!r} sees the data only through its "
                          "moments, and mini-batch SGD (train.batch_size) computes each "
                          "batch's loss from its rows: use engine 'direct' or 'auto'")
    if engine_name != "eigen":
        return
    exact = ", ".join(eigen.ROTATION_INVARIANT)
    if config.optimizer.name not in eigen.ROTATION_INVARIANT:
        raise ConfigError(f"train.engine = 'eigen' follows only {exact} exactly, not "
                          f"optimizer.name = {config.optimizer.name!r} (it scales each "
                          "coordinate by its own history): use engine 'gram' or 'auto'")
    if "l2" in config.optimizer.grid:
        raise ConfigError("train.engine = 'eigen' needs one l2 for every run (its basis "
                          "depends on l2), and optimizer.grid.l2 varies it: use engine "
                          "'gram' or 'auto'")


def _options(config: Config, num_steps: int) -> dict[str, Any]:
    """Keyword arguments shared by ``grid_sweep`` and ``fit`` for this config."""
    train, optimizer = config.train, config.optimizer
    minibatched = train.batch_size is not None
    return dict(
        num_steps=None if minibatched else train.num_steps,
        batch_size=train.batch_size,
        epochs=train.epochs,
        optimizer=optimizer.name,
        schedule=optimizer.schedule,
        schedule_steps=dict(optimizer.schedule_steps),
        hyperparameters=dict(optimizer.hyperparameters),
        l2=train.l2,
        init_scale=0.0 if config.model.zeros else config.model.init_scale,
        tol=train.tol,
        patience=train.patience,
        divergence_factor=train.divergence_factor,
        stop_at_convergence=train.stop_at_convergence,
        reference=False,
        progress_every=max(1, num_steps // 100),
        engine=train.engine,  # what cannot run was refused by check_supported
        log_every=train.log_every,
    )


def _axis_values(values: Sequence, name: str) -> np.ndarray:
    return np.asarray(values, np.int64 if name in _INTEGER_AXES else np.float64)


def run_chunk(plan: Plan, index: int,
              on_progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Runs chunk ``index``: every grid point of its learning rates, as one ``grid_sweep``.

    The last chunk is padded to ``chunk_size`` learning rates with copies of its last one
    (dropped from the result), so every chunk is the same compiled program.

    Returns:
      NumPy arrays, the grid's axes first (k learning rates, then ``plan.grid``'s sizes
      G..., then S seeds): ``learning_rates`` (k,), ``losses`` (k, G..., S, T),
      ``final_loss``, ``converged_step``, ``diverged``, ``diverged_step`` (k, G..., S),
      ``snapshot_weight`` (k, G..., S, P, d) and ``snapshot_bias`` (k, G..., S, P) in the
      units the runs train on, ``snapshot_steps`` (P,), ``loss_steps`` (T,), for mini-batch
      runs ``epoch_losses`` (k, G..., S, epochs + 1), ``engine`` (the engine that ran), and
      ``seconds`` (2,): total and compiling.
    """
    rates = plan.chunk_rates(index)
    padded = rates + (rates[-1],) * (plan.chunk_size - len(rates))
    grid = {"learning_rate": padded, **plan.grid, "seed": plan.seeds}
    with timed() as timing, progress.listening(on_progress or (lambda _: None)):
        result = grid_sweep(*plan.train_data, grid=grid,
                            snapshot_steps=plan.config.train.snapshot_steps,
                            **_options(plan.config, plan.num_steps))
        per_run = {name: getattr(result, name) for name in (
            "losses", "final_loss", "converged_step", "diverged", "diverged_step",
            "epoch_losses")}
        per_run.update(snapshot_weight=result.snapshots.weight,
                       snapshot_bias=result.snapshots.bias)
        per_run = jax.device_get(per_run)
        shared = jax.device_get({"snapshot_steps": result.snapshot_steps,
                                 "loss_steps": result.loss_steps})
    k = len(rates)
    chunk = {"learning_rates": np.asarray(rates, np.float64)}
    for name, value in per_run.items():
        if value is not None:
            chunk[name] = np.asarray(value)[:k]
    chunk.update(snapshot_steps=np.asarray(shared["snapshot_steps"]),
                 loss_steps=np.asarray(shared["loss_steps"]),
                 engine=np.asarray(result.engine),
                 seconds=np.asarray([timing.total, timing.compile], np.float64))
    return chunk


def assemble(plan: Plan, chunks: Sequence[dict[str, np.ndarray]]) -> RunRecord:
    """The results record of a run from its chunks, in order (see ``run_chunk``).

    Raises:
      ConfigError: if a chunk does not belong to this run (other learning rates or shapes).
    """
    if len(chunks) != plan.num_chunks:
        raise ConfigError(f"{len(chunks)} chunks given, the run has {plan.num_chunks}")
    fields = _CHUNK_FIELDS + (("epoch_losses",) if plan.config.train.batch_size else ())
    depth = len(plan.axes)
    for index, chunk in enumerate(chunks):
        rates = np.asarray(plan.chunk_rates(index), np.float64)
        shape = plan.grid_shape(rates.size)
        missing = [name for name in (*fields, "learning_rates", "snapshot_steps")
                   if name not in chunk]
        if missing or not np.array_equal(chunk["learning_rates"], rates) or any(
                chunk[name].shape[:depth] != shape for name in fields):
            raise ConfigError(f"saved chunk {index} does not belong to this run (other "
                              "learning rates, grid, seeds or fields): start again with "
                              "--overwrite")
    grid = {name: np.concatenate([chunk[name] for chunk in chunks]) for name in fields}
    grid["snapshot_steps"] = chunks[0]["snapshot_steps"]
    grid["loss_steps"] = chunks[0].get("loss_steps", np.arange(plan.num_steps))
    engine = chunks[0].get("engine")
    grid["engine"] = None if engine is None else str(engine)
    seconds = np.sum([chunk.get("seconds", np.zeros(2)) for chunk in chunks], axis=0)
    timing = Timing(total=float(seconds[0]), compile=float(seconds[1]))
    best = best_index(grid["final_loss"], grid["diverged"])
    best_path = None
    if best is not None:
        point = grid_point(plan, best)
        options = _options(plan.config, plan.num_steps)
        hyper = {**options.pop("hyperparameters"),
                 **{k: v for k, v in point.items() if k in plan.grid and k not in (
                     "l2", "batch_seed")}}
        extra = {"batch_seed": point["batch_seed"]} if "batch_seed" in point else {}
        options["l2"] = point.get("l2", options["l2"])
        best_path = fit(*plan.train_data, learning_rate=point["learning_rate"],
                        seed=point["seed"], hyperparameters=hyper,
                        snapshot_steps=path_steps(plan.num_steps), **extra, **options)
    return _record(plan, grid, best, best_path, timing)


def grid_point(plan: Plan, index: Sequence[int]) -> dict[str, float | int]:
    """The hyperparameter values of the run at grid ``index``, by axis name.

    Example:
      >>> from jaxgd.config import parse
      >>> plan = prepare(parse("[data]\\ndataset = 'mlcc_cars'\\n[optimizer]\\n"
      ...                      "learning_rates = [0.01, 0.02]\\n"))
      >>> grid_point(plan, (1, 0))
      {'learning_rate': 0.02, 'seed': 0}
    """
    values = [plan.config.learning_rates, *plan.grid.values(), plan.seeds]
    point = {}
    for axis, options, i in zip(plan.axes, values, index, strict=True):
        value = options[int(i)]
        point[axis] = int(value) if axis in _INTEGER_AXES else float(value)
    return point


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


def best_index(final_loss: np.ndarray, diverged: np.ndarray) -> tuple[int, ...] | None:
    """The grid index of the lowest final loss among the runs that neither diverged nor
    ended on a NaN or infinite loss; None if there is no such run.

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


def _moment_losses(params: LinearParams, stats: SufficientStats) -> np.ndarray:
    """MSE of a batch of parameters (..., d) from the data's moments, float64, NaN-safe."""
    w, b = params.weight, params.bias
    with np.errstate(all="ignore"):
        offset = b + w @ np.asarray(stats.mean_x) - float(stats.mean_y)
        quadratic = np.einsum("...i,ij,...j->...", w, np.asarray(stats.cov_xx), w)
        return (quadratic - 2.0 * (w @ np.asarray(stats.cov_xy)) + float(stats.var_y)
                + offset * offset)


def _optima(plan: Plan) -> list[tuple[float, LeastSquares]]:
    """(l2, the least-squares or ridge optimum in original units) for each l2 of the run.

    The optimum is that of the objective the runs descend: with standardized features the
    ridge penalty acts on the standardized weights, so the problem is solved there and the
    parameters mapped back; its loss is the objective's value (MSE + l2·‖weight‖²).
    """
    optima = []
    for l2 in plan.l2_values:
        optimum = solve(plan.X, plan.y, l2=l2)
        params = _to_original(LinearParams(np.asarray(optimum.params.weight),
                                           np.asarray(optimum.params.bias)), plan.scaler)
        optima.append((float(l2), LeastSquares(params, float(optimum.loss))))
    return optima


def _record(plan: Plan, grid, best, best_path, timing) -> RunRecord:
    config, dataset, scaler, limits = plan.config, plan.dataset, plan.scaler, plan.limits
    optima = _optima(plan)
    l2_of_best = 0
    if "l2" in plan.grid and best is not None:
        l2_of_best = best[plan.axes.index("l2")]
    optimum = optima[l2_of_best][1]
    snapshots = _to_original(LinearParams(grid["snapshot_weight"], grid["snapshot_bias"]),
                             scaler)
    values = [config.learning_rates, *plan.grid.values(), plan.seeds]
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
        "best_index": np.asarray(best if best is not None else (-1,) * len(plan.axes),
                                 np.int64),
        "snapshot_steps": np.asarray(grid["snapshot_steps"]),
        "snapshot_weight": snapshots.weight,
        "snapshot_bias": snapshots.bias,
        "snapshot_loss": (_moment_losses(snapshots, plan.stats) if plan.streamed
                          else _losses_of(snapshots, dataset.X, dataset.y)),
        "optimum_weight": optimum.params.weight,
        "optimum_bias": np.asarray(optimum.params.bias),
        "optimal_loss": np.asarray(optimum.loss),
        **_plot_rows(dataset.X, dataset.y, config.output.max_plot_rows),
    }
    if "epoch_losses" in grid:
        history["epoch_losses"] = grid["epoch_losses"]
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
        "max_learning_rate": limits.max_learning_rate if config.optimizer.name == "sgd" else None,
        "optimizer": config.optimizer.name,
    }
    summary = _summary(plan, history, best, optima, timing, meta, grid.get("engine"))
    summary["chunks"] = {"learning_rates_per_chunk": plan.chunk_size, "count": plan.num_chunks}
    summary["warnings"] = list(plan.warnings)
    return RunRecord(history=history, summary=summary, meta=meta)


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


def _summary(plan: Plan, history, best, optima, timing, meta, engine) -> dict[str, Any]:
    config, dataset, limits = plan.config, plan.dataset, plan.limits
    axes = plan.axes
    shape = history["final_loss"].shape
    runs = []
    for index in np.ndindex(*shape):
        runs.append({
            **grid_point(plan, index),
            "final_loss": _finite_or_none(history["final_loss"][index]),
            "converged_step": int(history["converged_step"][index]),
            "diverged": bool(history["diverged"][index]),
            "diverged_step": int(history["diverged_step"][index]),
        })
    names = meta["feature_names"]
    best_run = None
    if best is not None:
        final = history["path_weight"][-1], float(history["path_bias"][-1])
        l2_index = best[axes.index("l2")] if "l2" in plan.grid else 0
        best_run = {
            **runs[int(np.ravel_multi_index(best, shape))],
            "weight": dict(zip(names, map(float, final[0]), strict=True)),
            "bias": final[1],
            "gap_to_optimum": float(history["final_loss"][best]) - optima[l2_index][1].loss,
        }
    least_squares = [_least_squares(names, l2, optimum) for l2, optimum in optima]
    train = config.train
    return {
        "config": config.to_dict(),
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
        "training": {
            "num_steps": plan.num_steps,
            "batch_size": train.batch_size,
            "epochs": train.epochs,
            "steps_per_epoch": None if train.batch_size is None else (
                minibatch.steps_per_epoch(plan.n_rows, train.batch_size)),
            "log_every": train.log_every,
            "history_length": int(history["losses"].shape[-1]),
            "engine": engine,
        },
        "runs": runs,
        "best_run": best_run,
        "least_squares": least_squares if "l2" in plan.grid else least_squares[0],
        "stability": {
            "max_learning_rate": limits.max_learning_rate,
            "fastest_learning_rate": limits.fastest_learning_rate,
            "condition_number": _finite_or_none(limits.condition_number),
            "features": "standardized" if config.data.standardize else "as given",
            "l2": max(plan.l2_values),
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
