"""What a sweep says about the learning rate: final loss and steps to converge against it.

Left, the final loss of each run: flat at the optimum across the good learning rates, higher
where too small a rate has not arrived yet. Right, the steps each run took to converge: they
fall as the rate grows, until near 2/λmax (plain gradient descent's stability limit, drawn
when known) the runs oscillate and then diverge. Diverged runs are red crosses along the top
edge; runs that never converged are hollow markers.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from jaxgd.figures import base
from jaxgd.figures.sweep_curves import skip_reason

__all__ = ["draw", "skip_reason"]

#: Fraction of each panel's height kept free at the top for diverged / not-converged markers.
TOP_BAND = 0.86
MARKER_ROW = 0.94
CONVERGED_COLOR = "#1f77b4"
CRAWLING_COLOR = "#ff7f0e"
BEST_COLOR = "#ffd700"


def draw(history: base.History, meta: base.Meta, *, log_scale: bool = True) -> Figure:
    """Final loss and steps to converge against learning rate, for every run of a sweep.

    Args:
      history: a results record (see ``jaxgd.figures``).
      meta: its summary: ``target_name``, ``title``, ``max_learning_rate`` (2/λmax or None).
      log_scale: draw the final loss on a log axis.

    Returns:
      A ``matplotlib.figure.Figure``.
    """
    K, S, _ = base.grid_shape(history)
    _, T = base.history_steps(history)  # steps per run
    rates = base.field(history, "learning_rates")
    final = base.finite(base.field(history, "final_loss"))
    converged_step = base.field(history, "converged_step", np.int64)
    diverged = base.field(history, "diverged", bool) | ~np.isfinite(final)
    converged = (converged_step >= 0) & ~diverged
    crawling = ~converged & ~diverged
    optimum = base.optimal_loss(history)
    limit = base.max_learning_rate(meta)
    best = base.best_run(history)
    x = np.broadcast_to(rates[:, None], (K, S))

    fig = base.new_figure(11, 4.4)
    base.suptitle(fig, meta, f"{base.grid_text(history)}, {T} steps each")
    ax_loss, ax_steps = fig.subplots(1, 2)
    for ax in (ax_loss, ax_steps):
        base.log_axis(ax, "x")
        ax.set_xlim(*base.lr_limits(rates, [] if limit is None else [limit]))
        ax.set_xlabel("learning rate η (log scale)")
        if limit is not None:
            ax.axvline(limit, color="0.2", ls="-.", lw=1.2)

    # Left: final loss (and the held-out loss, what the best run was picked by).
    log = base.use_log(log_scale, final[~diverged])
    shown = final.copy()
    shown[diverged] = np.nan
    held = None
    if "final_validation_loss" in history:
        held = base.finite(base.field(history, "final_validation_loss"))
        held = np.where(diverged, np.nan, held)
    both = shown if held is None else np.concatenate([shown, held], axis=1)
    if log:
        base.log_axis(ax_loss, "y")
        shown = base.loggable(shown)
        held = None if held is None else base.loggable(held)
        both = base.loggable(both)
        limits = base.log_limits(both, [] if optimum is None else [optimum],
                                 headroom=1 / TOP_BAND)
    else:
        limits = _linear_limits(both, [] if optimum is None else [optimum])
    if limits is not None:
        ax_loss.set_ylim(*limits)
    median = _median_over_seeds(shown)
    ax_loss.plot(rates, median, color="0.6", lw=1, zorder=1)
    ax_loss.scatter(x[converged], shown[converged], s=36, color=CONVERGED_COLOR, zorder=3)
    ax_loss.scatter(x[crawling], shown[crawling], s=36, facecolors="white",
                    edgecolors=CRAWLING_COLOR, linewidths=1.5, zorder=3)
    if held is not None:
        ax_loss.scatter(x[~diverged], held[~diverged], s=30, marker="D", zorder=3,
                        facecolors="white", edgecolors=base.VALIDATION_COLOR, linewidths=1.5)
    if optimum is not None:
        ax_loss.axhline(optimum, color=base.OPTIMUM_COLOR, ls=":", lw=1.5, zorder=2)
    if best is not None:
        picked = shown if held is None else held  # the loss the best run was picked by
        ax_loss.scatter([rates[best[0]]], [picked[best]], marker="*", s=200, color=BEST_COLOR,
                        edgecolors="black", linewidths=0.8, zorder=4)
    _top_row(ax_loss, x[diverged], "x", color=base.DIVERGED_COLOR)
    ax_loss.set_ylabel("final " + base.mse_label(meta) + (", log scale" if log else ""))
    ax_loss.set_title("Final loss after the last step")

    # Right: steps to converge.
    steps = np.where(converged, converged_step, np.nan).astype(np.float64)
    ax_steps.set_ylim(0, T / TOP_BAND)
    ax_steps.axhline(T, color="0.5", ls=":", lw=1)
    ax_steps.plot(rates, _median_over_seeds(steps), color="0.6", lw=1, zorder=1)
    ax_steps.scatter(x[converged], steps[converged], s=36, color=CONVERGED_COLOR, zorder=3)
    if best is not None and converged[best]:
        ax_steps.scatter([rates[best[0]]], [steps[best]], marker="*", s=200, color=BEST_COLOR,
                         edgecolors="black", linewidths=0.8, zorder=4)
    _top_row(ax_steps, x[diverged], "x", color=base.DIVERGED_COLOR)
    _top_row(ax_steps, x[crawling], "^", facecolors="white", edgecolors=CRAWLING_COLOR)
    ax_steps.set_ylabel("steps to converge (iterations)")
    ax_steps.set_title(f"Steps to converge (dotted: all {T} steps)")

    handles = []
    if converged.any():
        handles.append(Line2D([], [], ls="", marker="o", color=CONVERGED_COLOR,
                              label="converged"))
    if crawling.any():
        handles.append(Line2D([], [], ls="", marker="o", mfc="white", mec=CRAWLING_COLOR,
                              mew=1.5, label=f"not converged in {T} steps (right: ▲ at top)"))
    if diverged.any():
        handles.append(Line2D([], [], ls="", marker="x", color=base.DIVERGED_COLOR, mew=2,
                              ms=8, label="diverged (× at top)"))
    if held is not None:
        handles.append(Line2D([], [], ls="", marker="D", mfc="white",
                              mec=base.VALIDATION_COLOR, mew=1.5,
                              label="held-out loss (left)"))
    if best is not None:
        handles.append(Line2D([], [], ls="", marker="*", ms=13, color=BEST_COLOR, mec="black",
                              label="best run" + ("" if held is None else
                                                  " (by held-out loss)")))
    if optimum is not None:
        handles.append(Line2D([], [], color=base.OPTIMUM_COLOR, ls=":", lw=1.5,
                              label=f"least-squares optimum ({base.fmt(optimum)})"))
    if limit is not None:
        handles.append(Line2D([], [], color="0.2", ls="-.", lw=1.2,
                              label=f"{meta.get('limit_label') or '2/λmax'} = "
                                    f"{base.fmt(limit, 3)} (stability limit)"))
    for ax, values in ((ax_loss, shown), (ax_steps, steps)):
        if not np.isfinite(values).any():
            ax.text(0.5, 0.5, "every run diverged" if diverged.all() else "no run converged",
                    transform=ax.transAxes, ha="center", va="center", color="0.4",
                    fontsize=11)
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3),
               fontsize=8.5, frameon=False)
    return fig


def _median_over_seeds(values: np.ndarray) -> np.ndarray:
    """Per learning rate, the median over seeds of the finite values (NaN if none)."""
    out = np.full(values.shape[0], np.nan)
    for k, row in enumerate(values):
        row = row[np.isfinite(row)]
        if row.size:
            out[k] = np.median(row)
    return out


def _top_row(ax, rates: np.ndarray, marker: str, **style) -> None:
    """Markers along the top of the panel, at the given learning rates."""
    if rates.size == 0:
        return
    size = 60 if marker == "x" else 40
    linewidths = 2 if marker == "x" else 1.5
    ax.scatter(rates, np.full(rates.shape, MARKER_ROW), marker=marker, s=size,
               linewidths=linewidths, transform=ax.get_xaxis_transform(), clip_on=False,
               zorder=5, **style)


def _linear_limits(values: np.ndarray, reference) -> tuple[float, float] | None:
    data = base.finite(np.concatenate([np.ravel(values), np.ravel(reference)]))
    data = data[np.isfinite(data)]
    if data.size == 0:
        return None
    hi = float(data.max())
    top = hi / TOP_BAND if hi > 0 else 1.0
    return min(0.0, float(data.min())), top
