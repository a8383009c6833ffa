"""The loss surface: MSE over (weight, bias) for one feature, a convex bowl, and the descent path.

The crash course shows that the loss of a linear model is convex, so gradient descent finds
the one minimum. Left, the surface in 3-D; right, its contour map with the best run's path
from its start to where it stopped, and the least-squares optimum as a star.

The MSE on the grid comes in closed form from the data's moments,
``MSE(w, b) = w²·var(x) − 2w·cov(x, y) + var(y) + (w·mean(x) + b − mean(y))²``,
which is exact, cheap for any number of rows, and stable in original units.
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import BoundaryNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from jaxgd.figures import base

GRID_POINTS = 241
N_LEVELS = 16


def skip_reason(history: base.History, meta: base.Meta) -> str | None:
    """Why this figure cannot be drawn from the record, or None when it can."""
    d = base.n_features(history)
    if d != 1:
        return f"the loss surface over (weight, bias) needs exactly 1 feature; the data has {d}"
    if base.field(history, "y").size == 0 and "moment_mean_x" not in history:
        return "the record holds no data rows"
    return None


class Moments:
    """The five numbers of one-feature data that fix its MSE surface."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.mean_x, self.mean_y = float(x.mean()), float(y.mean())
        self.var_x = float(np.mean((x - self.mean_x) ** 2))
        self.var_y = float(np.mean((y - self.mean_y) ** 2))
        self.cov = float(np.mean((x - self.mean_x) * (y - self.mean_y)))

    @classmethod
    def of(cls, history: base.History) -> Moments:
        """The record's moments: from its data rows, or, for streamed data that left no
        rows, from the ``moment_*`` fields (the data's sufficient statistics)."""
        y = base.field(history, "y")
        if y.size:
            return cls(base.field(history, "X")[:, 0], y)
        moments = cls.__new__(cls)
        moments.mean_x = float(base.field(history, "moment_mean_x").reshape(-1)[0])
        moments.mean_y = float(base.field(history, "moment_mean_y").reshape(-1)[0])
        moments.var_x = float(base.field(history, "moment_cov_xx").reshape(-1)[0])
        moments.var_y = float(base.field(history, "moment_var_y").reshape(-1)[0])
        moments.cov = float(base.field(history, "moment_cov_xy").reshape(-1)[0])
        return moments

    def mse(self, w, b):
        """MSE of ``ŷ = w·x + b``, for arrays of w and b of any (broadcastable) shape."""
        w, b = np.asarray(w, np.float64), np.asarray(b, np.float64)
        offset = w * self.mean_x + b - self.mean_y
        value = w * w * self.var_x - 2 * w * self.cov + self.var_y + offset * offset
        return np.maximum(value, 0.0)


def draw(history: base.History, meta: base.Meta, *, log_scale: bool = True) -> Figure:
    """The MSE surface over (weight, bias) in 3-D and as contours, with the descent path.

    Args:
      history: a results record (see ``jaxgd.figures``) with one feature.
      meta: its summary: ``feature_names``, ``target_name``, ``title``.
      log_scale: space the contour levels logarithmically above the minimum (else evenly).

    Returns:
      A ``matplotlib.figure.Figure``.
    """
    reason = skip_reason(history, meta)
    if reason is not None:
        raise ValueError(reason)
    moments = Moments.of(history)
    opt_w = float(base.field(history, "optimum_weight").reshape(-1)[0])
    opt_b = float(base.field(history, "optimum_bias").reshape(-1)[0])
    path_w, path_b = _path(history)

    W_axis = _axis(np.append(path_w, opt_w))
    B_axis = _axis(np.append(path_b, opt_b))
    W, B = np.meshgrid(W_axis, B_axis)
    Z = moments.mse(W, B)
    opt_loss = float(moments.mse(opt_w, opt_b))
    levels = _levels(Z, opt_loss, log_scale)

    target, feature = base.target_name(meta), base.feature_names(meta, 1)[0]
    w_label = f"weight w [{target} per {feature}]"
    b_label = f"bias b [{target}]"
    fig = base.new_figure(12, 5)
    base.suptitle(fig, meta, "the loss surface is convex: one minimum")
    cmap = base.matplotlib.colormaps["viridis"]
    norm = BoundaryNorm(levels, cmap.N) if levels is not None else None

    ax3d = fig.add_subplot(1, 2, 1, projection="3d")
    # Linear colours here show the bowl's shape; the contour map's log levels show its floor.
    ax3d.plot_surface(W, B, Z, cmap=cmap, rcount=60, ccount=60, linewidth=0,
                      antialiased=False, alpha=0.85)
    if path_w.size:
        ax3d.plot(path_w, path_b, moments.mse(path_w, path_b), color=base.DIVERGED_COLOR,
                  lw=1.5, marker="o", ms=2.5, zorder=5)
    ax3d.scatter([opt_w], [opt_b], [opt_loss], marker="*", s=160, color="white",
                 edgecolors="black", zorder=6, depthshade=False)
    ax3d.set_xlabel(w_label, labelpad=8)
    ax3d.set_ylabel(b_label, labelpad=8)
    ax3d.set_zlabel(base.mse_label(meta), labelpad=8)
    for axis in (ax3d.xaxis, ax3d.yaxis, ax3d.zaxis):
        axis.set_major_locator(MaxNLocator(4))
    ax3d.tick_params(labelsize=8)
    ax3d.view_init(elev=30, azim=-60)  # looking along the valley: a U-shaped bowl
    ax3d.set_title("MSE over (weight, bias)")

    ax = fig.add_subplot(1, 2, 2)
    ax.grid(False)
    if levels is not None:
        filled = ax.contourf(W, B, Z, levels=levels, cmap=cmap, norm=norm)
        ax.contour(W, B, Z, levels=levels, colors="white", linewidths=0.5, alpha=0.6)
        bar = fig.colorbar(filled, ax=ax, ticks=levels[::3], format="%.4g")
        bar.set_label(base.mse_label(meta) + (" (log-spaced contours)" if log_scale else ""))
    if path_w.size:
        ax.plot(path_w, path_b, color=base.DIVERGED_COLOR, lw=1.5, marker="o", ms=3,
                label=f"descent path, steps {_steps_text(history, path_w.size)}")
        ax.plot(path_w[:1], path_b[:1], "s", color="white", mec="black", ms=8,
                label="start (step 0)")
    ax.plot([opt_w], [opt_b], "*", color="white", mec="black", ms=15,
            label=f"least-squares optimum: w = {base.fmt(opt_w)}, b = {base.fmt(opt_b)}")
    ax.set_xlim(W_axis[0], W_axis[-1])
    ax.set_ylim(B_axis[0], B_axis[-1])
    ax.set_xlabel(w_label)
    ax.set_ylabel(b_label)
    ax.set_title("Contours of the MSE and the best run's path" if path_w.size
                 else "Contours of the MSE (no descent path: every run diverged)")
    ax.legend(loc="best", fontsize=8)
    return fig


def _path(history: base.History) -> tuple[np.ndarray, np.ndarray]:
    """The best run's path (weight, bias), finite points only; empty if there is none."""
    if base.best_run(history) is None or "path_weight" not in history:
        return np.zeros(0), np.zeros(0)
    weight = base.field(history, "path_weight")
    weight = base.finite(weight.reshape(weight.shape[0], -1)[:, 0] if weight.ndim else [])
    bias = base.finite(base.field(history, "path_bias").reshape(-1))
    if weight.size != bias.size:
        raise ValueError(f"history['path_weight'] has {weight.size} points but "
                         f"history['path_bias'] has {bias.size}")
    keep = np.isfinite(weight) & np.isfinite(bias)
    return weight[keep], bias[keep]


def _steps_text(history: base.History, n: int) -> str:
    steps = np.asarray(history.get("path_steps", []), np.int64).reshape(-1)
    if steps.size == n and n:
        return f"{int(steps[0])} to {int(steps[-1])}"
    return f"({n} points)"


def _axis(values: np.ndarray) -> np.ndarray:
    """Grid values covering ``values`` with a 15% margin on each side."""
    values = values[np.isfinite(values)]
    lo, hi = float(values.min()), float(values.max())
    span = hi - lo
    if span <= 1e-12 * max(abs(lo), abs(hi), 1e-300):
        span = max(abs(lo), 1.0)
    return np.linspace(lo - 0.15 * span, hi + 0.15 * span, GRID_POINTS)


def _levels(Z: np.ndarray, floor: float, log_scale: bool) -> np.ndarray | None:
    """Contour levels from the grid's lowest to highest MSE, log-spaced above the minimum."""
    lo, hi = float(Z.min()), float(Z.max())
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        return None
    if not log_scale:
        return np.linspace(lo, hi, N_LEVELS)
    floor = min(floor, lo)
    gap_hi = hi - floor
    gap_lo = max(lo - floor, gap_hi * 1e-6)
    levels = floor + np.geomspace(gap_lo, gap_hi, N_LEVELS)
    levels[0], levels[-1] = lo, hi
    levels = np.unique(levels)
    return levels if levels.size >= 2 else None
