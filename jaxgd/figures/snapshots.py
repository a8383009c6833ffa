"""The model at the beginning, middle and end of training, one panel per snapshot.

As in the crash course, each panel shows the data, the model, and a thin line from the
model's prediction to each data point: that point's error, whose square is its loss. With
one feature the model is a line over the feature; with several, the panel plots each row's
actual target against its prediction, so a perfect model puts every point on the diagonal.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from jaxgd.figures import base


def skip_reason(history: base.History, meta: base.Meta) -> str | None:
    """Why this figure cannot be drawn from the record, or None when it can."""
    if base.best_run(history) is None:
        return "every run diverged: there is no best run whose snapshots to draw"
    if base.field(history, "snapshot_steps").size == 0:
        return "the record holds no snapshots"
    if base.field(history, "y").size == 0:
        return "the record holds no data rows"
    return None


def draw(history: base.History, meta: base.Meta, *, log_scale: bool = True) -> Figure:
    """One panel per snapshot of the best run: data, model, and each point's error.

    Args:
      history: a results record (see ``jaxgd.figures``).
      meta: its summary: ``feature_names``, ``target_name``, ``title``.
      log_scale: unused (the panels show data, not losses); accepted for a uniform API.

    Returns:
      A ``matplotlib.figure.Figure``.
    """
    del log_scale
    reason = skip_reason(history, meta)
    if reason is not None:
        raise ValueError(reason)
    k, s = base.best_run(history)
    X, y = base.field(history, "X"), base.field(history, "y")
    steps = base.field(history, "snapshot_steps", np.int64)
    weights = base.field(history, "snapshot_weight")[k, s]  # (P, d)
    biases = base.field(history, "snapshot_bias")[k, s]  # (P,)
    losses = base.field(history, "snapshot_loss")[k, s]  # (P,)
    rate = base.field(history, "learning_rates")[k]
    d = X.shape[1]
    with np.errstate(all="ignore"):
        predictions = X @ weights.T + biases  # (n, P)
    usable = np.isfinite(weights).all(axis=1) & np.isfinite(biases)
    predictions[:, ~usable] = np.nan
    predictions = base.finite(predictions)

    P = steps.size
    ncols = min(P, 4)
    nrows = math.ceil(P / ncols)
    fig = base.new_figure(min(3.7 * ncols, 15), 3.5 * nrows + 0.7)
    base.suptitle(fig, meta, f"the best run (η = {base.fmt(rate)}, {base.run_label(history, s)})"
                             " as it trains")
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    for ax in axes[P:]:
        ax.set_visible(False)

    target = base.target_name(meta)
    n = y.size
    point_size = 28 if n <= 50 else 12 if n <= 500 else 4
    error_width = 1.0 if n <= 50 else 0.6 if n <= 500 else 0.3
    error_alpha = 0.8 if n <= 50 else 0.45 if n <= 500 else 0.25

    if d == 1:
        x = X[:, 0]
        lo, hi = float(x.min()), float(x.max())
        pad = 0.05 * (hi - lo) if hi > lo else max(abs(lo), 1.0) * 0.1
        line_x = np.array([lo - pad, hi + pad])
        with np.errstate(all="ignore"):
            line_y = base.finite(np.outer(line_x, weights[:, 0]) + biases)  # (2, P)
        line_y[:, ~usable] = np.nan
        horizontal = x
        limits_x = (line_x[0], line_x[1])
        limits_y = _span(y, predictions, line_y)
        xlabel, ylabel = base.feature_names(meta, 1)[0], target
    else:
        horizontal = None
        limits_x = limits_y = _span(y, predictions)
        xlabel, ylabel = f"predicted {target}", f"actual {target}"

    for p, ax in enumerate(axes[:P]):
        prediction = predictions[:, p]
        if d == 1:
            xs = horizontal
            ax.plot(line_x, line_y[:, p], color=base.MODEL_COLOR, lw=2.2, zorder=3)
        else:
            xs = prediction
            ax.plot(limits_x, limits_x, color=base.MODEL_COLOR, lw=1.8, zorder=3)
        # From the model's prediction to the data point: each point's error.
        segments = np.stack([np.column_stack([xs, prediction]), np.column_stack([xs, y])],
                            axis=1)
        segments = segments[np.isfinite(segments).all(axis=(1, 2))]
        ax.add_collection(LineCollection(segments, colors=base.ERROR_COLOR, lw=error_width,
                                         alpha=error_alpha, zorder=1))
        shown = np.isfinite(xs)
        ax.scatter(xs[shown], y[shown], s=point_size, color=base.DATA_COLOR, zorder=2,
                   edgecolors="none")
        loss = losses[p] if p < losses.size else np.nan
        ax.set_title(f"step {int(steps[p])} — MSE {base.fmt(loss)}"
                     if usable[p] else f"step {int(steps[p])} — diverged")
        if p % ncols == 0:
            ax.set_ylabel(ylabel)
        if p >= P - ncols:
            ax.set_xlabel(xlabel)
            ax.tick_params(labelbottom=True)
    axes[0].set_xlim(*limits_x)
    axes[0].set_ylim(*limits_y)
    # Proxies, so the legend stays readable when thousands of faint lines and dots are drawn.
    handles = [
        Line2D([], [], color=base.MODEL_COLOR, lw=2,
               label="model: ŷ = w·x + b" if d == 1 else "perfect prediction (ŷ = y)"),
        Line2D([], [], color=base.ERROR_COLOR, lw=1, alpha=0.8,
               label="error: ŷ − y (loss = its square)"),
        Line2D([], [], ls="", marker="o", ms=5, color=base.DATA_COLOR, label="data"),
    ]
    axes[0].legend(handles=handles, loc="best", fontsize=8)
    return fig


def _span(*arrays) -> tuple[float, float]:
    """Limits that show every finite value with a 5% margin."""
    values = np.concatenate([base.finite(a).ravel() for a in arrays])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = float(values.min()), float(values.max())
    pad = 0.05 * (hi - lo) if hi > lo else max(abs(lo), 1.0) * 0.1
    return lo - pad, hi + pad
