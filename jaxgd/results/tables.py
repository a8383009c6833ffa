"""Results as tidy tables: one row per run and logged step (``result.to_dataframe()``, and
a results folder's losses.csv: ``write_losses_csv``).

The columns are built with NumPy (``tidy_columns``); only ``to_dataframe`` needs pandas,
imported when it is called, so pandas stays an optional extra (``jaxgd[pandas]``).

Example:
  >>> import numpy as np, jaxgd
  >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
  >>> r = jaxgd.fit(X, y, learning_rate=0.3, num_steps=3)
  >>> columns = tidy_columns(r)
  >>> list(columns)[:3], columns["step"].tolist()
  (['learning_rate', 'step', 'loss'], [0, 1, 2])
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from jaxgd.results.files import write_atomic

LOSSES = "losses.csv"
MAX_CSV_ROWS = 1_000_000
#: Each run's verdict, repeated on every row of the run, after ``step`` and ``loss``.
VERDICTS = ("final_loss", "converged", "converged_step", "diverged", "diverged_step",
            "stalled")


def tidy_columns(result) -> dict[str, np.ndarray]:
    """The columns of ``result.to_dataframe()`` as NumPy arrays, by name, in order.

    Args:
      result: a ``FitResult``, ``SweepResult`` or ``GridResult``.

    Returns:
      The grid's axes (``result.axis_grid()``), ``step``, ``loss``, with held-out data
      ``validation_loss`` (``jaxgd.pipeline.holdout``), and ``VERDICTS`` (but ``stalled`` where the
      result has none; ``final_validation_loss`` with held-out data), each with runs ×
      logged steps entries, runs in the grid's row-major order and steps in order within a
      run.
    """
    losses = np.asarray(result.losses)
    shape, steps = losses.shape[:-1], losses.shape[-1]
    runs = math.prod(shape)
    columns = {axis: np.repeat(np.broadcast_to(values, shape).reshape(-1), steps)
               for axis, values in result.axis_grid().items()}
    columns["step"] = np.tile(np.asarray(result.loss_steps).reshape(-1), runs)
    columns["loss"] = losses.reshape(-1)
    if result.validation_losses is not None:  # logged at the same steps as the loss
        columns["validation_loss"] = np.asarray(result.validation_losses).reshape(-1)
    for name in (*VERDICTS, "final_validation_loss"):
        value = getattr(result, name)
        if value is not None:
            columns[name] = np.repeat(np.asarray(value).reshape(-1), steps)
    return columns


def to_dataframe(result):
    """``tidy_columns`` as a pandas DataFrame (see ``Described.to_dataframe``).

    Raises:
      ImportError: without pandas, naming the extra that installs it.

    Example:
      >>> import numpy as np, jaxgd
      >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
      >>> r = jaxgd.grid_sweep(X, y, grid={"learning_rate": [0.1, 0.3], "seed": [0, 1]},
      ...                      num_steps=4)
      >>> to_dataframe(r).groupby("learning_rate").size().tolist()
      [8, 8]
    """
    try:
        import pandas
    except ImportError:
        raise ImportError("to_dataframe needs pandas: pip install 'jaxgd[pandas]' (or "
                          "pandas itself); tables.tidy_columns gives the same columns as "
                          "NumPy arrays") from None
    return pandas.DataFrame(tidy_columns(result))


def csv_steps(num_steps: int, num_runs: int, max_rows: int = MAX_CSV_ROWS) -> np.ndarray:
    """The steps losses.csv keeps: all of them, unless runs × steps exceeds ``max_rows``; then
    every k-th step (k as small as fits) plus the last step.

    Example:
      >>> csv_steps(10, 1).tolist()
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
      >>> csv_steps(10, 1, max_rows=4).tolist()
      [0, 4, 8, 9]
    """
    if num_steps * num_runs <= max_rows:
        return np.arange(num_steps)
    per_run = max(max_rows // num_runs - 1, 1)
    stride = math.ceil(num_steps / per_run)
    return np.union1d(np.arange(0, num_steps, stride), [num_steps - 1])


def write_losses_csv(folder: Path, history: dict[str, np.ndarray]) -> Path:
    """Tidy loss table: one row per run and history entry, subsampled by ``csv_steps``.

    The columns are the grid's axes (``learning_rate``, the names drawn with it by
    ``optimizer.sample``, any ``optimizer.grid`` names, ``seed``), then ``step`` (the true
    step of the entry: ``loss_steps``) and ``loss``.
    """
    losses = np.asarray(history["losses"])  # (K, [G...,] S, T)
    axes, values = _grid_columns(history, losses.ndim - 1)
    shape, T = losses.shape[:-1], losses.shape[-1]
    runs = math.prod(shape)
    entries = csv_steps(T, runs)
    loss_steps = np.asarray(history.get("loss_steps", np.arange(T)), np.int64).reshape(-1)
    index = np.indices(shape).reshape(len(shape), -1)  # each run's position on each axis
    columns = [np.repeat(_texts(values[i][index[i]]), entries.size)
               for i in range(len(axes))]
    # Drawn hyperparameters (optimizer.sample) vary along the first axis: a column each.
    drawn = [str(n) for n in np.asarray(history.get("sampled", [])).reshape(-1)
             if str(n) not in axes]
    axes = axes[:1] + drawn + axes[1:]
    columns[1:1] = [np.repeat(_texts(np.asarray(history[f"sampled_values_{name}"])[index[0]]),
                              entries.size) for name in drawn]
    step_col = np.tile(loss_steps[entries], runs)
    flat = losses.reshape(runs, T)[:, entries].reshape(-1)
    digits = 9 if flat.dtype == np.float32 else 17  # enough to read back the same number
    lines = [",".join((*axes, "step", "loss"))]
    lines += [",".join((*cells, str(t), f"{v:.{digits}g}")) for *cells, t, v in
              zip(*(c.tolist() for c in columns), step_col.tolist(), flat.tolist(),
                  strict=True)]
    path = Path(folder) / LOSSES
    write_atomic(path, ("\n".join(lines) + "\n").encode())
    return path


def _grid_columns(history, depth: int) -> tuple[list[str], list[np.ndarray]]:
    """The grid's axis names and values: ``grid_axes`` with ``grid_values_<axis>``, or the
    learning rates and seeds of a record without them."""
    if "grid_axes" in history:
        axes = [str(a) for a in np.asarray(history["grid_axes"]).reshape(-1)]
        values = [np.asarray(history[f"grid_values_{a}"]) for a in axes]
    else:
        axes = ["learning_rate", "seed"]
        values = [np.asarray(history["learning_rates"]), np.asarray(history["seeds"])]
    if len(axes) != depth:
        raise ValueError(f"the losses have {depth} grid axes, the record names {axes}")
    return axes, values


def _texts(values: np.ndarray) -> np.ndarray:
    """Cells of a column: integers as they are, floats as Python writes them (repr)."""
    if np.issubdtype(values.dtype, np.integer):
        return np.asarray([str(v) for v in values.tolist()], dtype=object)
    return np.asarray([repr(float(v)) for v in values.tolist()], dtype=object)
