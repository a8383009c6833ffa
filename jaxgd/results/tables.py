"""Results as tidy tables: one row per run and logged step (``result.to_dataframe()``).

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

import numpy as np

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
