"""Figures of a saved results record, as Google's crash course draws gradient descent.

Needs the optional plot extra (``pip install "jaxgd[plot]"``); ``import jaxgd`` never imports
matplotlib. The figures are drawn on free-standing ``matplotlib.figure.Figure`` objects,
never through pyplot, so nothing global changes and no display is needed.

The input is a results record: ``history``, a mapping of NumPy arrays (``history.npz``,
loaded with ``allow_pickle=False``), and ``meta``, the summary's mapping
(``feature_names``, ``target_name``, ``max_learning_rate``, ``title``, ``optimizer``).
With K learning rates, S seeds, T steps, P snapshots, Q path points, d features, n rows:

- ``learning_rates`` (K,), ``seeds`` (S,); ``losses`` (K, S, T), entry t the loss before
  update t, NaN after a divergence; ``final_loss``, ``converged_step`` (-1 = never),
  ``diverged``, ``diverged_step``, all (K, S);
- ``best_index`` (2,): (k, s) of the best non-diverged run, (-1, -1) if every run diverged;
- ``snapshot_steps`` (P,), ``snapshot_weight`` (K, S, P, d), ``snapshot_bias`` and
  ``snapshot_loss`` (K, S, P); ``path_steps`` (Q,), ``path_weight`` (Q, d), ``path_bias``
  (Q,): the best run's parameters, in original units;
- ``X`` (n, d), ``y`` (n,): the data in original units; ``optimum_weight`` (d,),
  ``optimum_bias`` and ``optimal_loss`` (): the least-squares optimum.

Optional fields, written by ``jaxgd run``: ``loss_steps`` (T,) and ``num_steps`` (): entry
i of ``losses`` is the loss before update ``loss_steps[i]`` (``train.log_every``);
``epoch_losses`` (K, S, epochs + 1): mini-batch runs' loss on all the data at each epoch
start and at the end; ``moment_*``: streamed data's moments, from which the loss surface
is drawn when the record holds no rows; ``grid_axes`` and ``grid_values_<axis>``: a grid
over more than learning rates and seeds, whose per-run arrays keep every axis (K, G...,
S, ...): the figures see them as (K, G·...·S, ...) (``base.runs_view``).

The figures (``FIGURES``):

- ``loss_curve``: the best run's loss against iteration, its convergence step, the optimum.
- ``snapshots``: the best run's model at each snapshot step (beginning, middle, end) with
  each point's error.
- ``loss_surface``: the MSE over (weight, bias) and the descent path (one feature only).
- ``sweep_curves``: every run's loss curve, coloured by learning rate.
- ``sweep_summary``: final loss and steps to converge against learning rate.

Beside them, ``jaxgd.figures.lr_range`` draws the learning-rate range test
(``jaxgd.lr_range``, ``jaxgd lr-range``) from its summary rather than from a run's record.

Example:
  >>> from jaxgd import figures  # doctest: +SKIP
  >>> drawn = figures.draw_all(history, meta)  # doctest: +SKIP
  >>> for name, fig in drawn.items():  # doctest: +SKIP
  ...     figures.save_figure(fig, f"figures/{name}.png", dpi=100)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from jaxgd.figures import base
from jaxgd.figures import loss_curve as _loss_curve
from jaxgd.figures import loss_surface as _loss_surface
from jaxgd.figures import snapshots as _snapshots
from jaxgd.figures import sweep_curves as _sweep_curves
from jaxgd.figures import sweep_summary as _sweep_summary
from jaxgd.figures.base import PLOT_EXTRA, Figure, History, Meta

FIGURES = ("loss_curve", "snapshots", "loss_surface", "sweep_curves", "sweep_summary")

_MODULES = {
    "loss_curve": _loss_curve,
    "snapshots": _snapshots,
    "loss_surface": _loss_surface,
    "sweep_curves": _sweep_curves,
    "sweep_summary": _sweep_summary,
}

__all__ = ["FIGURES", "PLOT_EXTRA", "draw", "draw_all", "save_figure", "skip_reason"]


def _module(name: str):
    try:
        return _MODULES[name]
    except KeyError:
        raise ValueError(f"unknown figure {name!r}; the figures are: {', '.join(FIGURES)}") \
            from None


def skip_reason(name: str, history: History, meta: Meta) -> str | None:
    """Why figure ``name`` does not apply to this record, or None when it does.

    Example:
      >>> import numpy as np
      >>> skip_reason("loss_surface", {"X": np.zeros((5, 7)), "y": np.zeros(5)}, {})
      'the loss surface over (weight, bias) needs exactly 1 feature; the data has 7'
    """
    return _module(name).skip_reason(base.runs_view(history), meta)


def draw(name: str, history: History, meta: Meta, *, log_scale: bool = True) -> Figure:
    """Draws one figure of a results record.

    Args:
      name: one of ``FIGURES``.
      history: the record's arrays (see the module docstring).
      meta: the record's summary.
      log_scale: draw losses on log axes (where a positive loss exists to show).

    Returns:
      A ``matplotlib.figure.Figure`` (not attached to pyplot; save it with ``save_figure``).

    Raises:
      ValueError: for an unknown name, or a figure that does not apply to the record
        (``skip_reason`` says why).
    """
    module = _module(name)
    history = base.runs_view(history)
    reason = module.skip_reason(history, meta)
    if reason is not None:
        raise ValueError(f"cannot draw {name}: {reason}")
    with base.style():
        return module.draw(history, meta, log_scale=log_scale)


def draw_all(history: History, meta: Meta, which: Iterable[str] = FIGURES, *,
             log_scale: bool = True) -> dict[str, Figure]:
    """Draws every figure in ``which`` that applies to the record, in that order.

    A figure that does not apply is left out (``skip_reason`` says why): the loss surface
    needs one feature, the sweep figures more than one run, the best run's figures a run
    that did not diverge. Diverged runs and NaN losses are drawn, never raised on.

    Returns:
      ``{name: Figure}`` for the figures drawn.
    """
    names = list(which)
    for name in names:
        _module(name)  # unknown names fail before anything is drawn
    history = base.runs_view(history)
    return {
        name: draw(name, history, meta, log_scale=log_scale)
        for name in names
        if skip_reason(name, history, meta) is None
    }


def save_figure(fig: Figure, path: str | os.PathLike, dpi: float = 100) -> Path:
    """Writes ``fig`` as a PNG at ``path``, atomically and reproducibly.

    The image goes to a temporary file in the same folder, which then replaces ``path`` in
    one step, so a reader never sees half a file. No software version or date is written,
    so the same figure gives byte-identical PNGs. Missing folders are created.

    Args:
      fig: a figure from ``draw`` or ``draw_all``.
      path: where to write; it must end in ``.png``.
      dpi: pixels per inch (100 gives a 1000-pixel-wide picture for a 10-inch figure).

    Returns:
      The path written, as a ``Path``.

    Example:
      >>> import tempfile
      >>> from matplotlib.figure import Figure
      >>> fig = Figure(figsize=(4, 3))
      >>> _ = fig.add_subplot().plot([0, 1], [1, 0])
      >>> with tempfile.TemporaryDirectory() as folder:
      ...     path = save_figure(fig, f"{folder}/line.png", dpi=100)
      ...     path.read_bytes()[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
      True
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"save_figure writes PNG files: the path must end in .png, got {path}")
    if not dpi > 0:
        raise ValueError(f"dpi must be positive, got {dpi}")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                         dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file, base.style():
            # Constrained layout settles over two passes (3-D axes move by a fraction of a
            # pixel after the first); one pass first makes every save of a figure the same.
            fig.draw_without_rendering()
            fig.savefig(file, format="png", dpi=dpi, metadata={"Software": None},
                        facecolor="white")
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
