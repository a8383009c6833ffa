"""The loss curve: the best run's MSE against iteration, as the crash course first shows it.

The loss falls steeply, then flattens: the step where it stops changing is marked as the
convergence step, and the least-squares optimum's loss is the floor it approaches. With
held-out data the held-out loss is drawn beside it (dashed), at the same steps. With Adam's
sharpness recorded (``track_sharpness``), a panel below shows it at the same steps with its
stability threshold 2(1 + b1)/(1 − b1) (``jaxgd.theory.sharpness``).
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
    loss_steps, num_steps = base.history_steps(history)
    final = base.field(history, "final_loss")[k, s]
    converged = int(base.field(history, "converged_step", np.int64)[k, s])
    rate = base.field(history, "learning_rates")[k]
    optimum = base.optimal_loss(history)

    # losses[i] is the loss before update loss_steps[i], so after the last update comes
    # final_loss at num_steps.
    steps = np.append(loss_steps, num_steps)
    curve = base.finite(np.append(losses, final))
    epochs = None
    if "epoch_losses" in history:  # mini-batch SGD: the loss on all the data, per epoch
        epochs = base.finite(base.field(history, "epoch_losses")[k, s])
        epoch_steps = np.arange(epochs.size) * (num_steps // max(epochs.size - 1, 1))
        curve = curve[:-1]  # batch losses only: the final loss is an epoch loss
        steps = steps[:-1]
    held = base.held_out_curve(history, (k, s))
    if held is not None and epochs is not None:
        held = held[:-1]
    log = base.use_log(log_scale, curve, *([] if epochs is None else [epochs]),
                       *([] if held is None else [held]))

    tracked = "sharpness" in history
    fig = base.new_figure(10, 7.0 if tracked else 4.2)
    base.suptitle(fig, meta)
    rows = fig.add_gridspec(2 if tracked else 1, 1, height_ratios=(3, 2) if tracked else None)
    ax = fig.add_subplot(rows[0])
    keep = np.array([0, curve.size - 1,
                     *([base.entry_index(steps, converged)] if converged >= 0 else [])])
    shown = base.plot_indices(curve.size, keep=keep)
    if epochs is None:
        ax.plot(steps[shown], curve[shown], color=base.DATA_COLOR, lw=2,
                label=f"loss of the best run (final MSE {base.fmt(final)})")
        marked = curve
    else:
        ax.plot(steps[shown], curve[shown], color=base.DATA_COLOR, lw=0.8, alpha=0.45,
                label="loss of each step's mini-batch")
        ax.plot(epoch_steps, epochs, color=base.DATA_COLOR, lw=2, marker="o",
                ms=3 if epochs.size <= 60 else 0,
                label=f"loss on all the data at each epoch (final MSE {base.fmt(final)})")
        steps, marked = epoch_steps, epochs
    if held is not None:  # the held-out MSE, logged at the same steps
        held_final = base.field(history, "final_validation_loss")[k, s]
        ax.plot(steps[shown], held[shown], color=base.VALIDATION_COLOR, lw=2, ls="--",
                label=f"held-out loss (final MSE {base.fmt(held_final)})")
    if optimum is not None:
        ax.axhline(optimum, color=base.OPTIMUM_COLOR, ls="--", lw=1.2,
                   label=f"least-squares optimum (MSE {base.fmt(optimum)})")
    if converged >= 0:
        ax.axvline(converged, color="#2ca02c", ls=":", lw=1.8,
                   label=f"converged at step {converged}")
        at = marked[base.entry_index(steps, converged)]
        if np.isfinite(at):
            ax.plot([converged], [at], "o", color="#2ca02c", ms=6, zorder=3)
    else:
        ax.plot([], [], " ", label=f"not converged within {num_steps} steps")

    ax.set_xlim(0, num_steps)
    both = np.concatenate([curve, *([] if epochs is None else [epochs]),
                           *([] if held is None else [held])])
    if log:
        base.log_axis(ax, "y")
        limits = base.log_limits(both, [] if optimum is None else [optimum])
        if limits is not None:
            ax.set_ylim(*limits)
    else:
        finite = both[np.isfinite(both)]
        top = float(finite.max()) if finite.size else 1.0
        ax.set_ylim(0, top * 1.05 if top > 0 else 1.0)
    if not tracked:  # else the panel below says it
        ax.set_xlabel("iteration (step of gradient descent)")
    ax.set_ylabel(base.mse_label(meta) + (", log scale" if log else ""))
    ax.set_title(f"Loss curve of the best run: learning rate η = {base.fmt(rate)}, "
                 f"{base.run_label(history, s)}")
    ax.legend(loc="upper right")
    if tracked:
        _sharpness_panel(fig.add_subplot(rows[1], sharex=ax), history, (k, s), loss_steps,
                         log_scale)
    return fig


def _sharpness_panel(ax, history: base.History, index, steps: np.ndarray,
                     log_scale: bool) -> None:
    """The best run's preconditioned sharpness at each logged step (the value after that
    step's update) and its threshold: above it, Adam with v̂ held fixed is unstable."""
    sharpness = base.finite(base.field(history, "sharpness")[index])
    threshold = float(base.field(history, "sharpness_threshold")[index])
    log = base.use_log(log_scale, sharpness, [threshold])
    shown = base.plot_indices(sharpness.size, keep=[0, sharpness.size - 1])
    ax.plot(steps[shown], sharpness[shown], color=base.MODEL_COLOR, lw=1.6,
            label="preconditioned sharpness η·λmax(D^-1/2 H D^-1/2)")
    ax.axhline(threshold, color=base.DIVERGED_COLOR, ls="--", lw=1.2,
               label=f"threshold 2(1+b1)/(1−b1) = {base.fmt(threshold)}")
    if log:
        base.log_axis(ax, "y")
        limits = base.log_limits(sharpness, [threshold])
        if limits is not None:
            ax.set_ylim(*limits)
    ax.set_xlabel("iteration (step of gradient descent)")
    ax.set_ylabel("Adam's sharpness" + (", log scale" if log else ""))
    ax.legend(loc="lower right")  # the curve rises towards the threshold, upper left
