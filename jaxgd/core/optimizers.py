"""Optimizers and learning-rate schedules by name, built from optax.

``OptimizerSpec`` names an optimizer and a schedule; its numeric hyperparameters (learning
rate, momentum, Adam's b1/b2, weight decay, ...) arrive at build time as traced values, so a
grid over any of them is one compiled program and new values never recompile. Only the
structure is static: the names and the schedules' step counts.

| optimizer  | optax                        | hyperparameters (defaults)                       |
| ---------- | ---------------------------- | ------------------------------------------------ |
| sgd        | ``optax.sgd``                | learning_rate                                    |
| momentum   | ``optax.sgd(momentum=)``     | learning_rate, momentum (0.9)                    |
| nesterov   | ``optax.sgd(nesterov=True)`` | learning_rate, momentum (0.9)                    |
| adam       | ``optax.adam``               | learning_rate, b1 (0.9), b2 (0.999), eps (1e-8)  |
| adamw      | ``optax.adamw``              | ... as adam, weight_decay (1e-4)                 |
| rmsprop    | ``optax.rmsprop``            | learning_rate, decay (0.9), eps (1e-8)           |
| adagrad    | ``optax.adagrad``            | learning_rate, initial_accumulator_value (0.1),  |
|            |                              | eps (1e-7)                                       |

Schedules replace the constant learning rate η by η(t):
``constant``; ``exponential_decay`` η·decay_rate^(t/transition_steps); ``cosine_decay`` from
η to alpha·η over decay_steps; ``warmup_cosine`` from 0 up to η over warmup_steps, then
cosine down to alpha·η at decay_steps.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import optax

from jaxgd.inputs.validation import check_mapping, is_traced

OPTIMIZERS: dict[str, dict[str, float]] = {
    "sgd": {},
    "momentum": {"momentum": 0.9},
    "nesterov": {"momentum": 0.9},
    "adam": {"b1": 0.9, "b2": 0.999, "eps": 1e-8},
    "adamw": {"b1": 0.9, "b2": 0.999, "eps": 1e-8, "weight_decay": 1e-4},
    "rmsprop": {"decay": 0.9, "eps": 1e-8},
    "adagrad": {"initial_accumulator_value": 0.1, "eps": 1e-7},
}
#: Traced (numeric) schedule hyperparameters and their defaults.
SCHEDULES: dict[str, dict[str, float]] = {
    "constant": {},
    "exponential_decay": {"decay_rate": 0.5},
    "cosine_decay": {"alpha": 0.0},
    "warmup_cosine": {"alpha": 0.0},
}
#: Static (integer step count) schedule settings; None means "num_steps".
SCHEDULE_STEPS: dict[str, dict[str, int | None]] = {
    "constant": {},
    "exponential_decay": {"transition_steps": None},
    "cosine_decay": {"decay_steps": None},
    "warmup_cosine": {"warmup_steps": None, "decay_steps": None},
}
# Allowed ranges: (low, high, low inclusive, high inclusive).
_RANGES = {
    "learning_rate": (0.0, math.inf, False, False),
    "momentum": (0.0, 1.0, True, False),
    "b1": (0.0, 1.0, True, False),
    "b2": (0.0, 1.0, True, False),
    "decay": (0.0, 1.0, True, False),
    "eps": (0.0, math.inf, False, False),
    "weight_decay": (0.0, math.inf, True, False),
    "initial_accumulator_value": (0.0, math.inf, True, False),
    "decay_rate": (0.0, 1.0, False, True),
    "alpha": (0.0, 1.0, True, True),
}


class OptimizerSpec(NamedTuple):
    """A hashable description of an optimizer, so jit can key its cache on it.

    Attributes:
      name: one of ``OPTIMIZERS``, or "custom" for ``factory``.
      schedule: one of ``SCHEDULES``.
      steps: the schedule's static step counts, as sorted (name, value) pairs.
      factory: for "custom": a function from a learning rate (or schedule) to an optax
        ``GradientTransformation``, such as ``optax.sgd`` or ``lambda lr: optax.adam(lr)``.
    """

    name: str = "sgd"
    schedule: str = "constant"
    steps: tuple[tuple[str, int], ...] = ()
    factory: Callable | None = None

    @property
    def monotone(self) -> bool:
        """Whether a run's loss can only fall while its learning rate is below the stability
        limit: plain gradient descent at a constant rate, on the MSE (a quadratic). So a loss
        rising steadily means a rate above the limit (``jaxgd.core.convergence``). Not for a
        schedule: one that starts above the limit and decays below it rises, then recovers."""
        return self.name == "sgd" and self.schedule == "constant"

    def hyperparameter_names(self) -> tuple[str, ...]:
        """The numeric hyperparameters this optimizer and schedule take."""
        own = () if self.name == "custom" else tuple(OPTIMIZERS[self.name])
        return ("learning_rate", *own, *SCHEDULES[self.schedule])

    def defaults(self) -> dict[str, float]:
        own = {} if self.name == "custom" else OPTIMIZERS[self.name]
        return {**own, **SCHEDULES[self.schedule]}

    def build(self, hyper: Mapping[str, Any]) -> optax.GradientTransformation:
        """The optax optimizer for these hyperparameter values (may be traced)."""
        rate = _schedule(self.schedule, dict(self.steps), hyper)
        if self.name == "custom":
            built = self.factory(rate)
            if not isinstance(built, optax.GradientTransformation):
                raise TypeError(
                    "optimizer must build an optax GradientTransformation from the learning "
                    f"rate, but optimizer(learning_rate) returned {type(built).__name__}: "
                    "e.g. optimizer=optax.adam or lambda lr: optax.sgd(lr, momentum=0.9)")
            return built
        h = {**self.defaults(), **hyper}
        return _BUILDERS[self.name](rate, h)


_BUILDERS: dict[str, Callable[[Any, dict], optax.GradientTransformation]] = {
    "sgd": lambda rate, h: optax.sgd(rate),
    "momentum": lambda rate, h: optax.sgd(rate, momentum=h["momentum"]),
    "nesterov": lambda rate, h: optax.sgd(rate, momentum=h["momentum"], nesterov=True),
    "adam": lambda rate, h: optax.adam(rate, b1=h["b1"], b2=h["b2"], eps=h["eps"]),
    "adamw": lambda rate, h: optax.adamw(rate, b1=h["b1"], b2=h["b2"], eps=h["eps"],
                                         weight_decay=h["weight_decay"]),
    "rmsprop": lambda rate, h: optax.rmsprop(rate, decay=h["decay"], eps=h["eps"]),
    "adagrad": lambda rate, h: optax.adagrad(
        rate, initial_accumulator_value=h["initial_accumulator_value"], eps=h["eps"]),
}


def _schedule(name: str, steps: dict[str, int], hyper: Mapping[str, Any]):
    rate = hyper["learning_rate"]
    if name == "constant":
        return rate
    alpha = hyper.get("alpha", 0.0)
    if name == "exponential_decay":
        # optax.exponential_decay tests its decay rate in Python, which a traced value (one
        # per run of a grid) cannot pass; the formula itself is one line.
        decay_rate, every = hyper.get("decay_rate", 0.5), steps["transition_steps"]
        return lambda count: rate * decay_rate ** (count / every)
    if name == "cosine_decay":
        return optax.cosine_decay_schedule(rate, steps["decay_steps"], alpha=alpha)
    warmup, total = steps["warmup_steps"], steps["decay_steps"]
    return optax.join_schedules(
        [optax.linear_schedule(0.0, rate, warmup),
         optax.cosine_decay_schedule(rate, max(total - warmup, 1), alpha=alpha)],
        [warmup])


def make_spec(optimizer: str | Callable | None, schedule: str = "constant",
              schedule_steps: Mapping[str, int] | None = None,
              num_steps: int = 1) -> OptimizerSpec:
    """Validates an optimizer choice and returns its spec.

    Args:
      optimizer: a name from ``OPTIMIZERS``, a function from a learning rate to an optax
        optimizer (e.g. ``optax.adam``), or None for plain gradient descent ("sgd").
      schedule: a name from ``SCHEDULES``.
      schedule_steps: the schedule's step counts (``transition_steps``, ``decay_steps``,
        ``warmup_steps``); each defaults to ``num_steps`` (warmup: a tenth of it).
      num_steps: the run's length, for those defaults.

    Example:
      >>> make_spec("adam").hyperparameter_names()
      ('learning_rate', 'b1', 'b2', 'eps')
      >>> make_spec("sgd", "cosine_decay", num_steps=100).steps
      (('decay_steps', 100),)
    """
    if optimizer is None:
        optimizer = "sgd"
    factory = None
    if isinstance(optimizer, optax.GradientTransformation) or not (
            isinstance(optimizer, str) or callable(optimizer)):
        raise TypeError(
            "optimizer must be a name (" + ", ".join(OPTIMIZERS) + ") or a function that "
            "builds an optax optimizer from a learning rate, such as optax.adam or "
            f"lambda lr: optax.sgd(lr, momentum=0.9), not {type(optimizer).__name__}")
    if callable(optimizer):
        optimizer, factory = "custom", optimizer
    else:
        _known(optimizer, OPTIMIZERS, "optimizer")
    _known(schedule, SCHEDULES, "schedule")
    given = dict(check_mapping(schedule_steps, "schedule_steps", "{'decay_steps': 500}") or {})
    allowed = SCHEDULE_STEPS[schedule]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ValueError(f"schedule {schedule!r} takes no {unknown}; its step settings: "
                         f"{sorted(allowed) or 'none'}")
    steps = {}
    for key in allowed:
        default = max(num_steps // 10, 1) if key == "warmup_steps" else num_steps
        value = given.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{key} must be an integer >= 1, got {value!r}")
        steps[key] = int(value)  # hashable and plain: the spec keys the compiled program
    return OptimizerSpec(optimizer, schedule, tuple(sorted(steps.items())), factory)


def check_hyperparameter(name: str, values, spec: OptimizerSpec) -> None:
    """Checks that ``name`` is one of the spec's hyperparameters and its values are in range
    (``values`` None, or traced by the caller: the name only)."""
    valid = spec.hyperparameter_names()
    if name not in valid:
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{spec.name} with schedule {spec.schedule} has no hyperparameter "
                         f"{name!r}.{hint} Valid: {', '.join(valid)}")
    if values is None or is_traced(values):
        return
    low, high, low_ok, high_ok = _RANGES.get(name, (-math.inf, math.inf, False, False))
    single = np.ndim(values) == 0  # one value: no index to name
    for index, value in enumerate(np.ravel(np.asarray(values, np.float64)).tolist()):
        fine = math.isfinite(value) and (value > low or (low_ok and value == low)) and (
            value < high or (high_ok and value == high))
        if not fine:
            interval = f"{'[' if low_ok else '('}{low:g}, {high:g}{']' if high_ok else ')'}"
            where = "" if single else f" (index {index})"
            raise ValueError(f"{name} must be in {interval}; bad value {value!r}{where}")


def _known(name: str, table: Mapping, what: str) -> None:
    if name not in table:
        close = difflib.get_close_matches(str(name), list(table), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown {what} {name!r}.{hint} Valid: {', '.join(table)}")
