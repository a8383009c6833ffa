"""Data that keep their names: tables with column names, read as float arrays.

A pandas ``DataFrame`` or ``Series``, or anything else with ``__array__`` and ``columns``
(a table) or ``name`` (one column), is read here, at the library's edge: its names go to the
results (``feature_names``, ``target_name``), its numbers become a NumPy float array. pandas
is never imported: tables are recognised by those attributes alone.

What each column becomes:

- numbers (any int, uint or float dtype, pandas' nullable ``Int64``, ``Float64`` ...): floats;
  a missing value (``pd.NA``, ``None``) becomes NaN, which the usual checks then refuse,
  naming the rows (``jaxgd.inputs.validation.check_data``) or columns (``Standardizer.fit``);
- booleans (``bool``, pandas' ``boolean``): 0.0 and 1.0, an indicator whose weight is the
  effect of True;
- anything else (categorical, strings, objects, dates) is refused with the column's name:
  a category's codes are labels, not quantities, and a model fitted on them would mean
  nothing. Encode such a column first (e.g. one indicator per level, ``pandas.get_dummies``).

Example:
  >>> class Table:  # any object with __array__ and columns is a table
  ...     columns = ("weight", "horsepower")
  ...     def __array__(self, dtype=None, copy=None):
  ...         return np.array([[3.5, 130.0], [3.7, 165.0]])
  >>> names_of(Table(), None), to_numpy(Table(), "X").shape
  ((('weight', 'horsepower'), None), (2, 2))
"""

from __future__ import annotations

from typing import Any

import numpy as np


def is_table(value) -> bool:
    """Whether ``value`` is a table with column names (a DataFrame or alike)."""
    return hasattr(value, "__array__") and hasattr(value, "columns")


def is_column(value) -> bool:
    """Whether ``value`` is one named column (a Series or alike)."""
    return hasattr(value, "__array__") and hasattr(value, "name") and not is_table(value)


def names_of(X, y) -> tuple[tuple[str, ...] | None, str | None]:
    """``(feature names, target name)`` of a table ``X`` and a column ``y``; None for what
    has no names (arrays, a Series whose name is None). A file's rows
    (``jaxgd.datasets.RowSource``) are named by the file: a CSV file's chosen columns,
    nothing for a ``.npy`` file.

    Example:
      >>> names_of(np.ones((2, 1)), np.ones(2))
      (None, None)
    """
    if _names_itself(X):  # a file's rows: the file holds the targets too (y is None)
        return X.feature_names, X.target_name
    features = tuple(str(c) for c in X.columns) if is_table(X) else None
    target = str(y.name) if is_column(y) and y.name is not None else None
    return features, target


def check_columns(value, expected: tuple[str, ...] | None, name: str, against: str) -> None:
    """Refuses a table ``value`` whose column names are not ``expected``, in that order.

    Columns are matched by position once they are numbers, so a table with the same
    columns in another order (or other columns) would silently mean other features. An
    array (no names) or ``expected`` None passes: positions are all there is.

    Args:
      value: the table (or array) to check.
      expected: the names it must have, e.g. ``names_of(X, None)[0]``.
      name: the argument's name for the message, e.g. "X_val".
      against: what ``expected`` belongs to, e.g. "X has" or "the Standardizer was fitted on".

    Raises:
      ValueError: naming both column lists.

    Example:
      >>> class Table:
      ...     columns = ("b", "a")
      ...     def __array__(self, dtype=None, copy=None):
      ...         return np.ones((1, 2))
      >>> check_columns(Table(), ("a", "b"), "X_val", "X has")
      Traceback (most recent call last):
      ...
      ValueError: X_val has columns ('b', 'a'), X has ('a', 'b'): select those, in that order
    """
    names = names_of(value, None)[0]
    if names is not None and expected is not None and names != expected:
        raise ValueError(f"{name} has columns {names}, {against} {expected}: select those, "
                         "in that order")


def to_numpy(value, name: str) -> np.ndarray:
    """A table's or column's numbers as a NumPy array: floats, NaN where a value is missing.

    float32 columns stay float32 when every column is float32; anything else becomes
    float64. Non-numeric columns are refused, named.

    Args:
      value: a table (``columns``) or a column (``name``) with ``__array__``.
      name: the argument's name for messages, e.g. "X".

    Raises:
      TypeError: naming the columns that hold categories, text, dates or objects.

    Example:
      >>> class Column:
      ...     name, dtype = "mpg", np.dtype(np.float32)
      ...     def __array__(self, dtype=None, copy=None):
      ...         return np.array([18.0, 15.0], np.float32)
      >>> to_numpy(Column(), "y").dtype
      dtype('float32')
    """
    labels = list(value.columns) if is_table(value) else [value.name]
    dtypes = _dtypes(value, len(labels))
    if dtypes is not None:
        _refuse([(label, d) for label, d in zip(labels, dtypes, strict=True)
                 if _kind(d) not in "biuf?"], name)
    target = _float_dtype(dtypes)
    if hasattr(value, "to_numpy"):  # pandas: nullable columns need na_value to become NaN
        try:
            return np.asarray(value.to_numpy(dtype=target, na_value=np.nan))
        except (TypeError, ValueError):
            pass  # not pandas' signature: read it as any other array
    array = np.asarray(value)
    if array.dtype.kind in "biuf":
        return array
    if array.dtype.kind != "O":
        raise TypeError(f"{name} must hold numbers, got dtype {array.dtype}")
    columns = array.reshape(len(array), -1).T if array.ndim else array.reshape(1, 1)
    bad = [(label, array.dtype) for label, column in zip(labels, columns, strict=False)
           if not _numeric(column)]
    _refuse(bad, name)
    return np.asarray([[np.nan if v is None else v for v in column] for column in columns],
                      np.float64).T.reshape(array.shape)


def _dtypes(value, count: int) -> list[Any] | None:
    """Each column's dtype, from ``dtypes`` (a table) or ``dtype`` (a column), if given."""
    if is_table(value):
        dtypes = getattr(value, "dtypes", None)
        dtypes = None if dtypes is None else list(dtypes)
    else:
        dtypes = [value.dtype] if hasattr(value, "dtype") else None
    return dtypes if dtypes is not None and len(dtypes) == count else None


def _kind(dtype) -> str:
    """A dtype's kind: NumPy's letter, which pandas' extension dtypes also give
    (``Int64`` 'i', ``boolean`` 'b', ``category`` and strings 'O'); '?' for dtypes of other
    libraries, which the conversion to NumPy then judges."""
    if str(dtype) == "category":
        return "O"
    kind = getattr(dtype, "kind", None)
    return kind if isinstance(kind, str) and len(kind) == 1 else "?"


def _float_dtype(dtypes) -> np.dtype:
    """float32 when every column is NumPy float32 (as NumPy input keeps it), else float64."""
    numpy = [d for d in dtypes or () if isinstance(d, np.dtype)]
    if dtypes and len(numpy) == len(dtypes) and all(d == np.float32 for d in numpy):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _numeric(column: np.ndarray) -> bool:
    """Whether an object column holds only real numbers, booleans and missing values."""
    for v in column:
        if v is None or isinstance(v, bool | int | float | np.bool_ | np.integer | np.floating):
            continue
        if type(v).__name__ == "NAType":  # pandas' missing value, known without pandas
            continue
        return False
    return True


def _refuse(bad: list, name: str) -> None:
    if not bad:
        return
    label, dtype = bad[0]
    what = ("is categorical: its codes are labels, not quantities"
            if str(dtype) == "category" else f"holds {dtype}, not numbers")
    others = f" (also {', '.join(repr(str(b[0])) for b in bad[1:6])})" if len(bad) > 1 else ""
    raise TypeError(f"{name} column {str(label)!r} {what}{others}: encode it as numbers "
                    "(e.g. one indicator column per level, pandas.get_dummies) or leave it out")


def _names_itself(X) -> bool:
    """Rows that carry their own column names (``jaxgd.datasets.RowSource``), asked of the
    value rather than its type: this module sits below the datasets that define it."""
    return not is_table(X) and hasattr(X, "feature_names") and hasattr(X, "target_name")
