"""Data larger than memory: blocks of rows from a ``.npy`` file or a CSV file, one pass.

Each source yields ``(X, y)`` blocks of at most ``block_rows`` rows; feed them to
``jaxgd.data.statistics.accumulate`` to get the data's sufficient statistics, which the gram
engine trains on (``jaxgd.fit(stats, None, ...)``) whatever the number of rows. A ``.npy``
file is memory-mapped, so only one block is in memory at a time.

For mini-batch SGD, which needs the rows themselves, ``npy_rows`` and ``csv_rows`` describe a
file as a ``RowSource`` that ``fit``, ``sweep`` and ``grid_sweep`` take in place of X (see
``jaxgd.pipeline.streaming``). ``RowSource.open`` gives random access to its rows: a ``.npy``
file is memory-mapped as it is; a CSV file, which can only be read from its start, is parsed once
into a temporary float64 file (n × (d + 1) × 8 bytes) that is memory-mapped; the file has
no name, so it goes with the process however that ends.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np

from jaxgd.data.statistics import SufficientStats, merge, sufficient_statistics
from jaxgd.datasets.csv import DEFAULT_MISSING, _read_blocks
from jaxgd.inputs.validation import check_positive_int

DEFAULT_BLOCK_ROWS = 65536


def _npy_table(path, where: str) -> np.ndarray:
    """A .npy file's 2-D array of real numbers, memory-mapped; never unpickled.

    Raises:
      FileNotFoundError: no file at ``path``.
      ValueError: saying what is wrong: not a .npy file, truncated, an object array (it
        would need pickle), not 2-D, or not real numbers (complex values are refused rather
        than cut to their real part).
    """
    try:
        with open(path, "rb") as handle:
            magic = handle.read(6)
    except FileNotFoundError:
        raise FileNotFoundError(f"no .npy file at {os.fspath(path)!r}") from None
    if magic != b"\x93NUMPY":
        raise ValueError(f"{where} is not a .npy file (it does not start with the .npy "
                         f"header but with {magic!r}); save arrays with numpy.save")
    try:
        table = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as error:
        if "pickle" in str(error) or "Python objects" in str(error):  # object arrays
            raise ValueError(f"{where} holds Python objects: it cannot be read without "
                             "pickle, and jaxgd never unpickles; save a numeric array") from None
        raise ValueError(f"{where} is truncated or damaged: {error} (its header announces "
                         "more data than the file holds)") from None
    if table.ndim != 2 or not (np.issubdtype(table.dtype, np.integer)
                               or np.issubdtype(table.dtype, np.floating)
                               or table.dtype == np.bool_):
        raise ValueError(f"{where} must hold a 2-D array of real numbers, got shape "
                         f"{table.shape} and dtype {table.dtype}")
    return table


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
    table = _npy_table(path, where)
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


class OpenRows(NamedTuple):
    """A ``RowSource`` opened for random access (see ``RowSource.open``).

    Attributes:
      table: ``(n, width)`` memory-mapped array holding the rows.
      features: column indices of the features in ``table``.
      target: column index of the target.
      stats: float64 sufficient statistics of all the rows (as ``read`` returns them).
      block_rows: rows per block.
      x_scale: per-feature factors applied when reading, or None.
      y_scale: factor applied to the target when reading.
      where: the file, for messages.
    """

    table: np.ndarray
    features: tuple[int, ...]
    target: int
    stats: SufficientStats
    block_rows: int
    x_scale: np.ndarray | None
    y_scale: float
    where: str

    @property
    def n(self) -> int:
        """Number of rows."""
        return int(self.table.shape[0])

    @property
    def n_features(self) -> int:
        return len(self.features)

    def read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``start:stop`` as float64 ``(X, y)``, scaled like the statistics."""
        block = np.asarray(self.table[start:stop], dtype=np.float64)
        X, y = block[:, list(self.features)], block[:, self.target]
        return _scaled(X, y, self.x_scale, self.y_scale)


class RowSource(NamedTuple):
    """The rows of a ``.npy`` or CSV file, described but not read (see ``npy_rows``,
    ``csv_rows``). ``fit``, ``sweep`` and ``grid_sweep`` take one in place of X, with
    ``y=None``: mini-batch SGD then streams its batches from the file
    (``jaxgd.pipeline.streaming``), and full-batch descent trains on the file's sufficient
    statistics.

    Attributes:
      kind: "npy" or "csv".
      path: the file.
      features: feature columns: indices (npy; None for every column but the target) or
        names (csv).
      target: the target column: an index (npy) or a name (csv).
      block_rows: rows per block: the unit of reading and of shuffling.
      delimiter, missing: CSV only, as in ``load_csv``.
      temp_dir: CSV only: where ``open`` writes its temporary copy (None: the system's).
      x_scale: per-feature factors applied to every row read, or None.
      y_scale: factor applied to the target.
    """

    kind: str
    path: str
    features: tuple | None
    target: int | str
    block_rows: int = DEFAULT_BLOCK_ROWS
    delimiter: str = ","
    missing: tuple[str, ...] = DEFAULT_MISSING
    temp_dir: str | None = None
    x_scale: tuple[float, ...] | None = None
    y_scale: float = 1.0

    def rescaled(self, x_scale: Sequence[float] | None = None,
                 y_scale: float = 1.0) -> RowSource:
        """The same rows with each feature multiplied by its factor in ``x_scale`` and the
        target by ``y_scale`` (a change of units, e.g. pounds to 1000s of pounds).

        Example:
          >>> import pathlib, tempfile
          >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.npy"
          >>> np.save(path, np.array([[1000.0, 2.0], [3000.0, 4.0]]))
          >>> next(npy_rows(path).rescaled([0.001]).blocks())[0].tolist()
          [[1.0], [3.0]]
        """
        if x_scale is not None:
            x_scale = tuple(float(f) for f in x_scale)
        return self._replace(x_scale=x_scale, y_scale=float(y_scale))

    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The rows in file order, as float64 ``(X, y)`` blocks (one pass, scaled).

        Example:
          >>> import pathlib, tempfile
          >>> from jaxgd.data.statistics import accumulate
          >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.npy"
          >>> np.save(path, np.arange(12.0).reshape(4, 3))
          >>> int(accumulate(npy_rows(path, block_rows=3).blocks()).n)
          4
        """
        if self.kind == "npy":
            blocks = npy_blocks(self.path, target=self.target, features=self.features,
                                block_rows=self.block_rows)
        else:
            blocks = csv_blocks(self.path, self.features, self.target,
                                delimiter=self.delimiter, missing=self.missing,
                                block_rows=self.block_rows)
        scale = None if self.x_scale is None else np.asarray(self.x_scale, np.float64)
        for X, y in blocks:
            yield _scaled(X, y, scale, self.y_scale)

    @contextlib.contextmanager
    def open(self) -> Iterator[OpenRows]:
        """Opens the rows for random access, for as long as the ``with`` block lasts.

        One pass computes the rows' sufficient statistics (and checks every value); a CSV
        file is also copied, in the same pass, into a temporary float64 file that is
        memory-mapped and freed on leaving the block, error or not. The file has no name
        (``tempfile.TemporaryFile``), so nothing is left behind even when the process is
        killed.

        Raises:
          FileNotFoundError, ValueError: as ``npy_blocks`` and ``csv_blocks``.

        Example:
          >>> import pathlib, tempfile
          >>> path = pathlib.Path(tempfile.mkdtemp()) / "cars.csv"
          >>> _ = path.write_text("weight,mpg\\n3.5,18\\n2.4,24\\n3.0,20\\n")
          >>> with csv_rows(path, "weight", "mpg").open() as rows:
          ...     X, y = rows.read(1, 3)
          >>> rows.n, X.tolist(), y.tolist()
          (3, [[2.4], [3.0]], [24.0, 20.0])
        """
        if self.kind == "npy":
            yield self._open_npy()
            return
        with self._open_csv() as rows:
            yield rows

    def _open_npy(self) -> OpenRows:
        stats = _statistics(self.blocks(), self.where)
        table = _npy_table(self.path, self.where)
        width = table.shape[1]
        target = int(self.target) % width
        features = (tuple(i for i in range(width) if i != target) if self.features is None
                    else tuple(int(i) % width for i in self.features))
        scale = None if self.x_scale is None else np.asarray(self.x_scale, np.float64)
        return OpenRows(table, features, target, stats, self.block_rows, scale, self.y_scale,
                        self.where)

    @contextlib.contextmanager
    def _open_csv(self) -> Iterator[OpenRows]:
        # A file without a name (removed as soon as it is made, or never named): it goes
        # with its last handle, however the process ends, even by SIGKILL or os._exit.
        with tempfile.TemporaryFile(prefix="jaxgd-rows-", suffix=".f64",
                                    dir=self.temp_dir) as out:
            width = 0

            def copied():
                nonlocal width
                for X, y in self.blocks():
                    block = np.column_stack([X, y])
                    width = block.shape[1]
                    out.write(np.ascontiguousarray(block, np.float64).tobytes())
                    yield X, y

            stats = _statistics(copied(), self.where)
            out.flush()
            table = np.memmap(out, dtype=np.float64, mode="r", shape=(int(stats.n), width))
            yield OpenRows(table, tuple(range(width - 1)), width - 1, stats, self.block_rows,
                           None, 1.0, self.where)

    @property
    def where(self) -> str:
        return f"{'.npy' if self.kind == 'npy' else 'CSV'} file {os.fspath(self.path)!r}"

    @property
    def feature_names(self) -> tuple[str, ...] | None:
        """The feature columns' names, in the order of the weights, as ``load_csv`` gives
        them: a CSV file's chosen header names; None for a ``.npy`` file, whose columns
        have none. ``fit``, ``sweep`` and ``grid_sweep`` pass them on to their results.

        ``rescaled`` keeps them: a change of units leaves a column what it is, as scaling a
        DataFrame's column keeps its name.

        Example:
          >>> import pathlib, tempfile
          >>> path = pathlib.Path(tempfile.mkdtemp()) / "cars.csv"
          >>> _ = path.write_text("mpg,weight,hp\\n18,3.5,130\\n")
          >>> source = csv_rows(path, ["hp", "weight"], "mpg")
          >>> source.feature_names, source.target_name
          (('hp', 'weight'), 'mpg')
        """
        return tuple(self.features) if self.kind == "csv" else None

    @property
    def target_name(self) -> str | None:
        """The target column's name (a CSV file's); None for a ``.npy`` file."""
        return str(self.target) if self.kind == "csv" else None


def npy_rows(
    path: str | os.PathLike,
    *,
    target: int = -1,
    features: Sequence[int] | None = None,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> RowSource:
    """The rows of a 2-D numeric ``.npy`` file, for mini-batch SGD larger than memory.

    The arguments are those of ``npy_blocks``, checked now (the file's header is read, not
    its rows). ``block_rows`` is also the unit of shuffling (see ``jaxgd.pipeline.streaming``).

    Raises:
      FileNotFoundError, ValueError, TypeError: as ``npy_blocks``.

    Example:
      >>> import pathlib, tempfile, jaxgd
      >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.npy"
      >>> x = np.linspace(-1.0, 1.0, 40)
      >>> np.save(path, np.column_stack([x, 2 * x + 3]))
      >>> result = jaxgd.fit(npy_rows(path, block_rows=16), None, learning_rate=0.5,
      ...                    batches=jaxgd.MiniBatches(batch_size=8, epochs=60))
      >>> result.params.weight.round(2).tolist(), round(float(result.params.bias), 2)
      ([2.0], 3.0)
    """
    npy_blocks(path, target=target, features=features, block_rows=block_rows)  # checks
    return RowSource("npy", os.fspath(path), None if features is None else tuple(features),
                     target, int(block_rows))


def csv_rows(
    path: str | os.PathLike,
    features: str | Sequence[str],
    target: str,
    *,
    delimiter: str = ",",
    missing: Sequence[str] = DEFAULT_MISSING,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    temp_dir: str | os.PathLike | None = None,
) -> RowSource:
    """The chosen columns of a CSV file, for mini-batch SGD larger than memory.

    The arguments are those of ``csv_blocks``. A CSV file cannot be read at random, so
    opening it (as ``fit`` does) parses it once into a temporary float64 file in
    ``temp_dir`` (n × (d + 1) × 8 bytes), freed when the run ends, and without a name, so
    never left behind; the batches are read from that copy. The file is checked to exist
    now; its contents when opened.

    Raises:
      FileNotFoundError: no file at ``path`` (bad contents raise ``ValueError`` on opening).

    Example:
      >>> import pathlib, tempfile, jaxgd
      >>> path = pathlib.Path(tempfile.mkdtemp()) / "line.csv"
      >>> _ = path.write_text("x,y\\n" + "".join(f"{x},{2 * x + 3}\\n" for x in range(-4, 5)))
      >>> result = jaxgd.fit(csv_rows(path, "x", "y", block_rows=4), None,
      ...                    learning_rate=0.05,
      ...                    batches=jaxgd.MiniBatches(batch_size=3, epochs=100))
      >>> result.params.weight.round(2).tolist(), round(float(result.params.bias), 2)
      ([2.0], 3.0)
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"no CSV file at {os.fspath(path)!r}")
    features = (features,) if isinstance(features, str) else tuple(features)
    return RowSource("csv", os.fspath(path), features, target,
                     check_positive_int(block_rows, "block_rows"), delimiter, tuple(missing),
                     None if temp_dir is None else os.fspath(temp_dir))


def _scaled(X, y, x_scale, y_scale):
    if x_scale is not None:
        X = X * x_scale
    if y_scale != 1.0:
        y = y * y_scale
    return X, y


def _statistics(blocks, where: str) -> SufficientStats:
    total = None
    for X, y in blocks:
        block = sufficient_statistics(X, y)
        total = block if total is None else merge(total, block)
    if total is None:
        raise ValueError(f"{where} has no rows")
    if not all(np.isfinite(np.asarray(a)).all() for a in total):
        raise ValueError(f"{where}: the scaled values overflow to infinity")
    return total
