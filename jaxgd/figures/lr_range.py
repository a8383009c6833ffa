"""The learning-rate range test's figure: what each candidate rate reached, and the range.

Left, each candidate's final gap to the optimum relative to where it started (log-log):
it falls as the rate grows, flattens at rounding noise, and jumps to "diverged" past the
edge. Right, the steps each candidate took to bring its gap within the target: they fall
with the rate, reach a minimum near the fastest rate and rise again as the top direction
starts to oscillate. Both panels mark ``max_stable`` (the theory's limit when exact),
``fastest`` and ``suggested``; diverged candidates are red crosses along the top.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from jaxgd.figures import base

__all__ = ["draw"]

LINES = (("max_stable", "max stable", "0.2", "-."), ("fastest", "fastest", "#2ca02c", "--"),
         ("suggested", "suggested", "#9467bd", ":"))


def draw(found: Mapping[str, Any], *, title: str = "") -> Figure:
    """Draws ``jaxgd.api.lr_range.summary(...)`` (or lr_range.json as read back).

    Args:
      found: the summary: ``candidates`` (each ``learning_rate``, ``relative_gap``,
        ``steps_to_target``, ``diverged``), ``max_stable``, ``fastest``, ``suggested``,
        ``exact``, ``limit_name``, ``target``.
      title: the figure's first line (e.g. the config's title).

    Returns:
      A ``matplotlib.figure.Figure`` (save it with ``jaxgd.figures.save_figure``).

    Example:
      >>> import numpy as np
      >>> from jaxgd.api.lr_range import lr_range, summary
      >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
      >>> fig = draw(summary(lr_range(X, y, num_steps=100, num_rates=6)), title="toy")
      >>> [ax.get_xscale() for ax in fig.axes]
      ['log', 'log']
    """
    rows = found["candidates"]
    rates = np.asarray([r["learning_rate"] for r in rows], np.float64)
    diverged = np.asarray([r["diverged"] for r in rows], bool)
    gap = np.asarray([np.nan if r["relative_gap"] is None else r["relative_gap"]
                      for r in rows], np.float64)
    steps = np.asarray([r["steps_to_target"] for r in rows], np.float64)
    with base.style():
        fig = base.new_figure(11, 4.4)
        how = f"exact, {found['limit_name']}" if found["exact"] else "empirical"
        base.suptitle(fig, {"title": title or "learning-rate range test"},
                      f"{rates.size} candidate rates, one sweep ({how})")
        ax_gap, ax_steps = fig.subplots(1, 2)
        marks = [found[key] for key, *_ in LINES if found.get(key) is not None]
        for ax in (ax_gap, ax_steps):
            base.log_axis(ax, "x")
            ax.set_xlim(*base.lr_limits(rates, marks))
            ax.set_xlabel("learning rate η (log scale)")
            for key, label, color, style in LINES:
                if found.get(key) is not None:
                    ax.axvline(found[key], color=color, ls=style, lw=1.2,
                               label=f"{label} {base.fmt(found[key])}")
        _gap_panel(ax_gap, rates, gap, diverged, found)
        _steps_panel(ax_steps, rates, steps, diverged, found)
        ax_gap.legend(loc="lower left", fontsize="small")
    return fig


def _gap_panel(ax, rates, gap, diverged, found) -> None:
    ok = ~diverged & np.isfinite(gap)
    shown = np.where(ok, np.maximum(np.abs(gap), 1e-16), np.nan)  # rounding: |gap| ≥ 0
    base.log_axis(ax, "y")
    ax.plot(rates[ok], shown[ok], "o-", color=base.DATA_COLOR, ms=4, lw=1)
    ax.axhline(found["target"], color="0.5", lw=0.8, ls="--")
    top = np.nanmax(shown) * 10 if ok.any() else 1.0
    ax.set_ylim(top=top)
    ax.scatter(rates[diverged], np.full(diverged.sum(), top / 2), marker="x",
               color=base.DIVERGED_COLOR, zorder=3, label="diverged")
    ax.set_ylabel("final gap / initial gap (log scale)")
    ax.set_title("where each rate ended")


def _steps_panel(ax, rates, steps, diverged, found) -> None:
    reached = steps >= 0
    ax.plot(rates[reached], steps[reached], "o-", color=base.DATA_COLOR, ms=4, lw=1)
    top = steps[reached].max() * 1.15 if reached.any() else 1.0
    ax.set_ylim(0, top)
    ax.scatter(rates[diverged], np.full(diverged.sum(), top * 0.95), marker="x",
               color=base.DIVERGED_COLOR, zorder=3)
    ax.set_ylabel(f"steps until the gap is ≤ {found['target']:g} of the initial gap")
    ax.set_title("how fast each rate got there")
