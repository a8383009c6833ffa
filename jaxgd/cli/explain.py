"""Why each diverged run diverged, in a sentence, from the stability theory
(``jaxgd.stability``): for summary.json and the table ``jaxgd run`` prints.

With plain gradient descent, momentum or Nesterov at a constant rate on the full batch, the
limit is exact: a run above it must diverge ("η = 1 > 2/λmax = 0.0698: diverged"), and one
at or below it converges in exact arithmetic, so its divergence is explained as what it
is: rounding near the limit, or the divergence test catching a transient rise. Otherwise
(Adam and the rest, schedules, mini-batches, a grid over β) no limit is exact, and the
sentence says so, giving plain gradient descent's full-batch limit for scale.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax.numpy as jnp

from jaxgd.cli.settings import limit_kind
from jaxgd.theory.stability import Stability, has_exact_limit

if TYPE_CHECKING:
    from jaxgd.cli.plan import Plan

def explainer(plan: Plan) -> Callable[[dict[str, Any]], str]:
    """A function from a run's grid point (its ``learning_rate``, and ``l2`` and ``fold``
    when they are axes) to the sentence explaining its divergence.

    Each run has the limit of its own l2 on the rows it trains on: with held-out data the
    training rows, with k folds its own fold's (``Plan.stability``).
    """
    kind = limit_kind(plan.config, plan.grid)
    limits = {(max(plan.l2_values), fold): found
              for fold, found in enumerate(plan.fold_limits)}
    folds = range(plan.k_folds or 1)
    for l2 in plan.l2_values:
        for fold in folds:
            if (l2, fold) not in limits:
                limits[l2, fold] = plan.stability(l2, fold)
    config = plan.config
    why = _not_exact(config.optimizer.name, config.optimizer.schedule,
                     config.train.batch_size is not None, kind)
    factor = config.train.divergence_factor
    dtype = jnp.dtype(jnp.result_type(float)).name

    def explain(point: dict[str, Any]) -> str:
        fold = point.get("fold", 0)
        own = limits[point.get("l2", plan.config.train.l2), fold]
        rows = f" on fold {fold}'s training rows" if plan.k_folds else ""
        return sentence(point["learning_rate"], own, why, factor, dtype, rows)

    return explain


def sentence(rate: float, limits: Stability, not_exact: str | None = None,
             divergence_factor: float = 1e4, dtype: str = "float32", rows: str = "") -> str:
    """The sentence for one diverged run at learning rate ``rate``; ``rows`` says which
    rows ``limits`` are of, after the limit (e.g. " on fold 2's training rows").

    Example:
      >>> import numpy as np
      >>> from jaxgd.theory.stability import stability
      >>> limits = stability(np.array([[-1.0], [1.0]]))       # 2/λmax = 1
      >>> sentence(1.5, limits)
      'η = 1.5 > 2/λmax = 1: diverged'
      >>> sentence(0.99, limits)[:45]
      'η = 0.99 ≤ 2/λmax = 1, yet diverged: below th'
    """
    beta = f" (β = {limits.momentum:g})" if limits.optimizer != "sgd" else ""
    limit = f"{limits.limit_name} = {limits.max_learning_rate:.4g}{beta}{rows}"
    if not_exact is not None:
        return (f"η = {rate:.4g}: diverged; {not_exact}, so no limit is exact here "
                f"(plain gradient descent's full-batch {limit} for scale)")
    if rate > limits.max_learning_rate:
        return f"η = {rate:.4g} > {limit}: diverged"
    return (f"η = {rate:.4g} ≤ {limit}, yet diverged: below the limit exact arithmetic "
            f"converges, so either {dtype} rounding tipped a rate this close to the limit "
            f"over, or the loss rose above {divergence_factor:g}× its start on the way "
            "(the divergence test)")


def _not_exact(optimizer: str, schedule: str, minibatch: bool, kind: dict) -> str | None:
    """Why the run's optimizer has no exact limit here (``has_exact_limit``, on the full
    batch, with one β: ``limit_kind``), or None when it has one."""
    if not has_exact_limit(optimizer):
        return f"{optimizer} scales each step by its own gradient history"
    if not has_exact_limit(optimizer, schedule):
        return f"the {schedule} schedule changes the rate every step"
    if minibatch:
        return "mini-batch gradients are noisy versions of the full-batch one"
    if optimizer != "sgd" and not kind:
        return "β varies across the grid"
    return None


__all__ = ["explainer", "sentence"]
