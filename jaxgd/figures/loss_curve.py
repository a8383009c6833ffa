"""The loss curve: the best run's MSE against iteration, as the crash course first shows it.

The loss falls steeply, then flattens: the step where it stops changing is marked as the
convergence step, and the least-squares optimum's loss is the floor it approaches.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from jaxgd.figures import base


def skip_reason(history: base.History, meta: base.Meta) -> str | None:
    """Why this figure cannot be drawn from the record, or None when it can."""
    if base.best_run(history) is None:
        return "every run diverged: there is no best run whose loss curve to draw"
    return None


def draw(history: base.History, meta: base.Meta, *, log_scale: bool = True) -> Figure:
    """The best run's loss per iteration, its convergence step, and the optimum's loss.

    Args:
      history: a results record (see ``jaxgd.figures``).
      meta: its summary: ``target_name``, ``title``, ``optimizer``.
      log_scale: draw the loss on a log axis.

    Returns:
      A ``matplotlib.figure.Figure``.
    """
    best = base.best_run(history)
    if best is None:
        raise ValueError(skip_reason(history, meta))
    k, s = best
    losses = base.field(history, "losses")[k, s]
    T = losses.shape[-1]
    final = base.field(history, "final_loss")[k, s]
    converged = int(base.field(history, "converged_step", np.int64)[k, s])
    rate = base.field(history, "learning_rates")[k]
    seed = int(base.field(history, "seeds", np.int64)[s])
    optimum = base.optimal_loss(history)

    # losses[t] is the loss before update t, so after the last update comes final_loss at T.
    steps = np.arange(T + 1)
    curve = base.finite(np.append(losses, final))
    log = base.use_log(log_scale, curve)

    fig = base.new_figure(10, 4.2)
    base.suptitle(fig, meta)
    ax = fig.add_subplot()
    keep = np.array([0, T, *([converged] if converged >= 0 else [])])
    shown = base.plot_indices(T + 1, keep=keep)
    ax.plot(steps[shown], curve[shown], color=base.DATA_COLOR, lw=2,
            label=f"loss of the best run (final MSE {base.fmt(final)})")
    if optimum is not None:
        ax.axhline(optimum, color=base.OPTIMUM_COLOR, ls="--", lw=1.2,
                   label=f"least-squares optimum (MSE {base.fmt(optimum)})")
    if converged >= 0:
        ax.axvline(converged, color="#2ca02c", ls=":", lw=1.8,
                   label=f"converged at step {converged}")
        at = curve[min(converged, T)]
        if np.isfinite(at):
            ax.plot([converged], [at], "o", color="#2ca02c", ms=6, zorder=3)
    else:
        ax.plot([], [], " ", label=f"not converged within {T} steps")

    ax.set_xlim(0, T)
    if log:
        base.log_axis(ax, "y")
        limits = base.log_limits(curve, [] if optimum is None else [optimum])
        if limits is not None:
            ax.set_ylim(*limits)
    else:
        finite = curve[np.isfinite(curve)]
        top = float(finite.max()) if finite.size else 1.0
        ax.set_ylim(0, top * 1.05 if top > 0 else 1.0)
    ax.set_xlabel("iteration (step of gradient descent)")
    ax.set_ylabel(base.mse_label(meta) + (", log scale" if log else ""))
    ax.set_title(f"Loss curve of the best run: learning rate η = {base.fmt(rate)}, seed {seed}")
    ax.legend(loc="upper right")
    return fig
