"""Data larger than memory: blocks of rows from a ``.npy`` file or a CSV file, one pass.

Each source yields ``(X, y)`` blocks of at most ``block_rows`` rows; feed them to
``jaxgd.statistics.accumulate`` to get the data's sufficient statistics, which the gram
engine trains on (``jaxgd.fit(stats, None, ...)``) whatever the number of rows. A ``.npy``
file is memory-mapped, so only one block is in memory at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np

from jaxgd.datasets.csv import DEFAULT_MISSING, _read_blocks
from jaxgd.validation import check_positive_int

DEFAULT_BLOCK_ROWS = 65536


def npy_blocks(
    path: str | os.PathLike,
    *,
    target: int = -1,
    features: Sequence[int] | None = None,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Blocks of rows of a 2-D numeric ``.npy`` file whose columns are features and target.

    Args:
      path: the file; it is memory-mapped, never read whole.
      target: index of the target column (default: the last).
      features: indices of the feature columns (default: all others, in order).
      block_rows: rows per block.

    Yields:
      ``(X, y)`` float64 blocks.

    Raises:
      FileNotFoundError: no file at ``path``.
      ValueError: not a 2-D numeric array, a column index out of range, or a NaN or
        infinite value (the message names the row).

    Example:
      >>> import pathlib, tempfile
      >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.npy"
      >>> np.save(path, np.arange(12.0).reshape(4, 3))
      >>> [X.shape for X, y in npy_blocks(path, block_rows=3)]
      [(3, 2), (1, 2)]
    """
    where = f".npy file {os.fspath(path)!r}"
    try:
        table = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"no .npy file at {os.fspath(path)!r}") from None
    except ValueError as error:  # object arrays need pickle, which is never allowed
        raise ValueError(f"{where} cannot be read without pickle: {error}") from None
    if table.ndim != 2 or not np.issubdtype(table.dtype, np.number):
        raise ValueError(f"{where} must hold a 2-D numeric array, got shape {table.shape} "
                         f"and dtype {table.dtype}")
    width = table.shape[1]
    target_index = _column(target, width, where)
    chosen = [i for i in range(width) if i != target_index] if features is None else [
        _column(i, width, where) for i in features]
    if not chosen or target_index in chosen:
        raise ValueError(f"{where}: features must be columns other than the target "
                         f"(target {target_index}, features {chosen})")
    if table.shape[0] == 0:
        raise ValueError(f"{where} has no rows")
    block_rows = check_positive_int(block_rows, "block_rows")
    # Everything above is checked when npy_blocks is called; the blocks are read lazily.
    return _npy_rows(table, chosen, target_index, block_rows, where)


def _npy_rows(table, chosen, target_index, block_rows, where):
    for start in range(0, table.shape[0], block_rows):
        block = np.asarray(table[start : start + block_rows], dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(block[:, [*chosen, target_index]]).all(axis=1))
        if bad.size:
            raise ValueError(f"{where}: NaN or infinite value in row {start + bad[0]}")
        yield block[:, chosen], block[:, target_index]


def _column(index: int, width: int, where: str) -> int:
    if isinstance(index, bool) or not isinstance(index, int | np.integer):
        raise TypeError(f"column indices must be integers, got {index!r}")
    if not -width <= index < width:
        raise ValueError(f"{where} has {width} columns: no column {index}")
    return int(index) % width


def csv_blocks(
    path: str | os.PathLike,
    features: str | Sequence[str],
    target: str,
    *,
    delimiter: str = ",",
    missing: Sequence[str] = DEFAULT_MISSING,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Blocks of chosen columns of a CSV file, read line by line (same rules as
    ``load_csv``: rows with a missing value are skipped, anything else wrong is an error
    naming its line).

    Example:
      >>> import pathlib, tempfile
      >>> path = pathlib.Path(tempfile.mkdtemp()) / "cars.csv"
      >>> _ = path.write_text("weight,mpg\\n3.5,18\\n?,15\\n2.4,24\\n3.0,20\\n")
      >>> [y.tolist() for X, y in csv_blocks(path, "weight", "mpg", block_rows=2)]
      [[18.0, 24.0], [20.0]]
    """
    where = f"CSV file {os.fspath(path)!r}"
    try:
        file = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115
    except FileNotFoundError:
        raise FileNotFoundError(f"no CSV file at {os.fspath(path)!r}") from None
    with file:
        try:
            blocks = _read_blocks(file, where, features, target, delimiter, missing,
                                  block_rows)
            next(blocks)  # the feature names
            for X, y, _ in blocks:
                if X.shape[0]:
                    yield X, y
        except UnicodeDecodeError as error:
            raise ValueError(f"{where} is not UTF-8 text: {error}") from None
