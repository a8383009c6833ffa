"""Run configurations: plain data read from TOML, typed and validated before anything runs.

A config has five sections. Every key is optional except where noted; unknown keys, wrong
types and out-of-range values are refused with a ``ConfigError`` that names the key.

    title = "..."                   # shown in the figures
    [data]      dataset, path, features, target, target_column, scale, standardize,
                stream, block_rows, n_samples, n_features, noise, seed,
                validation_fraction, k_folds, validation_seed
    [model]     seed, seeds, init_scale, zeros
    [optimizer] name, learning_rate, learning_rates, schedule, schedule_steps,
                hyperparameters, grid, sample, num_samples, sampler, sample_seed, refine,
                track_sharpness
    [train]     num_steps, batch_size, epochs, l2, engine, log_every, tol, patience,
                divergence_factor, stop_at_convergence, snapshot_steps, segment_steps,
                pruning, halving_rate, min_steps
    [output]    figures, dpi, log_scale, max_plot_rows
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jaxgd.api.settings import Halving, group, options
from jaxgd.cli.results import FIGURES
from jaxgd.cli.settings import INTEGER_AXES, api_arguments, reworded
from jaxgd.cli.toml_text import ConfigError, apply_override, toml
from jaxgd.core import convergence, optimizers
from jaxgd.datasets.stream import DEFAULT_BLOCK_ROWS
from jaxgd.engines import engine
from jaxgd.inputs.validation import check_seed
from jaxgd.pipeline.options import make_config
from jaxgd.pipeline.preparation import fixed_values
from jaxgd.pipeline.problem import grid_axes
from jaxgd.tuning import search, segments

DATASETS = ("auto_mpg", "mlcc_cars", "synthetic", "csv", "npy")
#: The [data] keys that shape ``synthetic`` only (``jaxgd.datasets.synthetic``).
SYNTHETIC_KEYS = ("n_samples", "n_features", "noise", "seed")
OPTIMIZERS = tuple(optimizers.OPTIMIZERS)


@dataclass(frozen=True)
class DataConfig:
    """Which data to fit. ``scale`` multiplies columns, e.g. ``{weight = 0.001}`` for 1000s of
    pounds; ``standardize`` trains on standardized features (results are reported in the
    original units). ``path`` (a CSV or .npy file, relative to the config file; given with
    ``--set``, to the current folder): a CSV needs ``features`` and ``target`` (column
    names); a .npy file holds a 2-D array whose column
    ``target_column`` (default: the last) is the target; ``delimiter`` separates a CSV's
    fields (default ","; e.g. ";" or "\t"). ``stream`` reads a CSV in blocks
    into sufficient statistics (a .npy file always streams): data larger than memory, eigen
    or gram engine, no per-point figures; with ``train.batch_size`` mini-batch SGD reads its
    batches from the file. ``block_rows``: rows per block of a streamed file, the unit of
    reading and of the block-wise shuffle (``jaxgd.pipeline.streaming``). ``n_samples``,
    ``n_features``, ``noise`` and ``seed`` shape ``synthetic``. Held-out data
    (``jaxgd.pipeline.holdout``): ``validation_fraction`` holds out that fraction of the rows, or
    ``k_folds`` runs k-fold cross-validation (one more grid axis, "fold"); the split or
    folds are drawn by a shuffle seeded by ``validation_seed`` (left out: 0). The best run
    is then the one with the lowest held-out loss (with k folds, the mean over the folds)."""

    dataset: str = "auto_mpg"
    path: str | None = None
    features: tuple[str, ...] | None = None
    target: str | None = None
    target_column: int = -1
    delimiter: str = ","
    stream: bool = False
    block_rows: int = DEFAULT_BLOCK_ROWS
    scale: dict[str, float] = field(default_factory=dict)
    standardize: bool = False
    n_samples: int = 200
    n_features: int = 1
    noise: float = 0.5
    seed: int = 0
    validation_fraction: float | None = None
    k_folds: int | None = None
    validation_seed: int | None = None


@dataclass(frozen=True)
class ModelConfig:
    """The starting point: drawn near zero with ``init_scale`` from ``seed`` (or from each of
    ``seeds``, a grid axis), or exactly zero with ``zeros = true``."""

    seed: int = 0
    seeds: tuple[int, ...] | None = None
    init_scale: float = 0.01
    zeros: bool = False


@dataclass(frozen=True)
class OptimizerConfig:
    """The optimizer (``jaxgd.core.optimizers``) and its learning rate, or a list of learning
    rates to sweep; a schedule and its step counts; fixed values for other hyperparameters;
    and ``grid``, a table of hyperparameter name -> values to sweep as a full grid (with the
    learning rates first, then the grid's names in order, then seeds).

    ``sample`` draws the learning rates instead of listing them: a table of name ->
    [kind, low, high] (``jaxgd.tuning.search``), e.g. ``{learning_rate = ["log", 1e-4, 1.0], b1 =
    ["uniform", 0.5, 0.99]}``, ``num_samples`` points from ``sampler`` ("sobol" or
    "random") and ``sample_seed``. It must range over learning_rate (the run's first axis;
    the other drawn names vary along it, point by point); l2 is gridded, not drawn.

    ``refine`` (with ``sample``) moves the best drawn points of the whole sweep downhill by
    hypergradients after it has run: a table of ``jaxgd.tuning.refinement``'s settings, e.g.
    ``{top = 4, steps = 20, learning_rate = 0.1, backtracks = 6}`` (``grid_sweep``'s
    ``refine=``); summary.json's ``refined`` block records the start and end points.

    ``track_sharpness`` (adam) records every run's preconditioned sharpness in the results
    (``jaxgd.cli.sharpness``), where the library would record it (else a ``ConfigError``)."""

    name: str = "sgd"
    learning_rate: float | None = None
    learning_rates: tuple[float, ...] | None = None
    schedule: str = "constant"
    schedule_steps: dict[str, int] = field(default_factory=dict)
    hyperparameters: dict[str, float] = field(default_factory=dict)
    grid: dict[str, tuple[float, ...]] = field(default_factory=dict)
    sample: dict[str, list] = field(default_factory=dict)
    num_samples: int | None = None
    sampler: str = "sobol"
    sample_seed: int = 0
    refine: dict[str, object] = field(default_factory=dict)
    track_sharpness: bool = False


@dataclass(frozen=True)
class TrainConfig:
    """Steps (or ``batch_size``, ``epochs``), ``l2``, engine, ``log_every``, convergence and
    divergence criteria, snapshots, early exit (``pruning``: one chunk, ``jaxgd.cli.chunking``)."""

    num_steps: int = 1000
    batch_size: int | None = None
    epochs: int | None = None
    l2: float = 0.0
    engine: str = "auto"
    log_every: int = 1
    tol: float = convergence.DEFAULT_TOL
    patience: int = convergence.DEFAULT_PATIENCE
    divergence_factor: float = convergence.DEFAULT_DIVERGENCE_FACTOR
    stop_at_convergence: bool = False
    snapshot_steps: tuple[int, ...] | None = None
    segment_steps: int | None = None
    pruning: str | None = None
    halving_rate: int = 3
    min_steps: int | None = None


@dataclass(frozen=True)
class OutputConfig:
    """Which figures to draw (all by default; ``[]`` for none), at what dpi."""

    figures: tuple[str, ...] = FIGURES
    dpi: int = 100
    log_scale: bool = True
    max_plot_rows: int = 5000


@dataclass(frozen=True)
class Config:
    """A whole run: data, model, optimizer, training and outputs."""

    title: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    @property
    def learning_rates(self) -> typing.Sequence[float]:
        """The learning rates to run: the list, the single one, or the drawn ones (a
        read-only float64 array, drawn when first read: ``num_rates`` counts them without
        drawing)."""
        if self.optimizer.sample:
            return self.drawn()["learning_rate"]
        rates = self.optimizer.learning_rates
        return rates if rates is not None else (self.optimizer.learning_rate,)

    @property
    def num_rates(self) -> int:
        """How many learning rates the run has, known without drawing a sample (what the
        size checks count before anything is drawn)."""
        if self.optimizer.sample:
            return self.optimizer.num_samples
        return len(self.learning_rates)

    @property
    def grid(self) -> dict[str, tuple]:
        """``optimizer.grid``, a whole number of an integer axis (``batch_seed``) as an
        integer (TOML lists of numbers hold floats); the library checks the values."""
        return {name: tuple(int(v) if name in INTEGER_AXES and float(v).is_integer() else v
                            for v in values) for name, values in self.optimizer.grid.items()}

    def drawn(self) -> dict[str, np.ndarray]:
        """``optimizer.sample``'s points, name -> read-only float64 values ({} without a
        sample)."""
        optimizer = self.optimizer
        if not optimizer.sample:
            return {}
        return _draw(tuple((k, tuple(v)) for k, v in optimizer.sample.items()),
                     optimizer.num_samples, optimizer.sampler, optimizer.sample_seed)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain JSON-ready data."""
        return dataclasses.asdict(self)

    def recorded(self) -> dict[str, Any]:
        """``to_dict`` as summary.json records it: the data keys that shape only another
        dataset (``SYNTHETIC_KEYS``, but for synthetic data) are left out, since listed
        they read as if they had shaped these data. ``from_dict`` gives them their defaults
        again, and still reads older summaries that list them.

        Example:
          >>> "n_samples" in parse("[optimizer]\\nlearning_rate = 0.1").recorded()["data"]
          False
        """
        raw = self.to_dict()
        if self.data.dataset != "synthetic":
            raw["data"] = {key: value for key, value in raw["data"].items()
                           if key not in SYNTHETIC_KEYS}
        return raw


def load(path: str | Path, overrides: typing.Sequence[str] = ()) -> Config:
    """Reads a TOML config file, applies ``--set key=value`` overrides, and validates it.

    Example:
      >>> import tempfile, os
      >>> with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
      ...     _ = f.write('[optimizer]\\nlearning_rate = 0.1\\n')
      >>> load(f.name, ["train.num_steps=50"]).train.num_steps
      50
      >>> os.remove(f.name)
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from None
    return parse(text, overrides, source=str(path), base_dir=path.parent)


def parse(
    text: str, overrides: typing.Sequence[str] = (), source: str = "config",
    base_dir: Path | None = None,
) -> Config:
    """Parses TOML text into a validated ``Config``; a relative ``data.path`` is resolved
    against ``base_dir``, or against the current folder when an override sets it.

    Example:
      >>> parse('[optimizer]\\nlearning_rates = [0.1, 0.2]').learning_rates
      (0.1, 0.2)
    """
    try:
        raw = toml(text, source)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source} is not valid TOML: {error}") from None
    for override in overrides:
        apply_override(raw, override)
    config = _build(Config, raw, "")
    # A data.path typed in --set is read from the folder it was typed in, like any path on
    # a command line; one written in the config, from the config file's folder.
    typed = any(override.partition("=")[0].strip() == "data.path" for override in overrides)
    config = _resolve_path(config, Path.cwd() if typed else base_dir)
    _check(config)
    return config


def from_dict(raw: dict[str, Any], source: str = "config") -> Config:
    """A validated ``Config`` from plain data, such as a summary.json's resolved config.

    Example:
      >>> c = parse('[optimizer]\\nlearning_rate = 0.1')
      >>> from_dict(c.to_dict()) == c
      True
    """
    config = _build(Config, _upgraded(raw), "")
    _check(config)
    return config


def _upgraded(raw: dict[str, Any]) -> dict[str, Any]:
    """A saved config as today's rules read it: summary.json files written before
    ``data.validation_seed`` could be left out hold its old default, 0, even without held-out
    rows to draw, which is now refused; there it means "left out"."""
    data = raw.get("data")
    if (isinstance(data, dict) and data.get("validation_seed") == 0
            and data.get("validation_fraction") is None and data.get("k_folds") is None):
        data = {key: value for key, value in data.items() if key != "validation_seed"}
        return {**raw, "data": data}
    return raw


def _build(cls, raw: Any, where: str):
    if not isinstance(raw, dict):
        raise ConfigError(f"[{where}] must be a table of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for key, value in raw.items():
        name = f"{where}.{key}" if where else key
        if key not in fields:
            close = difflib.get_close_matches(key, sorted(fields), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown key {name!r}.{hint} Valid keys{' in [' + where + ']' if where else ''}:"
                f" {', '.join(sorted(fields))}"
            )
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            values[key] = _build(kind, value, name)
        else:
            values[key] = _coerce(value, kind, name)
    return cls(**values)


def _coerce(value: Any, kind: Any, name: str) -> Any:
    """Checks ``value`` against a field's type; lists become tuples; ints pass as floats."""
    if isinstance(kind, types.UnionType):
        options = typing.get_args(kind)
        if type(None) in options and (value is None or value == "none"):
            return None  # TOML has no null; --set key=none clears an optional key
        kind = next(option for option in options if option is not type(None))
    origin = typing.get_origin(kind)
    if origin is tuple:
        item = typing.get_args(kind)[0]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{name} must be a list, got {value!r}")
        return tuple(_coerce(v, item, f"{name}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        item = typing.get_args(kind)[1]
        if not isinstance(value, dict):
            raise ConfigError(f"{name} must be a table such as {{weight = 0.001}}, got {value!r}")
        return {k: _coerce(v, item, f"{name}.{k}") for k, v in value.items()}
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{name} must be {_describe(kind)}, got {value!r}")
    return value


def _describe(kind) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            list: "a list such as [\"log\", 1e-4, 1.0]"}.get(
        kind, kind.__name__
    )


def _resolve_path(config: Config, base_dir: Path | None) -> Config:
    path = config.data.path
    if path is None or base_dir is None or Path(path).is_absolute():
        return config
    data = dataclasses.replace(config.data, path=str(base_dir / path))
    return dataclasses.replace(config, data=data)


@functools.lru_cache(maxsize=8)
def _draw(sample, num_samples, sampler, seed) -> dict[str, np.ndarray]:
    """The drawn points, once per search space (``Config.learning_rates`` is read often);
    arrays, not Python floats (2**27 points as floats: 70 s and 5.7 GB), read-only since
    every reader shares them."""
    drawn = search.draw(dict(sample), num_samples, sampler, seed)
    for values in drawn.values():
        values.flags.writeable = False
    return drawn


def _check_sample(optimizer: OptimizerConfig, spec) -> None:
    """``optimizer.sample`` and its companions: which keys go together here; the ranges,
    their ends, the seed and the draw's size by the library (``jaxgd.tuning.search``)."""
    if not optimizer.sample:
        _require(optimizer.num_samples is None, "optimizer.num_samples needs "
                 "optimizer.sample (the ranges to draw from)")
        return
    _require("learning_rate" in optimizer.sample,
             "optimizer.sample must range over learning_rate (the run's first axis); to vary "
             "other hyperparameters alone, list them in optimizer.grid")
    _require(optimizer.learning_rate is None and optimizer.learning_rates is None,
             "optimizer.sample draws the learning rates: leave optimizer.learning_rate and "
             "optimizer.learning_rates out")
    _require("l2" not in optimizer.sample, "optimizer.sample.l2: put l2 values in "
             "optimizer.grid.l2 (each l2 has its own optimum and figures)")
    both = sorted(set(optimizer.sample) & set(optimizer.grid))
    _require(not both, f"optimizer.sample and optimizer.grid both name {', '.join(both)}: "
             "put each hyperparameter in one of them")
    _require(optimizer.num_samples is not None, "optimizer.sample needs optimizer.num_samples "
             "(how many points to draw)")
    _one_of(optimizer.sampler, search.SAMPLERS, "optimizer.sampler")
    try:  # both ends included (refinement can land on them)
        check_seed(optimizer.sample_seed, "sample_seed")
        search.check_ends(search.check_space(optimizer.sample,
                                             spec.hyperparameter_names()), spec)
        # Nothing is drawn while the config is read: only checked that it could be. The
        # runs' own size is checked with the data (jaxgd.cli.plan), still before drawing.
        search.check_size(optimizer.num_samples, len(optimizer.sample), optimizer.sampler)
    except (ValueError, MemoryError) as error:
        raise ConfigError(f"optimizer.{error}") from None


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _one_of(value: str, choices: typing.Sequence[str], name: str) -> None:
    if value not in choices:
        close = difflib.get_close_matches(value, choices, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{name} = {value!r} is not known.{hint} Choose from: "
                          f"{', '.join(choices)}")


def _check(config: Config) -> None:
    """The config's keys: which go together, known names, files, seeds and the outputs;
    then the library's own refusals of its numbers (``_check_library``)."""
    data, model, optimizer, train, output = (
        config.data, config.model, config.optimizer, config.train, config.output)
    _one_of(data.dataset, DATASETS, "data.dataset")
    if data.dataset == "csv":
        _require(data.path is not None, "data.dataset = 'csv' needs data.path (a CSV file)")
        _require(bool(data.features) and data.target is not None,
                 "data.dataset = 'csv' needs data.features and data.target (column names)")
    elif data.dataset == "npy":
        _require(data.path is not None, "data.dataset = 'npy' needs data.path (a .npy file)")
    else:
        _require(data.path is None, "data.path is only for data.dataset = 'csv' or 'npy'")
        _require(not data.stream, "data.stream is only for data.dataset = 'csv' or 'npy'")
    _require(data.block_rows >= 1, f"data.block_rows must be >= 1, got {data.block_rows}")
    _require(data.delimiter == "," or data.dataset == "csv",
             "data.delimiter is only for data.dataset = 'csv'")
    _require(len(data.delimiter) == 1 and data.delimiter not in "\"\r\n",
             f"data.delimiter must be one character (not a quote or line break), got "
             f"{data.delimiter!r}")
    for column, factor in data.scale.items():
        _require(math.isfinite(factor) and factor > 0,
                 f"data.scale.{column} must be finite and > 0, got {factor}")
    _require(data.n_samples >= 1, f"data.n_samples must be >= 1, got {data.n_samples}")
    _require(data.n_features >= 1, f"data.n_features must be >= 1, got {data.n_features}")
    _require(math.isfinite(data.noise) and data.noise >= 0,
             f"data.noise must be finite and >= 0, got {data.noise}")
    _check_holdout(data, train)
    for name, seed in [("data.seed", data.seed), ("model.seed", model.seed),
                       *[(f"model.seeds[{i}]", s) for i, s in enumerate(model.seeds or ())]]:
        _require(is_seed(seed), f"{name} must be in [0, 2**32), got {seed}")
    _require(model.seeds is None or len(model.seeds) > 0, "model.seeds is empty")
    _one_of(optimizer.name, OPTIMIZERS, "optimizer.name")
    _one_of(optimizer.schedule, tuple(optimizers.SCHEDULES), "optimizer.schedule")
    try:
        spec = optimizers.make_spec(optimizer.name, optimizer.schedule,
                                    optimizer.schedule_steps, train.num_steps)
        for name, value in optimizer.hyperparameters.items():
            optimizers.check_hyperparameter(name, value, spec)
    except ValueError as error:
        raise ConfigError(f"optimizer: {error}") from None
    for name, values in optimizer.grid.items():
        _require(name not in ("learning_rate", "seed"),
                 f"optimizer.grid.{name}: give learning rates as optimizer.learning_rates "
                 "and seeds as model.seeds")
        if name not in ("l2", "batch_seed"):
            try:
                optimizers.check_hyperparameter(name, values, spec)
            except ValueError as error:
                raise ConfigError(f"optimizer.grid: {error}") from None
    _check_sample(optimizer, spec)
    _require(bool(optimizer.sample) or (optimizer.learning_rate is None) != (
        optimizer.learning_rates is None),
        "give exactly one of optimizer.learning_rate, optimizer.learning_rates and "
        "optimizer.sample (--set KEY=none takes out one the config file gives)")
    _require((train.batch_size is None) == (train.epochs is None),
             "mini-batch SGD needs both train.batch_size and train.epochs")
    _one_of(train.engine, engine.ENGINES, "train.engine")
    if train.pruning is not None:
        _one_of(train.pruning, ("halving",), "train.pruning")
    for i, figure in enumerate(output.figures):
        _one_of(figure, FIGURES, f"output.figures[{i}]")
    _require(20 <= output.dpi <= 1000, f"output.dpi must be in [20, 1000], got {output.dpi}")
    _require(output.max_plot_rows >= 1,
             f"output.max_plot_rows must be >= 1, got {output.max_plot_rows}")
    _check_library(config)


def _check_library(config: Config) -> None:
    """The library's refusals of the numbers that need no data, in the config's words
    (``settings.reworded``): its settings values (``jaxgd.api.settings``), the run's
    compile-time settings, the values every run shares, the grid's and the early exit's.
    What needs the data (batch_size against the rows, the engine) waits for the plan."""
    optimizer, train = config.optimizer, config.train
    single = optimizer.learning_rate is not None
    grid = {**({} if single or optimizer.sample else {"learning_rate": config.learning_rates}),
            **config.grid, "seed": config.model.seeds or (config.model.seed,)}
    try:
        run = options(group(api_arguments(config, train.num_steps)))
        Halving(train.halving_rate, train.min_steps)  # checked with or without train.pruning
        run = dataclasses.replace(run, learning_rate=optimizer.learning_rate, snapshot_steps=(
            None if train.batch_size else run.snapshot_steps))  # mini-batch steps need rows
        run_config = make_config(run, train.batch_size or 0)
        axes, _ = grid_axes(grid, None, run_config, None)
        fixed_values(run, run_config.optimizer, (*axes, *optimizer.sample))
        segments.make_plan(run, run_config)
    except (TypeError, ValueError) as error:
        raise reworded(error) from None


def _check_holdout(data: DataConfig, train: TrainConfig) -> None:
    """``validation_fraction``, ``k_folds`` and their seed: one at most, with rows in
    memory (their values are the library's: ``jaxgd.Holdout``, ``jaxgd.KFolds``)."""
    fraction, k = data.validation_fraction, data.k_folds
    _require(fraction is None or k is None,
             "give one of data.validation_fraction and data.k_folds, not both")
    # A seed with nothing to draw would be ignored (the library refuses it too).
    _require(data.validation_seed is None or fraction is not None or k is not None,
             "data.validation_seed seeds the draw of data.validation_fraction or "
             "data.k_folds: give one of them, or leave data.validation_seed out")
    if k is not None:
        _require(train.batch_size is None, "data.k_folds is for full-batch runs: leave out "
                 "train.batch_size and train.epochs, or use data.validation_fraction")
    if fraction is not None or k is not None:
        key = "data.validation_fraction" if k is None else "data.k_folds"
        _require(data.dataset != "npy" and not data.stream,
                 f"{key} draws held-out rows, and streamed data keep no rows in memory")


def is_seed(value) -> bool:
    """Whether ``value`` is a seed the library takes (``jaxgd.inputs.validation.check_seed``:
    an integer in [0, 2**32)); a whole number written as a float, as TOML lists may hold, counts.

    Example:
      >>> is_seed(7), is_seed(7.0), is_seed(7.5), is_seed(-1), is_seed(2**32)
      (True, True, False, False, False)
    """
    if isinstance(value, float):
        if not value.is_integer():
            return False
        value = int(value)
    try:
        check_seed(value)
    except (TypeError, ValueError):
        return False
    return True
