"""Mini-batch SGD on rows streamed from a file: batches read from disk inside the compiled loop.

``fit``, ``sweep`` and ``grid_sweep`` take a ``jaxgd.datasets.RowSource`` (``npy_rows``,
``csv_rows``) in place of X. With ``batch_size`` and ``epochs`` the run opens the file for
random access (``RowSource.open``) and ``descend`` gets a batch stream whose ``next`` asks the
host for step t's batch with ``jax.pure_callback``. The step counter is shared by every run of
a sweep (it is not batched under ``vmap``), so one read serves all runs: a sweep over learning
rates, seeds or any hyperparameter streams ONE batch order for every run, and the file is
read once per step, not once per run (also when the runs are sharded over devices: the
callback's operands are replicated, so XLA runs it once and hands its batch to every device).
Only the current block and batch are in memory on the host.

**Batch order.** Deterministic in (``batch_seed``, step), so repeating a callback, resuming or
re-running gives the same batches. The file's rows are cut into blocks of ``block_rows``
(block k holds rows k·R … (k+1)·R − 1; the last may be shorter). In epoch e:

1. the blocks are visited in the order ``default_rng([batch_seed, e, 0]).permutation(n_blocks)``;
2. inside block k the rows are visited in the order
   ``default_rng([batch_seed, e, 1, k]).permutation(len(block k))``;
3. this sequence of all n rows is cut into consecutive batches of ``batch_size``; when
   ``batch_size`` does not divide n the epoch's last batch holds the n mod batch_size
   leftover rows, padded and masked as in ``jaxgd.core.minibatch``, so every row is used exactly
   once per epoch and shapes stay fixed. Each batch's rows are sorted into file order, which
   leaves its loss unchanged and makes ``batch_size = n`` full-batch descent with
   ``engine="direct"``, step for step and to float rounding (another compiled program; see
   ``jaxgd.core.minibatch``); ``epoch_order`` below spells the rule out.

This is a block-wise shuffle: a batch mixes rows of one block (two at a boundary), not of the
whole file, the price of reading contiguous blocks. Shuffle the file once beforehand if its
order is meaningful (sorted by time or by target, say) and the blocks should look alike.

**Batch seed.** One order serves every run, so it cannot follow each run's seed as in
memory: it comes from ``batch_seed`` (default 0), the same for ``fit`` and every member of a
sweep; a ``batch_seed`` grid axis may hold one value only.

**Losses.** ``losses`` holds each step's batch loss, computed from the batch's rows; the loss
on all the data (``epoch_losses``, ``final_loss``, the divergence baseline) comes from the
file's float64 sufficient statistics, formed in the same pass that opens the file (the gram
engine's formula, equal to the direct loss to float rounding).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core import minibatch
from jaxgd.core.descent import Batches
from jaxgd.data.statistics import SufficientStats, accumulate
from jaxgd.datasets.stream import OpenRows, RowSource
from jaxgd.engines import gram
from jaxgd.inputs.validation import check_seed, default_float


def block_order(batch_seed: int, epoch: int, n_blocks: int) -> np.ndarray:
    """The order in which epoch ``epoch`` visits the blocks.

    Example:
      >>> sorted(block_order(0, 3, 5).tolist())
      [0, 1, 2, 3, 4]
    """
    return np.random.default_rng([batch_seed, epoch, 0]).permutation(n_blocks)


def rows_order(batch_seed: int, epoch: int, block: int, length: int) -> np.ndarray:
    """The order in which epoch ``epoch`` visits the rows of block ``block`` (0 … length−1).

    Example:
      >>> sorted(rows_order(0, 3, 1, 4).tolist())
      [0, 1, 2, 3]
    """
    return np.random.default_rng([batch_seed, epoch, 1, block]).permutation(length)


def epoch_order(batch_seed: int, epoch: int, n_rows: int, block_rows: int) -> np.ndarray:
    """Every row index of one epoch, in the order the epoch visits them (see the module).

    The stream never builds this array (it reads one block at a time); it states the rule,
    for tests and for anyone reproducing a run.

    Example:
      >>> order = epoch_order(batch_seed=0, epoch=0, n_rows=10, block_rows=4)
      >>> sorted(order.tolist()) == list(range(10))
      True
    """
    n_blocks = math.ceil(n_rows / block_rows)
    parts = []
    for block in block_order(batch_seed, epoch, n_blocks):
        start = int(block) * block_rows
        length = min(block_rows, n_rows - start)
        parts.append(start + rows_order(batch_seed, epoch, int(block), length))
    return np.concatenate(parts)


class StreamedBatch(NamedTuple):
    """One step's rows: ``X`` (batch_size, d), ``y`` and ``real`` (False: padding)."""

    X: jax.Array
    y: jax.Array
    real: jax.Array


class BatchReader:
    """Host side of the stream: step t's batch, read from the opened file (thread-safe)."""

    def __init__(self, rows: OpenRows, batch_seed: int, dtype, cached_blocks: int = 2):
        self.rows = rows
        self.batch_seed = batch_seed
        self.dtype = np.dtype(dtype)
        self.n_blocks = math.ceil(rows.n / rows.block_rows)
        self._blocks: collections.OrderedDict = collections.OrderedDict()
        self._epochs: collections.OrderedDict = collections.OrderedDict()
        self._cached = cached_blocks
        self._lock = threading.Lock()

    def batch(self, step: int, batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X, y, real)`` of step ``step``: the rows in file order, then padding."""
        n = self.rows.n
        epoch, index = divmod(int(step), minibatch.steps_per_epoch(n, batch_size))
        start, stop = index * batch_size, min(index * batch_size + batch_size, n)
        with self._lock:
            order, starts = self._epoch(epoch)
            ids, Xs, ys = [], [], []
            slot = int(np.searchsorted(starts, start, side="right")) - 1
            while start < stop:
                first = int(starts[slot])
                length = int(starts[slot + 1]) - first
                lo, hi = start - first, min(stop - first, length)
                block_ids, X, y = self._block(epoch, int(order[slot]))
                ids.append(block_ids[lo:hi])
                Xs.append(X[lo:hi])
                ys.append(y[lo:hi])
                start, slot = first + hi, slot + 1
        ids = np.concatenate(ids)
        in_file_order = np.argsort(ids, kind="stable")
        count = ids.size
        X = np.zeros((batch_size, self.rows.n_features), self.dtype)
        y = np.zeros(batch_size, self.dtype)
        X[:count] = np.concatenate(Xs)[in_file_order]
        y[:count] = np.concatenate(ys)[in_file_order]
        return X, y, np.arange(batch_size) < count

    def _epoch(self, epoch: int):
        if epoch not in self._epochs:
            order = block_order(self.batch_seed, epoch, self.n_blocks)
            R, n = self.rows.block_rows, self.rows.n
            lengths = np.minimum(R, n - order * R)
            self._epochs[epoch] = (order, np.concatenate([[0], np.cumsum(lengths)]))
            if len(self._epochs) > 2:
                self._epochs.popitem(last=False)
        return self._epochs[epoch]

    def _block(self, epoch: int, block: int):
        key = (epoch, block)
        if key not in self._blocks:
            R = self.rows.block_rows
            start = block * R
            X, y = self.rows.read(start, min(start + R, self.rows.n))
            order = rows_order(self.batch_seed, epoch, block, y.size)
            self._blocks[key] = (start + order, X[order], y[order])
            if len(self._blocks) > self._cached:
                self._blocks.popitem(last=False)
        self._blocks.move_to_end(key)
        return self._blocks[key]


#: Open files' readers, by handle. The compiled program holds only the handle (a traced
#: integer), so another file of the same shape reuses the program.
_READERS: dict[int, BatchReader] = {}
_HANDLES = itertools.count(1)


def _host_batch(handle, step, batch_size):
    reader = _READERS.get(int(handle))
    if reader is None:
        raise RuntimeError(f"no open row source with handle {int(handle)}: it was closed "
                           "before the run that reads it finished")
    return reader.batch(int(step), int(batch_size))


class Streamed(NamedTuple):
    """An opened ``RowSource`` during a run: its rows and the handle of its reader."""

    rows: OpenRows
    handle: int

    @property
    def stats(self) -> SufficientStats:
        return self.rows.stats

    @property
    def n(self) -> int:
        return self.rows.n


@partial(jax.tree_util.register_dataclass, data_fields=["stats", "handle"],
         meta_fields=["n_rows"])
@dataclass(frozen=True)
class StreamedRows:
    """What a streamed run reads on device: the moments (as the gram engine's quadratic, for
    the loss on all the rows), and the handle of the host reader."""

    stats: gram.Quadratic
    handle: jax.Array
    n_rows: int


def device_data(data: Streamed) -> StreamedRows:
    """The device data of a streamed mini-batch run, which the direct engine trains on
    (``jaxgd.pipeline.preparation.device_data``'s case; full-batch runs on a file train on
    its moments like any ``SufficientStats``)."""
    return StreamedRows(gram.prepare(data.stats), jnp.asarray(data.handle, jnp.int32), data.n)


def batches(data: StreamedRows, batch_size: int) -> tuple[Batches, Callable]:
    """The batch stream of a streamed run and the loss of a batch (MSE over its real rows).

    Example:
      >>> import pathlib, tempfile, jaxgd
      >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.npy"
      >>> np.save(path, np.arange(15.0).reshape(5, 3))
      >>> with jaxgd.datasets.npy_rows(path).open() as rows, reading(rows, 0) as handle:
      ...     data = StreamedRows(gram.prepare(rows.stats), jnp.int32(handle), rows.n)
      ...     stream, loss = batches(data, batch_size=2)
      ...     _, batch = stream.next(stream.init(), jnp.int32(2))  # the last of epoch 0
      >>> batch.real.tolist(), batch.X.shape
      ([True, False], (2, 2))
    """
    d, dtype = data.stats.mean_x.shape[0], data.stats.mean_x.dtype
    shapes = (jax.ShapeDtypeStruct((batch_size, d), dtype),
              jax.ShapeDtypeStruct((batch_size,), dtype),
              jax.ShapeDtypeStruct((batch_size,), jnp.bool_))
    padded = data.n_rows % batch_size != 0

    def next_batch(state, step):
        # The step is shared by every run of a sweep, so this is one read per step.
        X, y, real = jax.pure_callback(_host_batch, shapes, data.handle, step,
                                       np.int32(batch_size))
        return state, StreamedBatch(X, y, real)

    def loss(params, batch: StreamedBatch):
        return minibatch.rows_mse(params, batch.X, batch.y, batch.real, padded)

    return Batches(init=lambda: (), next=next_batch), loss


def _callback_float() -> np.dtype:
    """The default float, checked to be the one the batch callback's thread will see.

    ``with jax.enable_x64(True):`` holds for its own thread only, and XLA:CPU may run the
    batch callback on one of its threads, where JAX then reads the float64 batch as a
    wrong-dtype float32 output and fails mid-run (or not, for a program small enough to
    run inline). Refused up front, whatever the size, with the fix.
    """
    here, there = default_float(), []
    thread = threading.Thread(target=lambda: there.append(default_float()))
    thread.start()
    thread.join()
    if there[0] != here:
        raise ValueError("streamed mini-batches under `with jax.enable_x64(True):` are not "
                         "supported: the batches are read by a callback on another thread, "
                         "where that setting does not hold; enable float64 for the process "
                         "(JAX_ENABLE_X64=1, or jax.config.update('jax_enable_x64', True))")
    return here


@contextlib.contextmanager
def reading(rows: OpenRows, batch_seed: int) -> Iterator[int]:
    """Registers a reader of ``rows`` in batch order ``batch_seed`` for the ``with`` block;
    yields its handle (what the compiled program passes back to find it)."""
    dtype = _callback_float()
    handle = next(_HANDLES)
    _READERS[handle] = BatchReader(rows, batch_seed, dtype)
    try:
        yield handle
    finally:
        del _READERS[handle]


def run_on_rows(run: Callable[[Any], Any], source: RowSource, y, batch_size, batch_seed,
                grid: Mapping[str, Any] | None = None):
    """Calls ``run(X)`` (``fit`` or ``grid_sweep`` on data X) for a ``RowSource``.

    With ``batch_size`` the file is opened for the call (see ``RowSource.open``) and X is
    its streamed rows: the run reads its batches as it goes, the call returns once every
    batch was read, and the file's temporary copy (CSV) is gone. Without, the run trains on
    the file's sufficient statistics (one pass), exactly as on
    ``accumulate(source.blocks())``. Either way the result carries the source's column
    names (``RowSource.feature_names``, ``target_name``), which its moments and opened rows
    do not.

    Raises:
      ValueError: y given, or a ``batch_seed`` grid axis with several values.
    """
    if y is not None:
        raise ValueError("with a RowSource as the data, y must be None: the file holds the "
                         "targets")
    if batch_size is None:
        return _named(run(accumulate(source.blocks())), source)
    batch_seed = batch_seed_of(batch_seed, grid)
    with source.open() as rows, reading(rows, batch_seed) as handle:
        return _named(jax.block_until_ready(run(Streamed(rows, handle))), source)


def _named(result, source: RowSource):
    """``result`` (a ``Described``) with the source's names; as it is for a nameless file."""
    if source.feature_names is None:
        return result
    return dataclasses.replace(result, feature_names=source.feature_names,
                               target_name=source.target_name)


def batch_seed_of(seed, grid: Mapping[str, Any] | None) -> int:
    axis = (grid or {}).get("batch_seed")
    if axis is not None:
        if np.ndim(axis) != 1 or len(axis) != 1:
            raise ValueError("grid['batch_seed']: rows streamed from a file are read in one "
                             "batch order shared by every run: a batch_seed axis may hold one "
                             f"value only, got {np.asarray(axis).tolist()!r}; run one sweep "
                             "per batch_seed")
        seed = axis[0]
    return 0 if seed is None else check_seed(seed, "batch_seed")
