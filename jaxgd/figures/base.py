"""What every figure shares: the matplotlib import, a results record's fields, labels, limits.

The figures draw on ``matplotlib.figure.Figure`` objects directly, never through pyplot, so
drawing touches no global state (no backend switch, no figure manager) and works headless.
PNGs are written by the Agg renderer that ``Figure.savefig`` picks for the format.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

PLOT_EXTRA = 'install the plot extra: pip install "jaxgd[plot]"'

try:
    import matplotlib
    import matplotlib.style
    from matplotlib.figure import Figure
    from matplotlib.ticker import LogFormatter
except ImportError as error:
    raise ImportError(PLOT_EXTRA) from error

#: A results record's arrays (``history.npz``) and its summary (``summary.json``).
History = Mapping[str, Any]
Meta = Mapping[str, Any]

#: Size and style settings applied while drawing, on top of matplotlib's defaults, so a
#: user's matplotlibrc does not change the pictures (and the PNGs stay reproducible).
RC = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "figure.titlesize": 12,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "legend.framealpha": 0.9,
    "savefig.bbox": "standard",
    "savefig.facecolor": "white",
    "figure.facecolor": "white",
}

#: Colours with a fixed meaning in every figure.
DIVERGED_COLOR = "#d62728"
OPTIMUM_COLOR = "0.35"
MODEL_COLOR = "#ff7f0e"
DATA_COLOR = "#1f77b4"
ERROR_COLOR = "#d62728"
VALIDATION_COLOR = "#9467bd"  # held-out losses, beside the training losses


def style():
    """A context with matplotlib's defaults plus ``RC``; wrap drawing and saving in it."""
    return matplotlib.style.context(["default", RC])


def new_figure(width: float, height: float) -> Figure:
    """A free-standing figure (no pyplot) with constrained layout, at 100 dpi."""
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


class PlainLogFormatter(LogFormatter):
    """Log-axis tick labels as plain numbers (``20``, ``600``, ``0.01``, ``1e5``).

    Which ticks get a label is matplotlib's choice (decades, and the minor ticks when the
    axis spans few decades); only the text changes, from ``6×10²`` to ``600``.
    """

    def __call__(self, x, pos=None):
        return plain_number(x) if super().__call__(x, pos) else ""


def plain_number(x: float) -> str:
    if x == 0 or 1e-3 <= abs(x) < 1e5:
        return f"{x:.6g}"
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa.removesuffix('.0')}e{int(exponent)}"


def log_axis(ax, which: str = "y") -> None:
    """Puts ``ax``'s x or y axis on a log scale with plain-number tick labels."""
    axis = ax.yaxis if which == "y" else ax.xaxis
    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    axis.set_major_formatter(PlainLogFormatter(labelOnlyBase=False))
    axis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))


def field(history: History, key: str, dtype=np.float64) -> np.ndarray:
    """``history[key]`` as a NumPy array, with a clear error when the record lacks it."""
    try:
        value = history[key]
    except KeyError:
        raise KeyError(
            f"the results history has no {key!r} (it has: {', '.join(sorted(history))}); "
            "is it a jaxgd history.npz?"
        ) from None
    return np.asarray(value, dtype=dtype)


#: Per-run fields of a results record: the grid's axes first, then the field's own.
PER_RUN = ("losses", "epoch_losses", "final_loss", "converged_step", "diverged",
           "diverged_step", "snapshot_weight", "snapshot_bias", "snapshot_loss",
           "validation_losses", "final_validation_loss", "sharpness", "sharpness_threshold")


def held_out_curve(history: History, index) -> np.ndarray | None:
    """Run ``index``'s held-out losses with its final held-out loss appended (as the
    training curve appends ``final_loss``), or None for a run without held-out data."""
    if "validation_losses" not in history:
        return None
    return finite(np.append(field(history, "validation_losses")[index],
                            field(history, "final_validation_loss")[index]))


def runs_view(history: History) -> History:
    """The record seen as (K learning rates, S runs each): what every figure draws.

    A record of a grid over more than learning rates and seeds (``grid_axes``, e.g.
    ``["learning_rate", "b1", "b2", "seed"]``) holds its per-run arrays with every axis;
    here the axes after the learning rate are flattened into one, in row-major order,
    ``best_index`` becomes (k, s), and ``run_labels`` names each of the S runs ("b1 0.9,
    b2 0.999, seed 0"). Other records are returned as they are.

    Example:
      >>> import numpy as np
      >>> record = {"grid_axes": np.array(["learning_rate", "b1", "seed"]),
      ...           "grid_values_b1": np.array([0.5, 0.9]), "seeds": np.array([0]),
      ...           "losses": np.zeros((3, 2, 1, 10)), "best_index": np.array([2, 1, 0])}
      >>> view = runs_view(record)
      >>> view["losses"].shape, view["best_index"].tolist(), view["run_labels"].tolist()
      ((3, 2, 10), [2, 1], ['b1 0.5, seed 0', 'b1 0.9, seed 0'])
    """
    if "grid_axes" not in history:
        return history
    axes = [str(axis) for axis in np.asarray(history["grid_axes"]).reshape(-1)]
    view = {key: value for key, value in history.items() if key != "grid_axes"}
    losses = field(history, "losses")
    if len(axes) < 2 or losses.ndim != len(axes) + 1:
        raise ValueError(f"history['losses'] must have the {len(axes)} grid axes {axes} and "
                         f"the steps, got shape {losses.shape}")
    shape = losses.shape[: len(axes)]
    K, S = shape[0], math.prod(shape[1:])
    for key in PER_RUN:
        if key in history:
            value = np.asarray(history[key])
            view[key] = value.reshape(K, S, *value.shape[len(axes):])
    best = field(history, "best_index", np.int64).reshape(-1)
    if best.size == len(axes) and best.min() >= 0 and all(
            i < n for i, n in zip(best, shape, strict=True)):
        view["best_index"] = np.array([best[0], np.ravel_multi_index(best[1:], shape[1:])])
    else:
        view["best_index"] = np.array([-1, -1])
    values = {axis: np.asarray(history.get(f"grid_values_{axis}",
                                           history.get("seeds") if axis == "seed" else []))
              for axis in axes[1:]}
    labels = []
    for index in np.ndindex(*shape[1:]):
        parts = [f"{axis} {fmt(values[axis][i]) if values[axis].size > i else '?'}"
                 for axis, i in zip(axes[1:], index, strict=True)]
        labels.append(", ".join(parts))
    view["run_labels"] = np.array(labels)
    sizes = [_count(n, "learning rate") if axis == "learning_rate" else
             _count(n, "seed") if axis == "seed" else _count(n, f"{axis} value")
             for axis, n in zip(axes, shape, strict=True)]
    view["grid_text"] = np.array(" × ".join(sizes))
    return view


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def run_label(history: History, s: int) -> str:
    """The name of run ``s`` of a learning rate: "seed 0", or its grid values."""
    if "run_labels" in history:
        return str(np.asarray(history["run_labels"]).reshape(-1)[s])
    return f"seed {int(field(history, 'seeds', np.int64)[s])}"


def grid_text(history: History) -> str:
    """The grid's size in words: "4 learning rates × 2 b1 × 2 b2 × 1 seed"."""
    if "grid_text" in history:
        return str(np.asarray(history["grid_text"]))
    K, S, _ = grid_shape(history)
    return f"{_count(K, 'learning rate')} × {_count(S, 'seed')}"


def history_steps(history: History) -> tuple[np.ndarray, int]:
    """The step of each loss history entry, and the run's number of steps.

    Entry i of ``losses`` is the loss before update ``loss_steps[i]`` (0, k, 2k, ... with
    ``log_every = k``); records without ``loss_steps`` have one entry per step.
    """
    T = grid_shape(history)[2]
    if "loss_steps" not in history:
        return np.arange(T), T
    steps = field(history, "loss_steps", np.int64).reshape(-1)
    if steps.size != T:
        raise ValueError(f"history['loss_steps'] has {steps.size} steps but the losses have "
                         f"{T} entries")
    num_steps = int(np.asarray(history["num_steps"]).reshape(-1)[0]) if (
        "num_steps" in history) else int(steps[-1]) + 1 if steps.size else T
    return steps, num_steps


def entry_index(steps: np.ndarray, step: int) -> int:
    """The index of the last history entry at or before ``step``."""
    return max(int(np.searchsorted(steps, step, side="right")) - 1, 0)


def grid_shape(history: History) -> tuple[int, int, int]:
    """(K learning rates, S seeds, T steps) of the record's loss histories."""
    losses = field(history, "losses")
    if losses.ndim != 3:
        raise ValueError(f"history['losses'] must be (K, S, T), got shape {losses.shape}")
    K, S, T = losses.shape
    return K, S, T


def n_features(history: History) -> int:
    """d, the number of features of the data in the record."""
    X = field(history, "X")
    if X.ndim != 2:
        raise ValueError(f"history['X'] must be (n, d), got shape {X.shape}")
    return X.shape[1]


def best_run(history: History) -> tuple[int, int] | None:
    """(k, s) of the best run, or None when every run diverged (``best_index`` is -1)."""
    index = field(history, "best_index", np.int64).reshape(-1)
    K, S, _ = grid_shape(history)
    if index.size != 2 or index.min() < 0:
        return None
    k, s = int(index[0]), int(index[1])
    if k >= K or s >= S:
        raise ValueError(f"history['best_index'] {(k, s)} is outside the (K, S) = {(K, S)} grid")
    return k, s


def finite(values) -> np.ndarray:
    """float64 copy with NaN where the input was NaN or infinite (matplotlib skips NaN)."""
    values = np.array(values, dtype=np.float64)
    values[~np.isfinite(values)] = np.nan
    return values


def loggable(values) -> np.ndarray:
    """``finite`` and positive: NaN where a log axis could not show the value."""
    values = finite(values)
    with np.errstate(invalid="ignore"):
        values[~(values > 0)] = np.nan
    return values


def use_log(log_scale: bool, *arrays) -> bool:
    """A log axis only when asked for and some value could be shown on it."""
    return log_scale and any(np.isfinite(loggable(a)).any() for a in arrays)


def fmt(value, digits: int = 4) -> str:
    """A number in few characters: ``0.0123``, ``1.47``, ``3.2e+04``; ``n/a`` if not finite."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}g}"


def target_name(meta: Meta) -> str:
    return str(meta.get("target_name") or "target")


def feature_names(meta: Meta, d: int) -> list[str]:
    names = list(meta.get("feature_names") or [])
    if len(names) != d:
        names = [f"x{i}" for i in range(d)]
    return [str(name) for name in names]


def mse_label(meta: Meta) -> str:
    """The loss axis's label, with units: ``MSE (mpg²)``."""
    return f"MSE ({target_name(meta)}²)"


def suptitle(fig: Figure, meta: Meta, detail: str = "") -> None:
    """The record's title (data set and task), the optimizer when it is not plain SGD, and
    what the figure shows."""
    title = str(meta.get("title") or "jaxgd")
    optimizer = meta.get("optimizer")
    if optimizer and str(optimizer).lower() != "sgd":
        title += f" (optimizer: {optimizer})"
    if detail:  # on a line of its own when one line would run off a 10-inch figure
        title += ("\n" if len(title) + len(detail) > 90 else " — ") + detail
    # A "$" would start matplotlib's mathtext and garble the title: show it as it is.
    fig.suptitle(title.replace("$", r"\$"), fontweight="bold")


def max_learning_rate(meta: Meta) -> float | None:
    """2/λmax from the summary when it is a usable number, else None."""
    value = meta.get("max_learning_rate")
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def optimal_loss(history: History) -> float | None:
    if "optimal_loss" not in history:
        return None
    value = float(np.asarray(history["optimal_loss"], np.float64).reshape(-1)[0])
    return value if math.isfinite(value) else None


def plot_indices(num_steps: int, keep=(), max_points: int = 2000) -> np.ndarray:
    """Which steps of a history to draw: all, or an even subset plus the steps in ``keep``.

    Thousands of runs of 100k steps each would otherwise make a slow, heavy picture that
    looks the same.
    """
    if num_steps <= max_points:
        return np.arange(num_steps)
    keep = [int(i) for i in keep if 0 <= int(i) < num_steps]
    evenly = np.linspace(0, num_steps - 1, max_points).astype(int)
    return np.unique(np.concatenate([evenly, keep]).astype(int))


def log_limits(values, reference=(), headroom: float = 1.0,
               cap: float | None = None) -> tuple[float, float] | None:
    """Limits for a log axis showing the positive finite ``values`` and ``reference`` lines.

    ``headroom`` > 1 leaves that fraction of the axis (in log space) above the data for
    markers at the top; ``cap`` clips the top (a diverging run then leaves the axes).
    """
    data = loggable(np.concatenate([np.ravel(values), np.ravel(reference)]))
    data = data[np.isfinite(data)]
    if cap is not None and np.isfinite(cap) and cap > 0:
        data = data[data <= cap] if (data <= cap).any() else np.array([cap])
    if data.size == 0:
        return None
    lo, hi = float(data.min()), float(data.max())
    if cap is not None and np.isfinite(cap) and np.any(loggable(values) > cap):
        hi = cap
    log_lo, log_hi = math.log10(lo), math.log10(hi)
    span = max(log_hi - log_lo, 0.3)
    log_lo -= 0.05 * span
    log_hi = log_lo + (log_hi + 0.05 * span - log_lo) * headroom
    return 10**log_lo, 10**log_hi


def lr_limits(rates, extra=()) -> tuple[float, float]:
    """Log-axis limits that hold every learning rate (and ``extra`` marks) with a margin."""
    values = loggable(np.concatenate([np.ravel(rates), np.ravel(extra)]))
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 1e-3, 1.0
    lo, hi = float(values.min()), float(values.max())
    factor = max((hi / lo) ** 0.06, 1.6)
    return lo / factor, hi * factor
