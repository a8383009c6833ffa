"""A run's settings: ``Options``, every setting but the data and the grid, and its checked
compile-time part, ``RunConfig`` (``make_config``).

The public functions build ``Options`` from their settings values
(``jaxgd.api.settings.options``); ``make_config`` checks them and resolves what is fixed at
compile time. The numbers a run may vary or the caller may trace (``criteria``: ``tol``,
``divergence_factor``) stay traced inputs of ``jaxgd.pipeline.training.train``. Kept apart
from the traced program so that the preparation pipeline reads the settings without
importing the loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import optax

from jaxgd.core import convergence, minibatch
from jaxgd.core.optimizers import OptimizerSpec, make_spec
from jaxgd.core.snapshots import check_snapshot_steps, default_snapshot_steps
from jaxgd.engines.engine import ENGINES
from jaxgd.inputs.validation import (
    MAX_INT32,
    check_bool,
    check_choice,
    check_non_negative,
    check_positive_int,
    is_traced,
)
from jaxgd.pipeline.sharding import MODES
from jaxgd.theory.sharpness import TRACKED

#: Builds an optax optimizer from a learning rate, e.g. ``optax.sgd`` or ``optax.adam``.
OptimizerFactory = Callable[[jax.Array], optax.GradientTransformation]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Options:
    """Every setting of a run but the data and the grid (see ``jaxgd.fit`` for each).

    ``fit``, ``sweep`` and ``grid_sweep`` build one from their keywords (``Options.of``) and
    hand it on whole: no setting is forwarded by name from one to the next.
    """

    num_steps: int | None = None
    learning_rate: Any = None
    seed: int = 0
    batch_size: int | None = None
    epochs: int | None = None
    batch_seed: int | None = None
    optimizer: str | OptimizerFactory | None = None
    schedule: str = "constant"
    schedule_steps: Mapping[str, int] | None = None
    hyperparameters: Mapping[str, Any] | None = None
    l2: Any = 0.0
    init_scale: float = 0.01
    tol: Any = convergence.DEFAULT_TOL
    patience: int = convergence.DEFAULT_PATIENCE
    divergence_factor: Any = convergence.DEFAULT_DIVERGENCE_FACTOR
    stop_at_convergence: bool = False
    snapshot_steps: Sequence[int] | None = None
    reference: bool = True
    progress_every: int = 0
    engine: str = "auto"
    log_every: int = 1
    unroll: int | None = None
    chunk_size: int | None = None
    sharding_mode: str = "runs"
    segment_steps: int | None = None
    pruning: str | None = None
    halving_rate: int = 3
    min_steps: int | None = None
    track_sharpness: bool = False
    validation: tuple[Any, Any] | None = None
    validation_fraction: float | None = None
    validation_seed: int | None = None
    k_folds: int | None = None
    init: Any = None  # a LinearParams: the start of every run, or of each (see start_values)
    model: Any = None  # a jaxgd.Model: the user's own loss and start (jaxgd.pipeline.custom)

    @classmethod
    def of(cls, keywords: Mapping[str, Any]) -> Options:
        """The options among ``keywords`` (a public function's ``locals()``).

        Example:
          >>> Options.of({"X": None, "num_steps": 10, "tol": 1e-3}).tol
          0.001
        """
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in keywords.items() if k in names})


class RunConfig(NamedTuple):
    """Everything about a run that is fixed at compile time (hashable, so jit can key on it).

    Numbers that may vary between runs or be traced by the caller (learning rate, seed, l2,
    the optimizer's hyperparameters, ``tol``, ``divergence_factor``) are not here: they are
    traced inputs of ``train`` (see ``criteria``).
    """

    num_steps: int
    optimizer: OptimizerSpec
    init_scale: float
    patience: int
    stop_at_convergence: bool
    snapshot_steps: tuple[int, ...]
    progress_every: int = 0
    log_every: int = 1
    batch_size: int | None = None  # mini-batch SGD (None: full batch)
    epochs: int | None = None
    track_sharpness: bool = False  # record Adam's preconditioned sharpness (jaxgd.theory.sharpness)
    unroll: int | None = None  # steps per loop iteration (None: the backend's default)


def make_config(options: Options, n_rows: int = 0) -> RunConfig:
    """Checks the run's settings and resolves their compile-time part.

    Raises:
      TypeError, ValueError: naming the setting that is wrong.
    """
    flags = _flags(options)
    num_steps, batch_size, epochs = _steps(options.num_steps, options.batch_size,
                                           options.epochs, n_rows)
    if batch_size is not None and flags["stop_at_convergence"]:
        raise ValueError("stop_at_convergence is for full-batch runs; mini-batch runs judge "
                         "convergence on the epoch losses after the fact")
    snapshot_steps = options.snapshot_steps
    if snapshot_steps is None:
        snapshot_steps = default_snapshot_steps(num_steps)
    criteria(options.tol, options.divergence_factor)  # checked here; traced inputs of train
    spec = make_spec(options.optimizer, options.schedule, options.schedule_steps, num_steps)
    _check_tracking(options, spec, batch_size)
    return RunConfig(
        num_steps=num_steps,
        optimizer=spec,
        init_scale=check_non_negative(options.init_scale, "init_scale"),
        patience=check_positive_int(options.patience, "patience"),
        stop_at_convergence=flags["stop_at_convergence"],
        snapshot_steps=check_snapshot_steps(snapshot_steps, num_steps),
        progress_every=check_positive_int(options.progress_every, "progress_every",
                                          minimum=0),
        log_every=check_positive_int(options.log_every, "log_every"),
        batch_size=batch_size,
        epochs=epochs,
        track_sharpness=flags["track_sharpness"],
        unroll=None if options.unroll is None else check_positive_int(options.unroll, "unroll"),
    )


#: The options that are switches: True or False, never a string or number taken by its truth.
FLAGS = ("stop_at_convergence", "reference", "track_sharpness")


def _flags(options: Options) -> dict[str, bool]:
    """The switches, checked (``"false"`` would be true), and the names engine and
    sharding_mode, before anything reads them."""
    check_choice(options.engine, "engine", ENGINES)
    check_choice(options.sharding_mode, "sharding_mode", MODES)
    return {name: check_bool(getattr(options, name), name) for name in FLAGS}


def _check_tracking(options: Options, spec: OptimizerSpec, batch_size: int | None) -> None:
    """The preconditioned sharpness is defined for Adam at a constant rate on the full-batch
    loss (see ``jaxgd.theory.sharpness``), and recorded at every logged step of every run."""
    if not options.track_sharpness:
        return
    if spec.name not in TRACKED:
        raise ValueError(f"track_sharpness is for optimizer {' or '.join(TRACKED)!s} (its "
                         f"preconditioned curvature), not {spec.name!r}: for sgd, momentum "
                         "and nesterov the curvature is constant, see jaxgd.theory.stability")
    if spec.schedule != "constant" or batch_size is not None:
        raise ValueError("track_sharpness needs a constant learning rate on the full-batch "
                         "loss: leave schedule and batch_size out")
    if options.stop_at_convergence or options.pruning is not None:
        raise ValueError("track_sharpness records every logged step of every run, and the "
                         "early exit (stop_at_convergence, pruning) stops runs between "
                         "segments: leave those out")


def criteria(tol, divergence_factor) -> dict[str, Any]:
    """The convergence and divergence thresholds, checked (when concrete), as traced inputs
    of ``train``: a new ``tol`` never recompiles, and both may be the caller's tracers."""
    tol = check_non_negative(tol, "tol")
    divergence_factor = check_non_negative(divergence_factor, "divergence_factor")
    if not is_traced(divergence_factor) and divergence_factor <= 1:
        raise ValueError(f"divergence_factor must be > 1, got {divergence_factor}")
    return {"tol": tol, "divergence_factor": divergence_factor}


def _steps(num_steps, batch_size, epochs, n_rows: int):
    """num_steps for full batch; or batch_size and epochs, which set num_steps."""
    if batch_size is None and epochs is None:
        if num_steps is None:
            raise ValueError("give num_steps (or batch_size and epochs for mini-batch SGD)")
        return _at_most_int32(check_positive_int(num_steps, "num_steps"), "num_steps"), \
            None, None
    if batch_size is None or epochs is None:
        counted = ": it counts epochs, not num_steps, so give epochs instead of num_steps" \
            if num_steps is not None and epochs is None else ""
        raise ValueError(f"mini-batch SGD needs both batch_size and epochs{counted} (a run "
                         "takes epochs × ceil(n / batch_size) steps)")
    if num_steps is not None:
        raise ValueError("with batch_size and epochs, leave num_steps out: it is "
                         "epochs × ceil(n / batch_size)")
    batch_size = check_positive_int(batch_size, "batch_size")
    if batch_size > n_rows:
        raise ValueError(f"batch_size must be <= the number of rows ({n_rows}), "
                         f"got {batch_size}")
    epochs = check_positive_int(epochs, "epochs")
    num_steps = epochs * minibatch.steps_per_epoch(n_rows, batch_size)
    return _at_most_int32(num_steps, "epochs × ceil(n / batch_size)"), batch_size, epochs


def _at_most_int32(num_steps: int, name: str) -> int:
    """The loop counts its steps in int32."""
    if num_steps > MAX_INT32:
        raise ValueError(f"{name} must be <= {MAX_INT32} (the loop counts its steps in "
                         f"int32), got {num_steps}")
    return num_steps
