"""An exact learning-rate range test: every candidate rate at once, as one sweep.

The usual range test ramps the learning rate up during one run and watches the loss blow
up; its answer depends on the ramp. Here every candidate rate is its own run, all of them
one compiled ``sweep``, and for the optimizers whose constant-rate dynamics on the MSE are
known exactly (plain gradient descent, momentum, Nesterov: ``jaxgd.stability``) the range's
top and the fastest rate come from the theory, the sweep confirming them. The definitions:

- ``max_stable``: the largest rate that does not diverge. Exact (``exact=True``): the
  theory's limit, e.g. 2/λmax for sgd (``Stability.max_learning_rate``); every rate below
  it converges. Empirical (Adam and the rest, schedules, mini-batches): the largest
  candidate below the first one that diverged (every candidate up to it survived), so the
  true edge lies in ``[max_stable, first_diverged)``.
- ``fastest``: the best constant rate. Exact: the rate whose slowest direction shrinks
  fastest (``Stability.fastest_learning_rate``). Empirical: the candidate with the lowest
  final loss, ties going to the one that converged first (``SweepResult.best``).
- ``suggested``: the candidate that first brings its loss within ``target`` of the way from
  its start to the float64 optimum, ``L(t) − L* ≤ target·(L(0) − L*)`` (ties: the smaller
  rate, the safer one). Always measured on the sweep.

Mini-batch runs: the theory is that of the full-batch loss, so its limit is reported as
``limit`` but ``max_stable`` and ``fastest`` are empirical (gradient noise lowers the edge).

Held-out rows: with ``validation=jaxgd.Holdout(...)`` the runs train on the split's training rows
only, so the theory is theirs (drawn as the sweep draws them, ``jaxgd.pipeline.holdout.resolve``):
the held-out rows' curvature is not the runs'. ``validation=`` rows are apart from X already.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any, NamedTuple

import numpy as np

from jaxgd.api.settings import Holdout, KFolds, Optimizer, Stopping
from jaxgd.api.sweep import sweep
from jaxgd.core.convergence import gap_to_optimum
from jaxgd.core.optimizers import OPTIMIZERS
from jaxgd.datasets.stream import RowSource
from jaxgd.inputs.validation import check_positive_int
from jaxgd.pipeline import holdout
from jaxgd.results.result import SweepResult
from jaxgd.theory.stability import Stability, has_exact_limit, stability

#: Default candidates around a known limit: from SPAN[0]·limit to SPAN[1]·limit, log-spaced,
#: plus the limit's near neighbours (``BRACKET``) so the sweep confirms it closely.
SPAN = (1e-3, 3.0)
BRACKET = (0.98, 1.02)
#: Default candidates without a known limit (Adam steps about η per coordinate).
EMPIRICAL_SPAN = (1e-4, 10.0)
DEFAULT_TARGET = 1e-3


class LrRange(NamedTuple):
    """What ``lr_range`` found (see the module docstring for each definition).

    Attributes:
      learning_rates: the candidates, ascending, ``(K,)``.
      max_stable: the admissible range's top.
      fastest: the best constant learning rate.
      suggested: the candidate reaching the target gap soonest (NaN if none did).
      exact: whether ``max_stable`` and ``fastest`` come from the theory.
      limit: the theory's stability limit (NaN when there is none for this optimizer).
      first_diverged: the smallest candidate that diverged (NaN if none did).
      steps_to_target: per candidate, the first logged step at which its gap was within
        ``target``, -1 if never (or diverged).
      relative_gap: per candidate, ``(final_loss − L*)/(L(0) − L*)``; inf if diverged, and 0
        where a float32 final loss rounded a few ulps below the float64 L* (within
        ``RESOLUTION_ULPS`` ulps of L*: ``jaxgd.core.convergence.gap_to_optimum``, as ``gap``).
      target: the relative gap ``suggested`` aims for.
      sweep: the sweep behind them (one run per candidate).
      limits: the ``Stability`` of the data, or None (optimizers without theory, files).

    Every leaf is an array (the single numbers 0-d float64, ``exact`` a 0-d bool), so an
    ``LrRange`` passes through ``jit`` and ``jax.tree_util.tree_map`` like any pytree.
    """

    learning_rates: np.ndarray
    max_stable: np.ndarray
    fastest: np.ndarray
    suggested: np.ndarray
    exact: np.ndarray
    limit: np.ndarray
    first_diverged: np.ndarray
    steps_to_target: np.ndarray
    relative_gap: np.ndarray
    target: np.ndarray
    sweep: SweepResult
    limits: Stability | None = None

    #: The limit's near neighbours among the default candidates (``lr_range``'s ``BRACKET``).
    BRACKET = BRACKET

    def describe(self) -> str:
        """A few lines for people (``describe``)."""
        return describe(self)

    def summary(self) -> dict[str, Any]:
        """The findings as JSON-ready data (``summary``)."""
        return summary(self)

    def bracket(self) -> tuple[float, float]:
        """The sweep's own bracket of the edge: (largest candidate that survived with every
        smaller one, smallest candidate that diverged)."""
        return _empirical_max(self.learning_rates, np.asarray(self.sweep.diverged)), \
            float(self.first_diverged)


def lr_range(X, y, *, optimizer: str | Optimizer = "sgd", num_steps: int | None = None,
             learning_rates: Sequence[float] | None = None, num_rates: int = 25,
             target: float = DEFAULT_TARGET, l2: float = 0.0, **options: Any) -> LrRange:
    """Sweeps candidate learning rates at once and reads off the usable range.

    Args:
      X: the features, as in ``sweep`` (an array, ``SufficientStats`` with y None, or a
        ``RowSource``, for which there is no theory). With ``validation=jaxgd.Holdout(...)``
        the limit is that of the split's training rows, the rows the runs train on.
      y: the targets (None with ``SufficientStats`` or a ``RowSource``).
      optimizer: a name from ``jaxgd.core.optimizers.OPTIMIZERS``, or a ``jaxgd.Optimizer``
        of one, with its schedule and fixed hyperparameters (``Optimizer("momentum",
        momentum=0.9)``).
      num_steps: updates per run (leave out with ``batches=jaxgd.MiniBatches(...)``).
      learning_rates: the candidates (default: ``num_rates`` log-spaced around the theory's
        limit, ``SPAN`` of it, plus ``BRACKET`` of it; without theory ``EMPIRICAL_SPAN``).
      num_rates: how many log-spaced candidates by default (an integer >= 2; NumPy
        integers will do).
      target: the relative gap that ``suggested`` must reach, in (0, 1).
      l2: ridge strength.
      **options: the rest of ``sweep``'s settings (seed, init, batches, stopping, record,
        validation, engine, placement), passed on as they are.

    Returns:
      An ``LrRange``.

    Example:
      >>> import numpy as np
      >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
      >>> r = lr_range(X, y, num_steps=200)        # H = diag(4/3, 2): 2/λmax = 1
      >>> bool(r.exact), float(r.max_stable), round(float(r.fastest), 4), r.bracket()[1] > 1.0
      (True, 1.0, 0.6, True)
    """
    spec = optimizer if isinstance(optimizer, Optimizer) else Optimizer(optimizer)
    if spec.name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {spec.name!r}")
    if not 0.0 < float(target) < 1.0:
        raise ValueError(f"target must be in (0, 1), got {target!r}")
    num_rates = check_positive_int(num_rates, "num_rates", minimum=2)
    _check_options(options)
    limits = _theory(_training_rows(X, y, options), l2, spec.name, dict(spec.hyperparameters))
    exact = limits is not None and has_exact_limit(spec.name, spec.schedule) and options.get(
        "batches") is None  # the theory holds for a constant rate on the full-batch loss only
    rates = _candidates(learning_rates, limits, num_rates)
    result = sweep(X, y, learning_rates=rates, num_steps=num_steps, optimizer=spec, l2=l2,
                   **options)
    diverged = np.asarray(result.diverged, bool) | ~np.isfinite(
        np.asarray(result.final_loss, np.float64))
    reached, gap = _progress(result, target, diverged)
    fell = np.flatnonzero(diverged)
    best = np.flatnonzero(~diverged)
    limit = float("nan") if limits is None else limits.max_learning_rate
    fastest = limits.fastest_learning_rate if exact else (
        float(rates[result.best()[0]]) if best.size else float("nan"))
    number = lambda value: np.asarray(value, np.float64)  # noqa: E731  (leaves are arrays)
    return LrRange(
        learning_rates=rates,
        max_stable=number(limit if exact else _empirical_max(rates, diverged)),
        fastest=number(fastest),
        suggested=number(_soonest(rates, reached)),
        exact=np.asarray(exact, bool),
        limit=number(limit),
        first_diverged=number(float(rates[fell[0]]) if fell.size else float("nan")),
        steps_to_target=reached,
        relative_gap=gap,
        target=number(target),
        sweep=result,
        limits=limits,
    )


def _theory(X, l2, optimizer: str, hyperparameters: dict) -> Stability | None:
    """The data's stability for this optimizer, or None where there is no exact theory
    (other optimizers) or no matrix at hand (a file's rows)."""
    if isinstance(X, RowSource):
        return None
    if not has_exact_limit(optimizer):
        kind: dict[str, Any] = {}  # still the plain-GD limit, to centre the candidates
    else:
        kind = {"optimizer": optimizer, "momentum": hyperparameters.get("momentum")}
    found = stability(X, l2, **kind)
    return found if has_exact_limit(optimizer) else None


def _check_options(options: dict) -> None:
    """What the range test refuses: k folds would give each candidate k runs and k optima
    (a "fold" axis) where it reads one loss curve per rate against one optimum, and the
    theory's limit is that of all the rows, not of a fold's."""
    if "seeds" in options:
        raise ValueError("lr_range takes no seeds: it tests one start: give seed")
    stopping = options.get("stopping")
    if isinstance(stopping, Stopping) and not stopping.reference:
        raise ValueError("lr_range takes no Stopping(reference=False): it always measures "
                         "against the float64 optimum")
    if isinstance(options.get("validation"), KFolds):
        raise ValueError("lr_range takes no KFolds: it reads one run per candidate against "
                         "the optimum of all the rows; give validation=(X_val, y_val) or "
                         "jaxgd.Holdout(...) for held-out data, or "
                         "sweep(validation=jaxgd.KFolds(k)) for the folds")


def _training_rows(X, y, options: dict):
    """The rows the sweep's runs train on: with a ``Holdout``, the split's training rows,
    drawn by the sweep's own split (``holdout.resolve``, same seed, same checks); else X
    as given (``validation=`` rows are apart from X already)."""
    held = options.get("validation")
    if isinstance(X, RowSource) or not isinstance(held, Holdout):
        return X  # a file has no theory here; without a fraction every row trains
    return holdout.resolve(X, y, SimpleNamespace(
        validation=None, k_folds=None, validation_fraction=held.fraction,
        validation_seed=held.seed))[0]


def _candidates(learning_rates, limits: Stability | None, num_rates: int) -> np.ndarray:
    if learning_rates is not None:
        rates = np.asarray(learning_rates, np.float64).reshape(-1)
        if rates.size == 0 or not np.all(np.isfinite(rates) & (rates > 0)):
            raise ValueError("learning_rates must be finite positive numbers, got "
                             f"{list(np.asarray(learning_rates).reshape(-1))}")
        return np.unique(rates)
    if limits is None:
        low, high = EMPIRICAL_SPAN
        return np.geomspace(low, high, num_rates)
    limit = limits.max_learning_rate
    grid = np.geomspace(SPAN[0] * limit, SPAN[1] * limit, num_rates)
    return np.unique(np.concatenate([grid, np.asarray(BRACKET) * limit,
                                     [limits.fastest_learning_rate]]))


def _progress(result: SweepResult, target: float, diverged: np.ndarray):
    """Per run: the first logged step within ``target`` of the way to the optimum (-1 if
    never) and the final relative gap (inf where diverged)."""
    losses = np.asarray(result.losses, np.float64)
    optimum = float(result.optimal_loss)
    span = np.maximum(losses[:, 0] - optimum, np.finfo(np.float64).tiny)
    within = (losses - optimum) <= target * span[:, None]  # NaN (diverged) compares False
    steps = np.asarray(result.loss_steps)
    reached = np.where(within.any(axis=1) & ~diverged, steps[np.argmax(within, axis=1)], -1)
    gap = gap_to_optimum(np.asarray(result.final_loss), optimum) / span
    return reached.astype(np.int64), np.where(diverged, np.inf, gap)


def _empirical_max(rates: np.ndarray, diverged: np.ndarray) -> float:
    """The largest candidate with no divergence at or below it (NaN if the smallest
    diverged)."""
    fell = np.flatnonzero(diverged)
    top = fell[0] - 1 if fell.size else rates.size - 1
    return float(rates[top]) if top >= 0 else float("nan")


def _soonest(rates: np.ndarray, reached: np.ndarray) -> float:
    ok = np.flatnonzero(reached >= 0)
    if not ok.size:
        return float("nan")
    return float(rates[ok[np.argmin(reached[ok])]])  # argmin: the first, smallest rate


def describe(found: LrRange) -> str:
    """A few lines for people: the range, the fastest and the suggested rate.

    Example:
      >>> import numpy as np
      >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
      >>> print(describe(lr_range(X, y, num_steps=200)).splitlines()[0])
      max stable η = 1 (exact, 2/λmax; the sweep's first diverging candidate: 1.02)
    """
    how = "exact, " + _limit_name(found.limits) if found.exact else "empirical"
    fell = "none diverged" if math.isnan(found.first_diverged) else (
        f"the sweep's first diverging candidate: {found.first_diverged:.4g}")
    lines = [f"max stable η = {found.max_stable:.4g} ({how}; {fell})",
             f"fastest η = {found.fastest:.4g} ({'exact' if found.exact else 'lowest final loss'})"]
    if math.isnan(found.suggested):
        lines.append(f"suggested η: none of the candidates reached a gap of {found.target:g} "
                     "of the way to the optimum; give more steps")
    else:
        index = int(np.flatnonzero(found.learning_rates == found.suggested)[0])
        lines.append(f"suggested η = {found.suggested:.4g} (gap within {found.target:g} of the "
                     f"way to the optimum at step {int(found.steps_to_target[index])})")
    return "\n".join(lines)


def summary(found: LrRange) -> dict[str, Any]:
    """The findings as plain JSON-ready data (NaN and inf as None), what ``jaxgd lr-range``
    writes to lr_range.json and ``jaxgd.figures.lr_range`` draws.

    Example:
      >>> import numpy as np
      >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
      >>> s = summary(lr_range(X, y, num_steps=50, learning_rates=[0.1, 1.5]))
      >>> s["max_stable"], s["limit_name"], s["candidates"][1]["diverged"]
      (1.0, '2/λmax', True)
    """
    final = np.asarray(found.sweep.final_loss, np.float64)
    diverged = np.asarray(found.sweep.diverged, bool)
    candidates = [
        {"learning_rate": float(rate), "final_loss": _number(final[k]),
         "relative_gap": _number(found.relative_gap[k]),
         "steps_to_target": int(found.steps_to_target[k]), "diverged": bool(diverged[k])}
        for k, rate in enumerate(found.learning_rates)]
    return {
        "max_stable": _number(found.max_stable), "fastest": _number(found.fastest),
        "suggested": _number(found.suggested), "exact": bool(found.exact),
        "limit": _number(found.limit), "limit_name": _limit_name(found.limits),
        "first_diverged": _number(found.first_diverged), "target": float(found.target),
        "optimal_loss": _number(found.sweep.optimal_loss),
        "candidates": candidates,
    }


def _number(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _limit_name(limits: Stability | None) -> str:
    if limits is None:
        return "no theory"
    return limits.limit_name


__all__ = ["LrRange", "describe", "lr_range", "summary"]
