"""A checked ``jaxgd run``, ready to go: its data, its grid and its chunks (``prepare``).

A run is a full grid: learning rates, then ``optimizer.grid``'s hyperparameters in order,
then seeds (``Plan.axes``). Every per-run array of the results has these axes first. With
``optimizer.sample`` the learning rates are drawn, and the other drawn hyperparameters
(``Plan.sampled``) vary with them along the first axis, one value per point.

``prepare`` loads and checks the data (rows in memory, or a file streamed into its
sufficient statistics, and for mini-batch SGD read batch by batch; see ``jaxgd.cli.data``),
refuses settings the run cannot honour, and splits the learning rates into chunks of
``chunk_size`` (every other grid point of each learning rate in the same chunk; one chunk
under successive halving, see ``jaxgd.cli.chunking``), each run as one ``grid_sweep`` by
``jaxgd.cli.execute``. ``Plan.fingerprint`` is what a checkpoint
compares before resuming (see ``jaxgd.cli.checkpoint``).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxgd import datasets
from jaxgd.api.grid import check_settings
from jaxgd.cli import chunking
from jaxgd.cli.config import Config, ConfigError
from jaxgd.cli.data import (
    check_stages,
    data_bytes,
    hessian_stage,
    is_streamed,
    load_data,
    load_rows,
    load_stream,
)
from jaxgd.cli.environment import device_info, versions
from jaxgd.cli.settings import (  # those marked noqa: re-exported for the plan's readers
    api_arguments,
    drawn_limit_label,  # noqa: F401
    grid_point,  # noqa: F401
    holdout_options,  # noqa: F401
    limit_kind,
    reworded,
)
from jaxgd.cli.training_rows import (
    fold_limits,
    reported,
    training_mask,
    training_rows,
)
from jaxgd.core import minibatch
from jaxgd.data.scaling import Standardizer
from jaxgd.data.statistics import SufficientStats
from jaxgd.pipeline.options import Options
from jaxgd.pipeline.preparation import CONDITION_WARNING
from jaxgd.results.files import to_json
from jaxgd.theory.stability import Stability, stability
from jaxgd.tuning import refinement, search


@dataclass(frozen=True)
class Plan:
    """A checked run, ready to go: the data, the grid and the chunks.

    Attributes:
      config: the run's config.
      dataset: the data in original units (``data.scale`` applied); streamed data keep no
        rows here (``X`` is ``(0, d)``), only their names and source.
      scaler: the ``Standardizer`` when ``data.standardize``, else None; fitted on the
        rows the runs train on (a split's training rows: ``jaxgd.cli.training_rows``).
      X: the features (standardized when asked), or the streamed data's
        ``SufficientStats`` (then ``y`` is None); with held-out data all rows, of which
        the runs train on ``split``'s.
      seeds: the seeds of every grid point.
      chunk_size: learning rates per chunk (the last chunk may hold fewer).
      limits: ``stability`` of the rows the runs train on, at the largest l2 of the run
        (2/λmax then holds for every run); with k folds the fold whose limit is smallest
        (``fold_limits[limits_fold]``), so it holds for every fold.
      warnings: numerical hazards worth telling the user about before the run.
      y: the targets the runs train on; None for streamed data.
      stats: streamed data's moments in original units; None for data in memory.
      source: streamed data for mini-batch SGD: the file's rows (``data.scale`` applied),
        from which the runs read their batches; None otherwise.
      grid: ``optimizer.grid``: hyperparameter name -> values, the axes between the learning
        rates and the seeds.
      num_steps: updates per run (for mini-batch SGD, epochs × ceil(n / batch_size)).
      fold_limits: each fold's ``limits`` (one entry without k folds).
      limits_fold: the fold whose limits are ``limits``.
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
    fold_limits: tuple[Stability, ...] = ()
    limits_fold: int = 0

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
    def k_folds(self) -> int | None:
        """``data.k_folds``: the folds of a cross-validated run, else None."""
        return getattr(self.config.data, "k_folds", None)

    @property
    def held_out(self) -> bool:
        """Whether the runs have held-out data (a validation fraction or k folds)."""
        return self.k_folds is not None or (
            getattr(self.config.data, "validation_fraction", None) is not None)

    def split(self, fold: int = 0) -> tuple[tuple[Any, Any], dict[str, Any]]:
        """The rows a run trains on and its held-out keywords for ``fit``: ``(X, y)`` and
        none without held-out data; the training rows of the split (drawn again from the
        same seed) or of ``fold``, with the held-out rows as ``validation=``."""
        if not self.held_out:
            return (self.X, self.y), {}
        train = training_mask(self.config, self.n_rows, fold)
        return (self.X[train], self.y[train]), {"validation": (self.X[~train],
                                                               self.y[~train])}

    def stability(self, l2: float, fold: int = 0) -> Stability:
        """``jaxgd.stability`` of the rows the runs of ``fold`` train on, at ``l2``, for the
        run's optimizer (``limit_kind``): the limit each of those runs has."""
        return stability(training_rows(self.X, self.config, fold), l2=l2,
                         **limit_kind(self.config, self.grid))

    @property
    def axes(self) -> tuple[str, ...]:
        """The run's grid axes: learning rate, ``optimizer.grid``'s names, seed (and fold,
        with k folds)."""
        return ("learning_rate", *self.grid, "seed", *(("fold",) if self.k_folds else ()))

    @property
    def axis_values(self) -> list[Sequence]:
        """Each axis's values, in the order of ``axes``."""
        folds = [tuple(range(self.k_folds))] if self.k_folds else []
        return [self.config.learning_rates, *self.grid.values(), self.seeds, *folds]

    def grid_shape(self, num_rates: int | None = None) -> tuple[int, ...]:
        """The grid's shape, with ``num_rates`` learning rates (default: all of them)."""
        rates = self.config.num_rates if num_rates is None else num_rates
        return (rates, *(len(v) for v in self.axis_values[1:]))

    @property
    def sampled(self) -> dict[str, tuple[float, ...]]:
        """Drawn hyperparameters other than the learning rate (``optimizer.sample``): they
        vary with the learning rate along the first axis, one value per point."""
        return {k: v for k, v in self.config.drawn().items() if k != "learning_rate"}

    @property
    def l2_values(self) -> tuple[float, ...]:
        """The run's l2 strengths: the grid's, or the one of ``train.l2``."""
        return tuple(self.grid["l2"]) if "l2" in self.grid else (self.config.train.l2,)

    @property
    def num_chunks(self) -> int:
        return math.ceil(self.config.num_rates / self.chunk_size)

    def chunk_rates(self, index: int) -> tuple[float, ...]:
        """The learning rates of chunk ``index``."""
        if not 0 <= index < self.num_chunks:
            raise IndexError(f"chunk {index} is outside [0, {self.num_chunks})")
        return self.config.learning_rates[index * self.chunk_size:
                                          (index + 1) * self.chunk_size]

    def fingerprint(self) -> dict[str, Any]:
        """What makes the chunks of this run the chunks of this run: the resolved config,
        the data (streamed data: their float64 moments), the software and backend, and the
        chunking (see ``jaxgd.cli.checkpoint``)."""
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


def conditioning_warnings(limits: Stability, standardized: bool,
                          can_standardize: bool = True,
                          rows: int | None = None) -> tuple[str, ...]:
    """A warning when the features make gradient descent crawl, saying what to do.

    ``can_standardize``: False for streamed data, which ``data.standardize`` cannot take.
    ``rows``: how many rows the runs train on (None: not known), to tell fewer rows than
    parameters from redundant columns.

    Example:
      >>> import numpy as np
      >>> X = np.array([[1000.0], [2000.0], [3000.0]])
      >>> print(conditioning_warnings(stability(X), standardized=False)[0][:56])
      the features are badly conditioned (condition number 3.2
    """
    kappa = limits.condition_number
    if rows is not None and rows < limits.eigenvalues.size and not math.isfinite(kappa):
        return (f"the runs train on {rows} rows, fewer than the {limits.eigenvalues.size} "
                "parameters (weights and bias): many weights fit them equally well, so the "
                "least-squares weights are not unique (a ridge penalty, l2 > 0, makes "
                "them unique)",)
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


def _num_steps(config: Config, n_rows: int) -> int:
    """Updates per run: ``train.num_steps``, or epochs × ceil(n / batch_size)."""
    train = config.train
    if train.batch_size is None:
        return train.num_steps
    return train.epochs * minibatch.steps_per_epoch(n_rows, train.batch_size)


def prepare(config: Config, chunk_size: int | None = None) -> Plan:
    """Loads and checks the config's data and plans the chunks; nothing heavy runs yet.

    Args:
      config: the run.
      chunk_size: learning rates per chunk; None picks the default (all of them with
        ``train.pruning``; ``jaxgd.cli.chunking``).

    Raises:
      ConfigError: for data that cannot be loaded or used, settings the run cannot honour,
        a chunk size below 1 (or below all the learning rates, with ``train.pruning``), or
        results too large for this machine's memory.
    """
    check_supported(config)
    source, scaler = None, None
    if is_streamed(config):
        dataset, stats = load_stream(config)
        X, y, n_rows = stats, None, int(stats.n)
        if config.train.batch_size is not None:  # batches are read from the file
            source = load_rows(config)
    else:
        dataset, stats = load_data(config), None
        X, y, n_rows = dataset.X, dataset.y, dataset.X.shape[0]
    grid = config.grid
    num_steps = _num_steps(config, n_rows)
    seeds = tuple(config.model.seeds or (config.model.seed,))
    check_library(config, source if source is not None else X, grid, seeds, num_steps,
                  n_rows)
    if config.data.standardize:
        # Fitted on the rows the runs train on: held-out rows must not shape their inputs.
        scaler = Standardizer.fit(training_rows(X, config))
        X = scaler.transform(X)
    num_rates = config.num_rates  # counted, not drawn: the checks below come first
    per_rate = math.prod(len(v) for v in grid.values()) * len(seeds) * (
        getattr(config.data, "k_folds", None) or 1)
    chunk_size = chunking.chunk_size(config, chunk_size, num_rates, per_rate)
    d = len(dataset.feature_names)
    others = "".join(f" × {len(v)} {name}" for name, v in grid.items())
    check_stages(memory_stages(config, n_rows, d, num_steps, num_rates * per_rate,
                               chunk_size * per_rate, stats is not None,
                               f"{num_rates} learning rates{others} × {len(seeds)} seeds × "
                               f"{num_steps} steps"))
    l2_values = tuple(grid["l2"]) if "l2" in grid else (config.train.l2,)
    limits = fold_limits(X, config, max(l2_values), limit_kind(config, grid))
    weakest = limits if min(l2_values) == max(l2_values) else fold_limits(
        X, config, min(l2_values), {})
    worst = int(np.argmax([limit.condition_number for limit in weakest]))
    rows = None if stats is not None else int(training_rows(X, config, worst).shape[0])
    warnings = conditioning_warnings(weakest[worst], config.data.standardize,
                                     can_standardize=stats is None, rows=rows)
    fold = reported(limits)
    return Plan(config=config, dataset=dataset, scaler=scaler, X=X, y=y, seeds=seeds,
                chunk_size=chunk_size, limits=limits[fold], warnings=warnings, stats=stats,
                grid=grid, num_steps=num_steps, source=source, fold_limits=limits,
                limits_fold=fold)


def check_library(config: Config, data: Any, grid: dict[str, tuple], seeds: tuple[int, ...],
                  num_steps: int, n_rows: int) -> None:
    """The library's own refusals of the run's settings on its data (their kind and size:
    ``jaxgd.api.grid.check_settings``), in the config's words, before anything is written
    or drawn: a sample's ends stand for its points, which lie between them."""
    options = Options.of(api_arguments(config, num_steps))
    sample = config.optimizer.sample
    axes = {**({} if sample else {"learning_rate": config.learning_rates}), **grid,
            "seed": seeds}
    ends = {name: np.asarray(space[1:], np.float64) for name, space in sample.items()}
    try:
        check_settings(data, options, axes, ends or None, refine_plan(config), n_rows)
    except (TypeError, ValueError) as error:
        raise reworded(error) from None


def refine_plan(config: Config) -> refinement.Plan | None:
    """``optimizer.refine`` checked by the library against the drawn ranges (None without
    it).

    Raises:
      TypeError, ValueError: the library's refusal, naming the setting.
    """
    refine, sample = config.optimizer.refine, config.optimizer.sample
    if not refine:
        return None
    return refinement.make_plan(refine, search.check_space(sample) if sample else None)


#: Copies of the whole history alive at once after the last chunk (measured, issue #14):
#: the chunks read back, their concatenation, the record written from it.
HISTORY_COPIES = 3
#: Bytes per plotted loss when figures are drawn (measured): matplotlib holds every run's
#: curve as float64 x and y and a float64 path.
FIGURE_BYTES_PER_POINT = 32
#: Working state per run on the device beside its history: weight, bias, gradient and the
#: optimizer's moments, in units of d + 1 numbers.
STATE_VECTORS = 6


def memory_stages(config: Config, n_rows: int, d: int, num_steps: int, runs: int,
                  chunk_runs: int, streamed: bool, grid: str) -> list[tuple[str, int]]:
    """(what, peak bytes) of each stage of a run, for ``check_stages``: the data (and their
    copies), the Hessian, one compiled chunk, and assembling and writing the results.

    Example:
      >>> from jaxgd.cli.config import parse
      >>> config = parse("[data]\\ndataset = 'mlcc_cars'\\n[optimizer]\\nlearning_rate = 0.1\\n")
      >>> stages = memory_stages(config, 10**6, 100, 10**4, 400, 400, False, "400 runs")
      >>> for what, needed in stages:
      ...     print(f"{needed / 2**30:4.1f} GiB:", *what.split()[:4])
       3.0 GiB: 1000000 rows × 100
       0.0 GiB: the number of features
       1.9 GiB: one chunk of 400
       1.7 GiB: the history of 400
    """
    train = config.train
    itemsize = jnp.dtype(jnp.result_type(float)).itemsize
    logs = -(-num_steps // train.log_every) + (train.epochs or 0) + 1
    snapshots = len(train.snapshot_steps or ()) + 3
    per_run = (logs + snapshots * (d + 2) + STATE_VECTORS * (d + 1)) * itemsize
    resident = 0 if streamed else n_rows * (d + 1) * 8 * 2  # the rows, as loaded and trained on
    history = runs * (logs + snapshots * (d + 2)) * itemsize
    figures = runs * logs * FIGURE_BYTES_PER_POINT if config.output.figures else 0
    key = "the number of features" if streamed or config.data.dataset != "synthetic" else (
        "data.n_features")
    return [
        (f"{n_rows} rows × {d} features", 0 if streamed else data_bytes(n_rows, d)),
        hessian_stage(d, key),
        (f"one chunk of {chunk_runs} runs of {grid}",
         resident + 2 * chunk_runs * per_run + n_rows * (d + 1) * itemsize * (not streamed)),
        (f"the history of {grid} (assembled, written{' and drawn' if figures else ''})",
         resident + HISTORY_COPIES * history + figures),
    ]


def check_supported(config: Config) -> None:
    """Refuses data keys that ``jaxgd run`` cannot honour together (what the library
    refuses of the settings, ``check_library``, it refuses once the data are loaded).

    Streamed data (``data.dataset = "npy"``, or ``"csv"`` with ``data.stream = true``) are
    read into their moments: standardizing, which needs all the rows in memory, is refused
    with them. A .npy file's columns are numbered, not named.

    Raises:
      ConfigError: naming the keys.
    """
    data = config.data
    dataset = data.dataset
    if not is_streamed(config) and getattr(data, "block_rows",
                                           datasets.DEFAULT_BLOCK_ROWS) != (
            datasets.DEFAULT_BLOCK_ROWS):
        raise ConfigError("data.block_rows is only for streamed data (data.dataset = 'npy', "
                          "or 'csv' with data.stream = true)")
    if dataset != "npy" and getattr(data, "target_column", -1) != -1:
        raise ConfigError("data.target_column is only for data.dataset = 'npy': name the "
                          "target with data.target")
    if dataset == "npy" and (getattr(data, "features", None) is not None
                             or getattr(data, "target", None) is not None):
        raise ConfigError("a .npy file's columns have no names: leave data.features and "
                          "data.target out, and give the target's column index as "
                          "data.target_column (default -1, the last); the other columns "
                          "are the features")
    if getattr(data, "k_folds", None) is not None and data.standardize:
        # One mean and scale per fold would need one standardized copy of the rows per
        # fold; one from all rows would let each fold's held-out rows into its training.
        raise ConfigError("data.standardize with data.k_folds: each fold trains on other "
                          "rows and would need its own mean and scale (fitted on all rows, "
                          "every fold's held-out rows would leak into its training); use "
                          "data.validation_fraction (standardized on its training rows), or "
                          "rescale columns with data.scale")
    if is_streamed(config) and getattr(data, "standardize", False):
        why = ("data.dataset = 'npy'" if dataset == "npy" else "data.stream = true") + (
            " reads the file only into its moments, never keeping the rows")
        raise ConfigError(f"data.standardize = true needs the rows in memory, and {why}: "
                          "leave data.standardize out (rescale columns with data.scale "
                          "instead), or drop data.stream for a CSV file that fits in memory")
