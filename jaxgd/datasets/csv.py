"""Loading a user's CSV file (header row, chosen columns) into a ``Dataset``.

Only the standard library's ``csv`` module is used; rows with a missing value in a selected
column are dropped and counted, and every other problem is reported with its line number.
"""

from __future__ import annotations

import csv
import difflib
import math
import os
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from jaxgd.datasets.dataset import Dataset

#: Cell texts that mean "no value", matched in any case (NA, na, N/A, NaN, NAN, ...).
DEFAULT_MISSING = ("?", "", "NA", "N/A", "nan")


def load_csv(
    path: str | os.PathLike,
    features: str | Sequence[str],
    target: str,
    *,
    delimiter: str = ",",
    missing: Iterable[str] = DEFAULT_MISSING,
) -> Dataset:
    """Reads chosen numeric columns of a CSV file with a header row.

    Cells are stripped of surrounding spaces. A row whose selected cells include a missing
    marker (in any case: "N/A", "n/a", "NAN") is dropped (and counted in ``n_dropped``);
    other columns are never parsed, so they may hold text. Blank lines, and lines of only
    spaces or tabs, are skipped.

    Args:
      path: the CSV file (UTF-8; a leading byte-order mark is ignored).
      features: one column name or a sequence of names, in the order ``X`` should have.
      target: the column to predict; it must not also be a feature.
      delimiter: the field separator, e.g. ``";"`` or ``"\\t"``.
      missing: cell texts that mean "no value", matched in any case.

    Returns:
      A ``Dataset`` with float64 ``X`` ``(n_rows, len(features))`` and ``y`` ``(n_rows,)``.

    Raises:
      FileNotFoundError: if there is no file at ``path``.
      ValueError: if the file is empty, a name is not a column (the message lists the
        columns and the closest match), a row has the wrong number of fields, a selected
        cell is not a finite number (the message names the column, line and text), or no
        row is left after dropping.

    Example:
      >>> import pathlib, tempfile
      >>> path = pathlib.Path(tempfile.mkdtemp()) / "cars.csv"
      >>> _ = path.write_text("weight,mpg,name\\n3.5,18,a\\n?,15,b\\n2.4,24,c\\n")
      >>> data = load_csv(path, "weight", "mpg")
      >>> data.X.tolist(), data.y.tolist(), data.n_dropped
      ([[3.5], [2.4]], [18.0, 24.0], 1)
    """
    try:
        # newline="" lets the csv module handle line ends inside quoted fields itself.
        file = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115
    except FileNotFoundError:
        raise FileNotFoundError(f"no CSV file at {os.fspath(path)!r}") from None
    where = f"CSV file {os.fspath(path)!r}"
    with file:
        try:
            X, y, feature_names, n_dropped = _read_table(
                file, where, features, target, delimiter, missing
            )
        except UnicodeDecodeError as error:
            raise ValueError(f"{where} is not UTF-8 text: {error}") from None
    return Dataset(X, y, feature_names, target, n_dropped, f"CSV file {os.fspath(path)}")


#: Separators a header may hold when the file was read with another one.
SEPARATORS = (",", ";", "\t", "|")


def _select(
    available: Sequence[str], features: str | Sequence[str], target: str, where: str,
    delimiter: str | None = None,
) -> tuple[str, ...]:
    """Checks the chosen column names against ``available``; returns the feature names."""
    names = (features,) if isinstance(features, str) else tuple(features)
    if not names:
        raise ValueError("features is empty: choose at least one column")
    for name in (*names, target):
        if not isinstance(name, str):
            raise TypeError(f"column names must be strings, got {type(name).__name__} {name!r}")
        if name not in available:
            close = difflib.get_close_matches(name, available, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            held = [sep for sep in SEPARATORS if sep != delimiter and len(available) == 1
                    and sep in available[0]] if delimiter is not None else []
            if held:  # one column whose name holds another separator: a ";" file, say
                hint = (f" The header is one column that holds {held[0]!r}: is the file "
                        f"separated by {held[0]!r}? Pass delimiter={held[0]!r} "
                        f"(data.delimiter in a config).")
            raise ValueError(
                f"unknown column {name!r} in {where}.{hint} "
                f"Available columns: {', '.join(available)}"
            )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"features name a column more than once: {', '.join(duplicates)}")
    if target in names:
        raise ValueError(
            f"target {target!r} is also a feature: a model would just copy it; "
            "leave it out of features"
        )
    return names


def _read_table(
    lines: Iterable[str],
    where: str,
    features: str | Sequence[str],
    target: str,
    delimiter: str,
    missing: Iterable[str],
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], int]:
    """Parses CSV text into (X, y, feature_names, n_dropped); shared with the embedded data."""
    blocks = _read_blocks(lines, where, features, target, delimiter, missing, math.inf)
    feature_names = next(blocks)
    X, y, n_dropped = next(blocks, (None, None, 0))
    if X is None or X.shape[0] == 0:
        if n_dropped == 0:
            raise ValueError(f"{where} has no data rows: only a header")
        selected = (*feature_names, target)
        raise ValueError(
            f"{where} has no rows left: {n_dropped} rows were dropped for missing values "
            f"in {', '.join(selected)}"
        )
    return X, y, feature_names, n_dropped


def _read_blocks(
    lines: Iterable[str],
    where: str,
    features: str | Sequence[str],
    target: str,
    delimiter: str,
    missing: Iterable[str],
    block_rows: float,
) -> Iterator:
    """Yields the feature names, then (X, y, rows dropped) blocks of up to block_rows rows."""
    reader = csv.reader(lines, delimiter=delimiter)
    header = next((row for row in reader if not _blank(row)), None)  # the first non-blank row
    if header is None:
        raise ValueError(f"{where} is empty: expected a header row naming the columns")
    header = [name.strip() for name in header]
    feature_names = _select(header, features, target, where, delimiter)
    selected = (*feature_names, target)
    for name in selected:
        if header.count(name) > 1:
            raise ValueError(f"column {name!r} appears more than once in the header of {where}")
    columns = [header.index(name) for name in selected]
    # Any case: writers differ (R's NA, pandas' NaN, spreadsheets' N/A, NAN, n/a).
    missing = frozenset(marker.strip().casefold() for marker in missing)
    yield feature_names

    rows, n_dropped = [], 0
    for fields in _guarded(reader, where):
        if _blank(fields):
            continue
        line = reader.line_num  # 1-based line of the file where this row ends
        if len(fields) != len(header):
            raise ValueError(
                f"{where}, line {line}: {len(fields)} fields but the header has {len(header)}"
            )
        texts = [fields[i].strip() for i in columns]
        if any(text.casefold() in missing for text in texts):
            n_dropped += 1
            continue
        rows.append(
            [_number(text, name, where, line) for text, name in zip(texts, selected, strict=True)]
        )
        if len(rows) >= block_rows:
            table = np.array(rows, dtype=np.float64)
            yield table[:, :-1], table[:, -1], n_dropped
            rows, n_dropped = [], 0
    if rows or n_dropped:
        table = np.array(rows, dtype=np.float64).reshape(len(rows), len(selected))
        yield table[:, :-1], table[:, -1], n_dropped


def _blank(fields: list[str]) -> bool:
    """Whether a row is a blank line: no field, or one of only spaces and tabs (a line of
    spaces is no row of missing values: it has no delimiter, so not the header's width)."""
    return not fields or (len(fields) == 1 and not fields[0].strip())


def _guarded(reader, where: str) -> Iterator[list[str]]:
    """The reader's rows, its own errors (an overlong field, a stray quote) as ValueError."""
    try:
        yield from reader
    except csv.Error as error:
        raise ValueError(f"{where}, line {reader.line_num}: {error}") from None


def _number(text: str, column: str, where: str, line: int) -> float:
    try:
        # Python's float() also reads "1_000" as 1000, which no CSV writer means.
        value = math.nan if "_" in text else float(text)
    except ValueError:
        value = math.nan  # reported below, together with infinities
    if not math.isfinite(value):
        raise ValueError(
            f"{where}, line {line}, column {column!r}: {text!r} is not a finite number"
        )
    return value
