"""Settings as values: the options of ``fit``, ``sweep`` and ``grid_sweep`` that travel
together, each a small frozen (hashable, comparable) dataclass checked when it is made.

| keyword        | value                                                          |
| -------------- | -------------------------------------------------------------- |
| ``optimizer``  | a name, an optax factory, or ``Optimizer`` (with its schedule  |
|                | and hyperparameters)                                           |
| ``init``       | a ``LinearParams`` start, or the scale of the random start     |
| ``batches``    | ``MiniBatches``: mini-batch SGD (None: full batch)             |
| ``stopping``   | ``Stopping``: convergence, divergence, early exit, ``Halving`` |
| ``record``     | ``Record``: which losses, snapshots and curvatures are kept    |
| ``validation`` | ``(X_val, y_val)``, ``Holdout`` or ``KFolds`` (sweeps only)    |
| ``placement``  | ``Placement``: chunks, sharding and loop unrolling             |
| ``sample``     | ``Sample``: points drawn from a search space (``grid_sweep``)  |

``options`` turns a public function's keywords into the internal flat ``Options``;
``group`` turns the old flat keyword spellings (and the command line's option dicts) into
these values (see CHANGELOG.md for the table).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxgd.core import convergence
from jaxgd.core.optimizers import check_hyperparameter, make_spec
from jaxgd.core.params import LinearParams
from jaxgd.inputs.validation import (
    check_bool,
    check_choice,
    check_mapping,
    check_non_negative,
    check_positive_int,
    check_seed,
    is_traced,
)
from jaxgd.pipeline import sharding
from jaxgd.pipeline.options import OptimizerFactory, Options
from jaxgd.tuning import search


def _optional_int(value, name: str, minimum: int = 1) -> int | None:
    return None if value is None else check_positive_int(value, name, minimum)


def _set(value, name: str, new) -> None:
    object.__setattr__(value, name, new)  # a frozen dataclass normalizing its own field


@dataclasses.dataclass(frozen=True)
class Halving:
    """Successive halving (pruning): at steps ``min_steps·rate^k`` only the best
    ``1/rate`` of the runs still going (by validation loss when there are held-out data,
    else by training loss) go on; the others are frozen and marked in ``pruned_step``.

    Args:
      rate: η, an integer >= 2.
      min_steps: the first rung (None: ``num_steps // rate³``).

    Example:
      >>> Halving(rate=2, min_steps=16)
      Halving(rate=2, min_steps=16)
    """

    rate: int = 3
    min_steps: int | None = None

    def __post_init__(self):
        _set(self, "rate", check_positive_int(self.rate, "Halving.rate", minimum=2))
        _set(self, "min_steps", _optional_int(self.min_steps, "Halving.min_steps"))


@dataclasses.dataclass(frozen=True)
class Stopping:
    """When a run counts as converged or diverged, and whether it stops early.

    Args:
      tol: the convergence criterion: the largest relative change of the loss per step
        that counts as flat (see ``jaxgd.core.convergence``); may be the caller's tracer.
      patience: how many flat steps in a row make a run converged.
      divergence_factor: a loss above this multiple of the initial loss is diverged (> 1).
      early_exit: stop updating a run once it converged or diverged (the history keeps its
        length); full-batch runs only.
      segment_steps: sweeps only: with ``early_exit`` or ``pruning``, run in segments of
        this many steps, between which finished and pruned runs leave the batch and stop costing
        compute (see ``jaxgd.tuning.segments``); None: 1/32 of num_steps (``min_steps``
        with pruning); ``>= num_steps``: one plain scan.
      pruning: None, or ``Halving(...)`` (the sweeps only). With k folds a grid point's
        folds are ranked by their mean and pruned together.
      reference: compute the least-squares optimum's loss (float64) for ``gap`` and the
        verdicts: the convergence monitor calls a run stalled or diverging by it and by the
        stability limit from the same host pass (O(n·d²)), and a condition number of 1e4 or
        more warns (RuntimeWarning). False: runs are judged by their losses alone.

    Example:
      >>> Stopping(tol=1e-4, early_exit=True).patience == Stopping().patience
      True
    """

    tol: Any = convergence.DEFAULT_TOL
    patience: int = convergence.DEFAULT_PATIENCE
    divergence_factor: Any = convergence.DEFAULT_DIVERGENCE_FACTOR
    early_exit: bool = False
    segment_steps: int | None = None
    pruning: Halving | None = None
    reference: bool = True

    def __post_init__(self):
        check_non_negative(self.tol, "Stopping.tol")
        factor = check_non_negative(self.divergence_factor, "Stopping.divergence_factor")
        if not is_traced(factor) and factor <= 1:
            raise ValueError("Stopping.divergence_factor must be > 1 (a multiple of the "
                             f"initial loss), got {self.divergence_factor!r}")
        _set(self, "patience", check_positive_int(self.patience, "Stopping.patience"))
        check_bool(self.early_exit, "Stopping.early_exit")
        check_bool(self.reference, "Stopping.reference")
        _set(self, "segment_steps", _optional_int(self.segment_steps,
                                                  "Stopping.segment_steps"))
        if self.pruning is not None and not isinstance(self.pruning, Halving):
            raise ValueError("Stopping.pruning must be None or jaxgd.Halving(...), got "
                             f"{self.pruning!r}")


@dataclasses.dataclass(frozen=True)
class MiniBatches:
    """Mini-batch SGD: ``batch_size`` rows per step, ``epochs`` passes over the data (the
    run takes epochs × ceil(n / batch_size) steps; ``batch_size = n`` is full-batch
    gradient descent exactly; see ``jaxgd.core.minibatch``). Leave ``num_steps`` out.

    Args:
      batch_size: rows per step, in [1, n].
      epochs: passes over the data.
      seed: picks the batch order, reshuffled every epoch; None: each run's ``seed`` (for
        a ``RowSource``, 0: one order serves every run). In a sweep, one order for all.

    Example:
      >>> MiniBatches(32, epochs=5)
      MiniBatches(batch_size=32, epochs=5, seed=None)
    """

    batch_size: int
    epochs: int
    seed: int | None = None

    def __post_init__(self):
        _set(self, "batch_size", check_positive_int(self.batch_size, "MiniBatches.batch_size"))
        _set(self, "epochs", check_positive_int(self.epochs, "MiniBatches.epochs"))
        if self.seed is not None:
            _set(self, "seed", check_seed(self.seed, "MiniBatches.seed"))


@dataclasses.dataclass(frozen=True)
class Record:
    """What a run keeps besides its final state.

    Args:
      log_every: keep every k-th loss in the history (steps 0, k, 2k, ...).
      snapshot_steps: steps whose parameters to keep; None: the beginning, the middle on a
        log scale (√num_steps) and the end.
      track_sharpness: Adam only: record its preconditioned sharpness η·λmax(P⁻¹H) at every
        logged step in ``observed`` (see ``jaxgd.theory.sharpness``).
      progress_every: report progress every this many steps (see ``jaxgd.core.progress``);
        0: never.

    Example:
      >>> Record(log_every=10, snapshot_steps=[0, 50]).snapshot_steps
      (0, 50)
    """

    log_every: int = 1
    snapshot_steps: Sequence[int] | None = None
    track_sharpness: bool = False
    progress_every: int = 0

    def __post_init__(self):
        _set(self, "log_every", check_positive_int(self.log_every, "Record.log_every"))
        steps = self.snapshot_steps  # checked against num_steps when a run is made
        if isinstance(steps, list | tuple) or getattr(steps, "ndim", None) == 1:
            _set(self, "snapshot_steps", tuple(steps))  # hashable
        check_bool(self.track_sharpness, "Record.track_sharpness")
        _set(self, "progress_every", check_positive_int(
            self.progress_every, "Record.progress_every", minimum=0))


@dataclasses.dataclass(frozen=True)
class Holdout:
    """Held-out rows drawn from the data: this fraction of them, by a shuffle seeded by
    ``seed`` (not by the runs' seed; see ``jaxgd.pipeline.holdout``).

    Args:
      fraction: the share of the rows held out, in (0, 1).
      seed: the shuffle's seed.

    Example:
      >>> Holdout(0.2)
      Holdout(fraction=0.2, seed=0)
    """

    fraction: float
    seed: int = 0

    def __post_init__(self):
        fraction = self.fraction
        if isinstance(fraction, bool) or not isinstance(fraction, int | float | np.floating) \
                or not 0.0 < float(fraction) < 1.0:
            raise ValueError(f"Holdout.fraction must be a number in (0, 1), got {fraction!r}")
        _set(self, "seed", check_seed(self.seed, "Holdout.seed"))


@dataclasses.dataclass(frozen=True)
class KFolds:
    """k-fold cross-validation (sweeps only): the rows are dealt to k folds by a shuffle
    seeded by ``seed``, and every grid point runs once per fold, on one more axis, "fold",
    last; each run's validation loss is its fold's (see ``jaxgd.pipeline.holdout``).
    Full-batch runs on in-memory rows only.

    Args:
      k: the number of folds, >= 2.
      seed: the shuffle's seed (fixed, so the caller's ``jax.grad`` sees the same folds).

    Example:
      >>> KFolds(5) == KFolds(k=5, seed=0)
      True
    """

    k: int
    seed: int = 0

    def __post_init__(self):
        _set(self, "k", check_positive_int(self.k, "KFolds.k", minimum=2))
        _set(self, "seed", check_seed(self.seed, "KFolds.seed"))


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where and how the runs execute: speed settings that never change a number.

    Args:
      chunk_size: most runs per compiled call (None: sized from the device's free memory,
        ``jaxgd.pipeline.sharding.auto_chunk_size``); a chunked grid's results are NumPy
        arrays gathered on the host. Sweeps only.
      sharding: "runs" spreads the runs over every device, "rows" the rows of X (direct
        engine, large n), "none" keeps one device. Sweeps only.
      unroll: steps per iteration of the compiled loop (None: the backend's default,
        ``jaxgd.core.descent.default_unroll``).

    Example:
      >>> Placement(chunk_size=256, sharding="none")
      Placement(chunk_size=256, sharding='none', unroll=None)
    """

    chunk_size: int | None = None
    sharding: str = "runs"
    unroll: int | None = None

    def __post_init__(self):
        _set(self, "chunk_size", _optional_int(self.chunk_size, "Placement.chunk_size"))
        check_choice(self.sharding, "Placement.sharding", sharding.MODES)
        _set(self, "unroll", _optional_int(self.unroll, "Placement.unroll"))


@dataclasses.dataclass(frozen=True, init=False)
class Optimizer:
    """An optimizer with its learning-rate schedule and fixed hyperparameters.

    Args:
      name: a name from ``jaxgd.core.optimizers.OPTIMIZERS`` ("sgd", "momentum",
        "nesterov", "adam", "adamw", "rmsprop", "adagrad"), or a function that builds an
        optax optimizer from a learning rate (``optax.adam``: pass the same object each
        time to avoid recompiling).
      schedule: "constant", "exponential_decay", "cosine_decay" or "warmup_cosine".
      schedule_steps: the schedule's step counts, e.g. ``{"decay_steps": 500}`` (each
        defaults to num_steps; see ``jaxgd.core.optimizers``).
      **hyperparameters: the optimizer's and schedule's other hyperparameters, e.g.
        ``momentum=0.8``; the defaults are in ``jaxgd.core.optimizers``. A grid axis or a
        sampled range of the same name takes over.

    Example:
      >>> Optimizer("momentum", momentum=0.8).hyperparameters
      (('momentum', 0.8),)
      >>> Optimizer("sgd", "cosine_decay", {"decay_steps": 100}) == Optimizer(
      ...     schedule="cosine_decay", schedule_steps={"decay_steps": 100})
      True
    """

    name: str | OptimizerFactory
    schedule: str
    schedule_steps: tuple[tuple[str, int], ...]
    hyperparameters: tuple[tuple[str, Any], ...]

    def __init__(self, name: str | OptimizerFactory = "sgd", schedule: str = "constant",
                 schedule_steps: Mapping[str, int] | None = None, **hyperparameters: Any):
        spec = make_spec(name, schedule, schedule_steps)  # names and step counts checked
        for key, value in hyperparameters.items():
            if key in ("learning_rate", "seed", "l2"):
                raise ValueError(f"give {key} as its own argument, not in the Optimizer")
            check_hyperparameter(key, value, spec)
        _set(self, "name", name)
        _set(self, "schedule", schedule)
        _set(self, "schedule_steps", tuple(sorted((schedule_steps or {}).items())))
        _set(self, "hyperparameters", tuple(sorted(hyperparameters.items())))


@dataclasses.dataclass(frozen=True)
class Sample:
    """Points drawn from a search space (``grid_sweep``; see ``jaxgd.tuning.search``): they
    form the result's first axis, "sample", crossed with the grid's axes.

    Args:
      space: name -> (kind, low, high), kind "log" or "uniform", over any numeric
        hyperparameter the grid takes but seeds.
      num_samples: how many points to draw (a power of two keeps Sobol' points balanced;
        at most 2**32 for Sobol'). Points whose runs' loss histories would not fit in this
        machine's memory are a ``MemoryError`` naming num_samples, before any is drawn.
      sampler: "sobol" (scrambled Sobol', even coverage) or "random" (independent).
      seed: the draw's seed.
      points: the points themselves, name -> ``num_samples`` values for each name of
        ``space`` (e.g. a slice of an earlier draw, as ``jaxgd run`` runs its draw in
        chunks): then nothing is drawn, and ``space`` gives the ranges (``refine=`` moves
        in them).

    Example:
      >>> Sample({"learning_rate": ("log", 1e-3, 1.0)}, 16).num_samples
      16
      >>> Sample({"learning_rate": ("log", 1e-3, 1.0)}, 2,
      ...        points={"learning_rate": [0.01, 0.1]}).points[0][1].tolist()
      [0.01, 0.1]
    """

    space: Any
    num_samples: int
    sampler: str = "sobol"
    seed: int = 0
    points: Any = dataclasses.field(default=None, compare=False)

    def __post_init__(self):
        if not isinstance(self.space, Mapping):
            raise ValueError("Sample.space must map names to (kind, low, high), e.g. "
                             f"{{'learning_rate': ('log', 1e-4, 1.0)}}, got {self.space!r}")
        search.check_space(self.space)
        # Hashable and fixed: the ranges as tuples, in the order given.
        _set(self, "space", tuple((name, tuple(entry) if isinstance(entry, list) else entry)
                                  for name, entry in self.space.items()))
        # names num_samples and the sampler; refuses a draw this machine could not hold
        _set(self, "num_samples", search.check_size(self.num_samples, len(self.space),
                                                    self.sampler))
        _set(self, "seed", check_seed(self.seed, "Sample.seed"))
        if self.points is not None:
            _set(self, "points", _given_points(self.points, self.space, self.num_samples))


def _given_points(points, space, num_samples: int) -> tuple[tuple[str, np.ndarray], ...]:
    """``Sample.points``, checked: every name of the space, ``num_samples`` numbers each
    (read-only float64 arrays, in the order given)."""
    names = [name for name, _ in space]
    if not isinstance(points, Mapping) or sorted(points) != sorted(names):
        raise ValueError(f"Sample.points must map each name of the space ({', '.join(names)}) "
                         f"to its values, got {points!r}")
    given = []
    for name in points:
        values = np.array(points[name], np.float64)
        if values.shape != (num_samples,):
            raise ValueError(f"Sample.points[{name!r}] must hold num_samples = {num_samples} "
                             f"values, got shape {values.shape}")
        values.flags.writeable = False
        given.append((name, values))
    return tuple(given)


#: The types of the keywords that take a value or something simpler (the signatures').
OptimizerLike = str | OptimizerFactory | Optimizer | None
Start = LinearParams | float
HeldOut = tuple | Holdout | KFolds | None

VALUES = {"stopping": Stopping, "batches": MiniBatches, "record": Record,
          "placement": Placement, "sample": Sample}


def _check_types(keywords: Mapping[str, Any]) -> None:
    for name, kind in VALUES.items():
        value = keywords.get(name)
        if value is not None and not isinstance(value, kind):
            raise TypeError(f"{name} must be a jaxgd.{kind.__name__}(...), got "
                            f"{type(value).__name__} {value!r}")
    validation = keywords.get("validation")
    if validation is not None and not isinstance(validation, Holdout | KFolds | tuple | list):
        raise TypeError("validation must be held-out rows (X_val, y_val), jaxgd.Holdout(...) "
                        f"or jaxgd.KFolds(...), got {type(validation).__name__}")


def flatten(keywords: Mapping[str, Any]) -> dict[str, Any]:
    """The flat ``Options`` fields that the settings values among ``keywords`` stand for
    (the one place where they are mapped; the other keywords pass as they are).

    Example:
      >>> flatten({"stopping": Stopping(pruning=Halving(rate=2)), "l2": 0.1})["halving_rate"]
      2
    """
    _check_types(keywords)
    flat = {k: v for k, v in keywords.items() if k not in (*VALUES, "validation", "init",
                                                            "optimizer")}
    stopping = keywords.get("stopping") or Stopping()
    pruning = stopping.pruning
    flat.update(tol=stopping.tol, patience=stopping.patience,
                divergence_factor=stopping.divergence_factor,
                stop_at_convergence=stopping.early_exit, segment_steps=stopping.segment_steps,
                reference=stopping.reference,
                pruning=None if pruning is None else "halving",
                halving_rate=3 if pruning is None else pruning.rate,
                min_steps=None if pruning is None else pruning.min_steps)
    batches = keywords.get("batches")
    if batches is not None:
        flat.update(batch_size=batches.batch_size, epochs=batches.epochs,
                    batch_seed=batches.seed)
    record = keywords.get("record") or Record()
    flat.update(log_every=record.log_every, snapshot_steps=record.snapshot_steps,
                track_sharpness=record.track_sharpness, progress_every=record.progress_every)
    placement = keywords.get("placement") or Placement()
    flat.update(chunk_size=placement.chunk_size, sharding_mode=placement.sharding,
                unroll=placement.unroll)
    flat.update(_validation(keywords.get("validation")))
    flat.update(_optimizer(keywords.get("optimizer")))
    init = keywords.get("init", 0.01)
    if isinstance(init, int | float | np.number) and not isinstance(init, bool):
        flat["init_scale"] = init  # a number: the scale of the random start
    else:  # a start (checked as one: jaxgd.core.params.check_init)
        flat["init"] = init
    return flat


def _validation(validation) -> dict[str, Any]:
    if isinstance(validation, Holdout):
        return {"validation_fraction": validation.fraction,
                "validation_seed": validation.seed}
    if isinstance(validation, KFolds):
        return {"k_folds": validation.k, "validation_seed": validation.seed}
    return {"validation": validation}


def _optimizer(optimizer) -> dict[str, Any]:
    if not isinstance(optimizer, Optimizer):
        return {"optimizer": optimizer}
    return {"optimizer": optimizer.name, "schedule": optimizer.schedule,
            "schedule_steps": dict(optimizer.schedule_steps) or None,
            "hyperparameters": dict(optimizer.hyperparameters) or None}


def options(keywords: Mapping[str, Any], sweeps: bool = True) -> Options:
    """The internal ``Options`` of a public function's keywords (its ``locals()``);
    ``sweeps`` False for ``fit``, which runs one run (no folds, pruning or chunks).

    Example:
      >>> options({"num_steps": 10, "record": Record(log_every=5)}).log_every
      5
    """
    if not sweeps:
        _check_single(keywords)
    return Options.of(flatten(keywords))


def _check_single(keywords: Mapping[str, Any]) -> None:
    """What ``fit`` refuses: settings that only a sweep of many runs has."""
    if isinstance(keywords.get("validation"), KFolds):
        raise ValueError("fit takes no KFolds (one run per fold is a sweep): use "
                         "jaxgd.sweep(..., validation=jaxgd.KFolds(k)), or jaxgd.Holdout")
    stopping, placement = keywords.get("stopping"), keywords.get("placement")
    if isinstance(stopping, Stopping) and stopping.pruning is not None:
        raise ValueError("fit takes no Stopping.pruning: pruning ranks the runs of a sweep")
    if isinstance(stopping, Stopping) and stopping.segment_steps is not None:
        raise ValueError("fit takes no Stopping.segment_steps: its segments are 1/32 of "
                         "num_steps, and a run stops at the end of the one it finished in")
    if isinstance(placement, Placement) and (placement.chunk_size is not None
                                             or placement.sharding != "runs"):
        raise ValueError("fit takes no Placement.chunk_size or Placement.sharding (they "
                         "place the runs of a sweep): give Placement(unroll=...) only")


#: Each old flat keyword: the new keyword and the field of its value (None: the value
#: itself). Read by ``group`` and by the re-spelling script (/work/tools/respell.py).
MOVED: dict[str, tuple[str, str | None]] = {
    "batch_size": ("batches", "batch_size"), "epochs": ("batches", "epochs"),
    "batch_seed": ("batches", "seed"),
    "schedule": ("optimizer", "schedule"), "schedule_steps": ("optimizer", "schedule_steps"),
    "hyperparameters": ("optimizer", "**"),
    "init_scale": ("init", None),
    "tol": ("stopping", "tol"), "patience": ("stopping", "patience"),
    "divergence_factor": ("stopping", "divergence_factor"),
    "stop_at_convergence": ("stopping", "early_exit"),
    "segment_steps": ("stopping", "segment_steps"), "pruning": ("stopping", "pruning"),
    "halving_rate": ("stopping", "pruning.rate"), "min_steps": ("stopping", "pruning.min_steps"),
    "reference": ("stopping", "reference"),
    "snapshot_steps": ("record", "snapshot_steps"), "progress_every": ("record", "progress_every"),
    "log_every": ("record", "log_every"), "track_sharpness": ("record", "track_sharpness"),
    "validation_fraction": ("validation", "fraction"), "validation_seed": ("validation", "seed"),
    "k_folds": ("validation", "k"),
    "unroll": ("placement", "unroll"), "chunk_size": ("placement", "chunk_size"),
    "sharding_mode": ("placement", "sharding"),
    "sample": ("sample", "space"), "num_samples": ("sample", "num_samples"),
    "sampler": ("sample", "sampler"), "sample_seed": ("sample", "seed"),
}


def group(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The new keywords for old flat ones (as the command line's option dicts and
    ``GDRegressor`` hold them): e.g. ``tol`` and ``patience`` become one ``stopping``.

    Example:
      >>> new = group({"tol": 1e-4, "batch_size": 8, "epochs": 2, "l2": 0.1})
      >>> new["stopping"] == Stopping(tol=1e-4), new["batches"], new["l2"]
      (True, MiniBatches(batch_size=8, epochs=2, seed=None), 0.1)
    """
    out = {k: v for k, v in flat.items() if k not in MOVED}
    parts: dict[str, dict[str, Any]] = {}
    for name, value in flat.items():
        if name in MOVED:
            key, field = MOVED[name]
            parts.setdefault(key, {})[field] = value
    if "stopping" in parts:
        fields = parts["stopping"]
        rate, least = fields.pop("pruning.rate", 3), fields.pop("pruning.min_steps", None)
        if fields.get("pruning") == "halving":
            fields["pruning"] = Halving(rate, least)
        out["stopping"] = Stopping(**fields)
    if parts.get("batches", {}).get("batch_size") is not None or \
            parts.get("batches", {}).get("epochs") is not None:
        out["batches"] = MiniBatches(**parts["batches"])
    for key, kind in (("record", Record), ("placement", Placement), ("sample", Sample)):
        if key in parts and (key != "sample" or parts[key].get("space") is not None):
            out[key] = kind(**parts[key])
    fields = parts.get("validation", {})
    if fields.get("fraction") is not None:
        out["validation"] = Holdout(fields["fraction"], fields.get("seed") or 0)
    elif fields.get("k") is not None:
        out["validation"] = KFolds(fields["k"], fields.get("seed") or 0)
    fields = parts.get("optimizer", {})
    check_mapping(fields.get("**"), "hyperparameters", "{'b1': 0.5}")
    if any(value is not None for value in fields.values()):
        out["optimizer"] = Optimizer(flat.get("optimizer") or "sgd",
                                     fields.get("schedule") or "constant",
                                     fields.get("schedule_steps"), **(fields.get("**") or {}))
    if "init" in parts and flat.get("init") is None:
        out["init"] = parts["init"][None]
    return out


__all__ = ["Halving", "HeldOut", "Holdout", "KFolds", "MiniBatches", "Optimizer",
           "OptimizerLike", "Placement", "Record", "Sample", "Start", "Stopping", "flatten",
           "group", "options"]
