"""The ``Dataset`` record every loader returns, and ``from_arrays`` for a user's own arrays."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from jaxgd.inputs import frames
from jaxgd.inputs.validation import check_data, warn_unaligned


class Dataset(NamedTuple):
    """A regression data set: features, targets and what they are called.

    Attributes:
      X: features, float64, shape ``(n_samples, n_features)``.
      y: targets, float64, shape ``(n_samples,)``.
      feature_names: one name per column of ``X``.
      target_name: the name of ``y``.
      n_dropped: rows left out because a selected column had a missing value.
      source: where the data came from, in a few words (with a citation where one is due).

    Example:
      >>> import numpy as np
      >>> data = Dataset(np.ones((2, 1)), np.zeros(2), ("x0",), "y", 0, "example")
      >>> data.X.shape, data.feature_names
      ((2, 1), ('x0',))
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    target_name: str
    n_dropped: int
    source: str


def from_arrays(
    X,
    y,
    feature_names: Sequence[str] | None = None,
    target_name: str | None = None,
) -> Dataset:
    """Wraps a user's arrays as a ``Dataset``, after the library's usual input checks.

    A 1-D ``X`` is rejected rather than reshaped: one feature of 5 samples and one sample
    of 5 features look the same, so the caller must say which (``X[:, None]``).

    Args:
      X: features, shape ``(n_samples, n_features)``; any real dtype, stored as float64;
        or a pandas DataFrame (any table with ``__array__`` and ``columns``, see
        ``jaxgd.inputs.frames``), whose column names are the default feature names.
      y: targets, shape ``(n_samples,)``; or a pandas Series, whose name is the default
        target name.
      feature_names: one name per column; X's columns, or ``x0, x1, ...``, if None.
      target_name: the name of ``y``; y's name, or "y", if None.

    Returns:
      A ``Dataset`` holding float64 copies of ``X`` and ``y``, with ``n_dropped=0``.

    Raises:
      TypeError, ValueError: as ``check_data``; ValueError if the number of names is wrong.

    Example:
      >>> data = from_arrays([[1.0, 2.0], [3.0, 4.0]], [5.0, 6.0])
      >>> data.X.shape, data.feature_names, data.target_name
      ((2, 2), ('x0', 'x1'), 'y')
    """
    found, found_target = frames.names_of(X, y)
    warn_unaligned(X, y)  # pandas would align by label; jaxgd goes by position
    feature_names = found if feature_names is None else feature_names
    target_name = target_name or found_target or "y"
    X, y = check_data(X, y)
    n_features = X.shape[1]
    if feature_names is None:
        names = tuple(f"x{i}" for i in range(n_features))
    else:
        # A lone string would otherwise be read as one name per character.
        names = (feature_names,) if isinstance(feature_names, str) else tuple(feature_names)
        if len(names) != n_features:
            raise ValueError(
                f"feature_names has {len(names)} names but X has {n_features} columns: "
                "give one name per column"
            )
    # Copies, so that later edits to the caller's arrays do not change the data set.
    return Dataset(
        X=np.array(X, dtype=np.float64),
        y=np.array(y, dtype=np.float64),
        feature_names=tuple(str(name) for name in names),
        target_name=str(target_name),
        n_dropped=0,
        source="arrays given by the caller",
    )
