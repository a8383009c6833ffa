"""``[optimizer] track_sharpness``: Adam's preconditioned sharpness in a ``jaxgd run``.

The library records η·λmax(D^-1/2 H D^-1/2), D = diag(√v̂ + ε), at every logged step of
every run (``jaxgd.theory.sharpness``), stable below 2(1 + b1)/(1 − b1). Here:

- the library refuses the key where it cannot record it (``jaxgd.pipeline.options
  .make_config``), in the config's words, before the run writes anything (``jaxgd.cli.plan``);
- ``history_fields`` are what history.npz keeps: ``sharpness``, shaped like ``losses``
  (NaN after a divergence, as the library records it), and ``sharpness_threshold`` per run
  (the threshold of each run's b1, which a grid or a sample may vary);
- ``run_fields`` and ``summary_block`` are what summary.json says: per run the largest
  sharpness seen at a logged step and whether it reached the run's threshold; the threshold
  once (``null`` where b1 varies between runs: each run then carries its own).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from jaxgd.core.optimizers import OPTIMIZERS
from jaxgd.theory.sharpness import adam_threshold

if TYPE_CHECKING:  # the config and the plan import this module
    from jaxgd.cli.config import Config
    from jaxgd.cli.plan import Plan

MEASURE = "η·λmax(D^-1/2 H D^-1/2), D = diag(√v̂ + ε)"
FORMULA = "2(1+b1)/(1-b1)"


def tracking(config: Config) -> bool:
    """Whether the config asks for the sharpness (configs made before the key: no)."""
    return bool(getattr(config.optimizer, "track_sharpness", False))


def thresholds(plan: Plan, shape: tuple[int, ...]) -> np.ndarray:
    """Each run's threshold 2(1 + b1)/(1 − b1), shaped like the grid (``shape``): b1 from
    ``optimizer.grid``, from the drawn points (along the first axis), or the one fixed
    value (``optimizer.hyperparameters``, else adam's default)."""
    optimizer = plan.config.optimizer
    b1 = optimizer.hyperparameters.get("b1", OPTIMIZERS[optimizer.name]["b1"])
    values, axis = np.asarray(float(b1)), 0
    if "b1" in plan.grid:
        values, axis = np.asarray(plan.grid["b1"], np.float64), plan.axes.index("b1")
    elif "b1" in plan.sampled:
        values = np.asarray(plan.sampled["b1"], np.float64)
    along = [-1 if i == axis else 1 for i in range(len(shape))] if values.ndim else []
    return np.broadcast_to(adam_threshold(values.reshape(along)), shape).astype(np.float64)


def history_fields(plan: Plan, grid: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """history.npz's ``sharpness`` and ``sharpness_threshold`` ({} when not tracked)."""
    if "sharpness" not in grid:
        return {}
    return {"sharpness": grid["sharpness"],
            "sharpness_threshold": thresholds(plan, np.shape(grid["final_loss"]))}


def peaks(history: dict[str, np.ndarray]) -> np.ndarray:
    """Each run's largest sharpness at a logged step (float64; NaN entries, after a
    divergence, are skipped; -inf for a run with none).

    Example:
      >>> peaks({"sharpness": np.array([[1.0, 40.0, np.nan], [np.nan] * 3])}).tolist()
      [40.0, -inf]
    """
    sharpness = np.asarray(history["sharpness"], np.float64)
    return np.where(np.isnan(sharpness), -np.inf, sharpness).max(axis=-1, initial=-np.inf)


def run_fields(history: dict[str, np.ndarray], peak: np.ndarray, index: tuple[int, ...],
               varies: bool) -> dict[str, Any]:
    """summary.json's sharpness fields of run ``index`` ({} when not tracked): the largest
    value seen (None if none was finite), whether it reached the threshold, and with b1
    varying between runs, the run's own threshold."""
    if "sharpness" not in history:
        return {}
    top, threshold = float(peak[index]), float(history["sharpness_threshold"][index])
    fields = {"max_sharpness": top if np.isfinite(top) else None,
              "reached_sharpness_threshold": bool(top >= threshold)}
    if varies:
        fields["sharpness_threshold"] = threshold
    return fields


def summary_block(history: dict[str, np.ndarray], peak: np.ndarray) -> dict[str, Any] | None:
    """summary.json's ``sharpness`` block: what was measured, the threshold (once; None
    where b1 varies between runs) and how many runs reached it. None when not tracked.

    Example:
      >>> history = {"sharpness": np.array([[1.0, 40.0], [2.0, np.nan]]),
      ...            "sharpness_threshold": np.array([38.0, 38.0])}
      >>> block = summary_block(history, peaks(history))
      >>> block["threshold"], block["runs_reaching_threshold"], block["runs"]
      (38.0, 1, 2)
    """
    if "sharpness" not in history:
        return None
    threshold = np.asarray(history["sharpness_threshold"], np.float64)
    one = bool(np.all(threshold == threshold.flat[0]))
    return {"measure": MEASURE, "threshold_formula": FORMULA,
            "threshold": float(threshold.flat[0]) if one else None,
            "at": "every logged step (train.log_every)",
            "runs_reaching_threshold": int(np.sum(peak >= threshold)),
            "runs": int(threshold.size)}


def varies(history: dict[str, np.ndarray]) -> bool:
    """Whether the runs' thresholds differ (b1 gridded or drawn)."""
    threshold = np.asarray(history.get("sharpness_threshold", np.zeros(1)))
    return bool(threshold.size and np.any(threshold != threshold.flat[0]))


__all__ = ["history_fields", "peaks", "run_fields", "summary_block",
           "thresholds", "tracking", "varies"]
