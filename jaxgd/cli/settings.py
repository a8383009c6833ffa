"""What a config asks of the library: the keyword arguments of its calls, in one place.

``api_arguments`` turns a checked config into the keywords of a library call (from
``library_options``, shared by ``grid_sweep`` and ``fit``, ``segment_options``, the early exit,
and ``holdout_options``, the held-out rows); ``reworded`` turns the library's refusal of an
argument into the config key's (``CONFIG_KEYS``); ``grid_point`` names the hyperparameters of a
run by its grid index. When the library's keywords are re-spelled, they are re-spelled here.

This module reads a config's attributes and imports neither the config nor the plan (their
types are for the reader): every module of the command line may import it.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from jaxgd.cli.toml_text import ConfigError
from jaxgd.core.optimizers import OPTIMIZERS
from jaxgd.theory.stability import has_exact_limit

if TYPE_CHECKING:
    from jaxgd.cli.config import Config
    from jaxgd.cli.plan import Plan

#: Grid names whose values are integers (the others are numbers).
INTEGER_AXES = ("seed", "batch_seed", "fold")


def api_arguments(config: Config, num_steps: int, call: str = "grid_sweep") -> dict[str, Any]:
    """The keyword arguments of the library's ``call`` for this config: "grid_sweep" (a
    chunk of ``jaxgd run``), "refine" (its best drawn points again, run whole: no early
    exit), "fit" (the best run's path, given its own point) or "lr_range".

    Example:
      >>> from jaxgd.cli.config import parse
      >>> config = parse("[optimizer]\\nlearning_rate = 0.1\\n[train]\\nnum_steps = 50\\n")
      >>> lr_range = api_arguments(config, 50, "lr_range")
      >>> api_arguments(config, 50)["num_steps"], "reference" in lr_range
      (50, False)
    """
    arguments = library_options(config, num_steps)
    if call == "lr_range":  # it always computes its reference, and shows no progress
        del arguments["reference"], arguments["progress_every"]
    elif call == "refine":
        arguments.update(holdout_options(config))
    elif call == "grid_sweep":
        arguments.update(segment_options(config), **holdout_options(config),
                         snapshot_steps=config.train.snapshot_steps)
        if getattr(config.optimizer, "track_sharpness", False):
            arguments["track_sharpness"] = True
    return arguments


#: The config key of each library argument, for the library's messages (``reworded``).
CONFIG_KEYS = {
    "num_steps": "train.num_steps", "batch_size": "train.batch_size", "epochs": "train.epochs",
    "optimizer": "optimizer.name", "schedule": "optimizer.schedule",
    "schedule_steps": "optimizer.schedule_steps",
    "hyperparameters": "optimizer.hyperparameters", "l2": "train.l2",
    "init_scale": "model.init_scale", "tol": "train.tol", "patience": "train.patience",
    "divergence_factor": "train.divergence_factor",
    "stop_at_convergence": "train.stop_at_convergence", "engine": "train.engine",
    "log_every": "train.log_every", "segment_steps": "train.segment_steps",
    "pruning": "train.pruning", "halving_rate": "train.halving_rate",
    "min_steps": "train.min_steps", "snapshot_steps": "train.snapshot_steps",
    "validation_fraction": "data.validation_fraction", "k_folds": "data.k_folds",
    "validation_seed": "data.validation_seed", "track_sharpness": "optimizer.track_sharpness",
    "learning_rate": "optimizer.learning_rate", "learning_rates": "optimizer.learning_rates",
    "seed": "model.seeds", "grid": "optimizer.grid", "sample": "optimizer.sample",
    "num_samples": "optimizer.num_samples", "sampler": "optimizer.sampler",
    "sample_seed": "optimizer.sample_seed",
    "refine": "optimizer.refine",
}


#: The library's keyword that holds each settings value (``jaxgd.api.settings``).
_KEYWORD_OF = {"Stopping": "stopping", "Halving": "stopping", "Record": "record",
               "MiniBatches": "batches", "Placement": "placement", "Holdout": "validation",
               "KFolds": "validation", "Sample": "sample", "Optimizer": "optimizer"}


def _flat_name(kind: str | None, field: str) -> str:
    """The flat argument a settings value's field stands for ("Record", "log_every" ->
    "log_every"; "MiniBatches", "seed" -> "batch_seed"), as ``jaxgd.api.settings.MOVED``
    maps them; a plain argument name as it is."""
    if kind is None:
        return field
    from jaxgd.api.settings import MOVED  # the library's one table of the spellings

    keyword = _KEYWORD_OF.get(kind)
    field = f"pruning.{field}" if kind == "Halving" else field
    return next((old for old, (to, part) in MOVED.items() if (to, part) == (keyword, field)),
                field)


#: The config key of each grid axis the command line makes from other keys.
_AXIS_KEYS = {"learning_rate": "optimizer.learning_rates", "seed": "model.seeds"}


def reworded(error: Exception) -> ConfigError:
    """A library error in the config's words: the library names the argument first
    ("num_steps must be ..."), the config key replaces it ("train.num_steps must be ..."),
    and so it does for the arguments the message names in passing (``in_config_words``).

    Example:
      >>> print(reworded(ValueError("log_every must be >= 1, got 0")))
      train.log_every must be >= 1, got 0
      >>> print(reworded(ValueError("segment_steps needs stop_at_convergence=True")))
      train.segment_steps needs train.stop_at_convergence=True
      >>> print(reworded(ValueError("grid['b1'] is empty")))
      optimizer.grid.b1 is empty
    """
    message = str(error)
    axis = re.match(r"grid\['(\w+)'\]", message)  # a grid axis: the config key it came from
    if axis:
        key = _AXIS_KEYS.get(axis[1], f"optimizer.grid.{axis[1]}")
        return ConfigError(f"{key}{in_config_words(message[axis.end():])}")
    name = re.match(r"(?:([A-Z][A-Za-z]*)\.)?([a-z_0-9]+)", message)
    key = CONFIG_KEYS.get(_flat_name(*name.groups())) if name else None
    if key:
        return ConfigError(f"{key}{in_config_words(message[name.end():])}")
    return ConfigError(f"the library refused this config: {in_config_words(message)}")


#: An argument named in passing: a name with an underscore, or one given a value ("engine=");
#: not an attribute, an index or a call ("x.num_steps", "refine['top']", "check_space("), nor
#: a count the run derived ("num_steps=240" of a mini-batch run: epochs × batches).
_IN_PASSING = re.compile(r"(?<![\w.'\"\[])([a-z]+_[a-z_0-9]+|[a-z]+(?==))(?![\w(]|=\d)")


def in_config_words(text: str) -> str:
    """``text`` with each library argument it names replaced by its config key.

    Example:
      >>> in_config_words("early exit (stop_at_convergence, pruning); use engine='gram'")
      "early exit (train.stop_at_convergence, pruning); use train.engine='gram'"
    """
    return _IN_PASSING.sub(lambda match: match[1] if match[1] in _NOT_IN_PASSING else (
        CONFIG_KEYS.get(match[1], match[1])), text)


#: Names the library also gives its own settings (``refine``'s learning_rate): kept.
_NOT_IN_PASSING = ("learning_rate", "learning_rates")


def library_options(config: Config, num_steps: int) -> dict[str, Any]:
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
        reference=True,  # for the verdicts; its warnings are the plan's (see execute)
        progress_every=0,  # run_chunk asks for reports only when a progress bar shows them
        engine=train.engine,  # what cannot run was refused by plan.check_library
        log_every=train.log_every,
    )


def segment_options(config: Config) -> dict[str, Any]:
    """The sweep's early-exit keywords (``grid_sweep`` only: ``fit`` runs one run whole).

    Example:
      >>> from jaxgd.cli.config import parse
      >>> config = parse("[optimizer]\\nlearning_rate = 0.1\\n[train]\\npruning = 'halving'\\n")
      >>> segment_options(config)["pruning"]
      'halving'
    """
    train = config.train
    return dict(segment_steps=train.segment_steps, pruning=train.pruning,
                halving_rate=train.halving_rate, min_steps=train.min_steps)


def holdout_options(config: Config) -> dict[str, Any]:
    """The held-out keywords of ``grid_sweep`` for this config (``fit`` takes all but
    ``k_folds``).

    Example:
      >>> from jaxgd.cli.config import parse
      >>> holdout_options(parse("[data]\\nvalidation_fraction = 0.5\\n"
      ...                       "[optimizer]\\nlearning_rate = 0.1\\n"))
      {'validation_fraction': 0.5, 'validation_seed': 0}
    """
    data = config.data
    options = {name: getattr(data, name) for name in ("validation_fraction", "k_folds")
               if getattr(data, name, None) is not None}
    if options:  # the seed of their draw (0 if left out, as in the library)
        seed = getattr(data, "validation_seed", None)
        options["validation_seed"] = 0 if seed is None else seed
    return options


def grid_point(plan: Plan, index: Sequence[int]) -> dict[str, float | int]:
    """The hyperparameter values of the run at grid ``index``, by axis name.

    Example:
      >>> from jaxgd.cli.config import parse
      >>> from jaxgd.cli.plan import prepare
      >>> plan = prepare(parse("[data]\\ndataset = 'mlcc_cars'\\n[optimizer]\\n"
      ...                      "learning_rates = [0.01, 0.02]\\n"))
      >>> grid_point(plan, (1, 0))
      {'learning_rate': 0.02, 'seed': 0}
    """
    point = {}  # an index without the fold (a k-fold point's) names the rest
    for axis, options, i in zip(plan.axes[:len(index)], plan.axis_values[:len(index)], index,
                                strict=True):
        value = options[int(i)]
        point[axis] = int(value) if axis in INTEGER_AXES else float(value)
        if axis == "learning_rate":  # drawn companions vary with it
            point.update({name: float(v[int(i)]) for name, v in plan.sampled.items()})
    return point


def limit_kind(config: Config, grid: dict) -> dict[str, Any]:
    """The optimizer whose stability limit the run has (``jaxgd.stability``): momentum or
    Nesterov where it has an exact one (``has_exact_limit``) with one β; plain gradient
    descent's otherwise."""
    optimizer = config.optimizer
    if (optimizer.name != "sgd" and has_exact_limit(optimizer.name, optimizer.schedule)
            and "momentum" not in grid and "momentum" not in optimizer.sample):
        beta = optimizer.hyperparameters.get("momentum", OPTIMIZERS[optimizer.name]["momentum"])
        return {"optimizer": optimizer.name, "momentum": float(beta)}
    return {}


def limit_label(limits) -> str:
    """How the stability limit is written, e.g. "2/λmax" or "2(1+β)/λmax (β = 0.9)"."""
    beta = f" (β = {limits.momentum:g})" if limits.optimizer != "sgd" else ""
    return limits.limit_name + beta


def drawn_limit_label(label: str, k_folds: int | None) -> str:
    """The figures' label of the limit they draw: with k folds it is the smallest fold's
    (``Plan.fold_limits[Plan.limits_fold]``), not a limit of all the rows, and says so.

    Example:
      >>> drawn_limit_label("2/λmax", 3)
      '2/λmax (smallest of 3 folds)'
    """
    return f"{label} (smallest of {k_folds} folds)" if k_folds else label


@contextlib.contextmanager
def conditioning_said() -> Iterator[None]:
    """The plan prints its own warnings about the features' conditioning (``plan.warnings``,
    in the config's words): the library's copies of them are not repeated."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="the features are", category=RuntimeWarning)
        yield
