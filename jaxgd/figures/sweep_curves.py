"""Every run's loss curve in one picture, coloured by learning rate.

Too small a learning rate crawls, a good one drops fast and flattens, too large a one
oscillates or blows up: the sweep shows all three at once. Diverged runs are dashed, end in a
cross where their loss left the finite range, and are named in the legend.
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import ListedColormap, LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from jaxgd.figures import base

#: Above this factor times the largest starting loss, the axes stop: a diverging run leaves.
CAP_FACTOR = 10.0


def skip_reason(history: base.History, meta: base.Meta) -> str | None:
    """Why this figure cannot be drawn from the record, or None when it can."""
    K, S, _ = base.grid_shape(history)
    if K * S < 2:
        return "a single run is not a sweep: see the loss_curve figure"
    return None


def colormap() -> ListedColormap:
    """Viridis without its palest yellow, which is hard to see on white."""
    return ListedColormap(base.matplotlib.colormaps["viridis"](np.linspace(0.0, 0.88, 256)))


def rate_norm(rates: np.ndarray) -> LogNorm:
    rates = rates[np.isfinite(rates) & (rates > 0)]
    lo, hi = (float(rates.min()), float(rates.max())) if rates.size else (1e-3, 1.0)
    if hi <= lo:
        lo, hi = lo / 2, hi * 2
    return LogNorm(vmin=lo, vmax=hi)


def draw(history: base.History, meta: base.Meta, *, log_scale: bool = True) -> Figure:
    """All runs' loss histories, coloured by learning rate (log colour scale).

    Args:
      history: a results record (see ``jaxgd.figures``).
      meta: its summary: ``target_name``, ``title``, ``optimizer``.
      log_scale: draw the loss on a log axis.

    Returns:
      A ``matplotlib.figure.Figure``.
    """
    losses = base.finite(base.field(history, "losses"))  # (K, S, T)
    K, S, T = losses.shape
    rates = base.field(history, "learning_rates")
    loss_steps, num_steps = base.history_steps(history)
    diverged = base.field(history, "diverged", bool)
    diverged_step = base.field(history, "diverged_step", np.int64)
    final = base.finite(base.field(history, "final_loss"))
    optimum = base.optimal_loss(history)
    best = base.best_run(history)

    # The final loss (after the last update) closes each curve at step T.
    # A diverged run's history ends at its divergence (NaN after it).
    curves = np.concatenate([losses, np.where(diverged, np.nan, final)[..., None]], axis=-1)
    held_all = None
    if "validation_losses" in history:  # the best run's held-out curve is drawn too
        held_all = np.concatenate([base.finite(base.field(history, "validation_losses")),
                                   base.finite(base.field(history, "final_validation_loss"))
                                   [..., None]], axis=-1)
        held_all = np.where(diverged[..., None], np.nan, held_all)
    log = base.use_log(log_scale, curves)
    start = curves[..., 0][~diverged]
    start = start[np.isfinite(start)]
    if start.size == 0:
        start = curves[..., 0][np.isfinite(curves[..., 0])]
    cap = CAP_FACTOR * float(start.max()) if start.size and start.max() > 0 else None

    if held_all is not None and best is not None:
        extra = held_all[best]
        if log:
            extra = extra[extra > 0]
        curves_for_limits = np.concatenate([curves.reshape(-1), extra])
    else:
        curves_for_limits = curves
    if log:
        limits = base.log_limits(curves_for_limits, [] if optimum is None else [optimum],
                                 cap=cap)
    else:  # linear: the starting losses fill the axes, a diverging run leaves at the top
        limits = (0.0, cap / CAP_FACTOR * 1.1) if cap else None
    top = limits[1] if limits is not None else None

    fig = base.new_figure(10.5, 4.6)
    base.suptitle(fig, meta, f"{K * S} runs: {base.grid_text(history)}")
    ax = fig.add_subplot()
    cmap, norm = colormap(), rate_norm(rates)
    steps = np.append(loss_steps, num_steps)
    keep = np.concatenate([[0, T], [base.entry_index(loss_steps, step)
                                    for step in diverged_step[diverged].ravel()]])
    shown = base.plot_indices(T + 1, keep=keep)
    many = K * S > 30
    for k in range(K):
        color = cmap(norm(rates[k])) if rates[k] > 0 else "0.5"
        for s in range(S):
            curve = curves[k, s]
            if (k, s) == best:
                continue  # drawn last, on top
            ax.plot(steps[shown], curve[shown], color=color, lw=0.8 if many else 1.3,
                    ls="--" if diverged[k, s] else "-", alpha=0.8)
            if diverged[k, s]:
                _mark_divergence(ax, steps, curve, top, log)

    handles = []
    if best is not None:
        k, s = best
        ax.plot(steps[shown], curves[k, s][shown], color="black", lw=3.2, zorder=4)
        ax.plot(steps[shown], curves[k, s][shown], color=cmap(norm(rates[k])), lw=1.8, zorder=5)
        handles.append(Line2D([], [], color="black", lw=2.5,
                              label=f"best: η = {base.fmt(rates[k])}, "
                                    f"{base.run_label(history, s)} "
                                    f"(MSE {base.fmt(final[k, s])})"))
        held = base.held_out_curve(history, (k, s))
        if held is not None:  # what the best run was picked by
            ax.plot(steps[shown], held[shown], color=base.VALIDATION_COLOR, lw=2, ls="--",
                    zorder=5)
            handles.append(Line2D([], [], color=base.VALIDATION_COLOR, lw=2, ls="--",
                                  label=f"its held-out loss (MSE {base.fmt(held[-1])})"))
    if optimum is not None:
        ax.axhline(optimum, color=base.OPTIMUM_COLOR, ls=":", lw=1.5, zorder=3)
        handles.append(Line2D([], [], color=base.OPTIMUM_COLOR, ls=":", lw=1.5,
                              label=f"least-squares optimum (MSE {base.fmt(optimum)})"))
    if diverged.any():
        handles.append(Line2D([], [], color=base.DIVERGED_COLOR, ls="--", marker="x", ms=7,
                              mew=2, label=_diverged_text(rates, diverged)))

    # When every run diverged early, zoom in on the steps that have a loss.
    seen = np.flatnonzero(np.isfinite(curves).any(axis=(0, 1)))
    last = int(steps[seen[-1]]) if seen.size else num_steps
    ax.set_xlim(0, num_steps if last >= 0.5 * num_steps else max(1.25 * last, 5))
    if log:
        base.log_axis(ax, "y")
    if limits is not None:
        ax.set_ylim(*limits)
    ax.set_xlabel("iteration (step of gradient descent)")
    ax.set_ylabel(base.mse_label(meta) + (", log scale" if log else ""))
    ax.set_title("Loss curves of every run, coloured by learning rate")
    if handles:
        ax.legend(handles=handles, loc="upper right")
    bar = fig.colorbar(base.matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax,
                       pad=0.01)
    bar.set_label("learning rate η (log scale)")
    distinct = np.unique(rates[np.isfinite(rates) & (rates > 0)])
    if 1 < distinct.size <= 12:
        ticks = _spaced(distinct, norm)
        bar.set_ticks(ticks, labels=[base.fmt(r, 3) for r in ticks])
        bar.ax.minorticks_off()
    return fig


def _spaced(rates: np.ndarray, norm: LogNorm, gap: float = 0.06) -> np.ndarray:
    """The learning rates to label on the colour bar: at least ``gap`` of its length apart."""
    chosen = [rates[-1]]
    for rate in rates[-2::-1]:  # from the largest, which is kept
        if norm(chosen[-1]) - norm(rate) >= gap:
            chosen.append(rate)
    return np.array(chosen[::-1])


def _mark_divergence(ax, steps, curve, top, log) -> None:
    """A red cross at a diverged run's last finite loss (at the top edge if it went above)."""
    finite = np.flatnonzero(np.isfinite(curve) & ((curve > 0) if log else True))
    if finite.size == 0:
        return
    last = finite[-1]
    value = curve[last]
    if top is not None and value > top:
        value = top
    ax.plot([steps[last]], [value], "x", color=base.DIVERGED_COLOR, ms=8, mew=2, zorder=6,
            clip_on=False)


def _diverged_text(rates: np.ndarray, diverged: np.ndarray) -> str:
    count = int(diverged.sum())
    bad = rates[diverged.any(axis=1)]
    runs = f"{count} run{'s' if count != 1 else ''}"
    if bad.size <= 4:
        return f"diverged ({runs}): η = " + ", ".join(base.fmt(r, 3) for r in bad)
    return f"diverged ({runs}): η from {base.fmt(bad.min(), 3)} to {base.fmt(bad.max(), 3)}"

