"""Spreading a sweep over devices: runs across devices, or data rows across devices.

JAX is the distributed engine here: arrays get a ``NamedSharding`` over a one-axis mesh and
the compiled sweep is partitioned by XLA. Runs are independent, so sharding the runs needs no
communication at all; sharding the rows of X (direct engine, large n) makes each device
compute its rows' share of the loss, and XLA inserts the cross-device sum of the gradient.
With several processes (``jax.distributed.initialize``) the mesh spans every process's
devices and each process holds the runs (or rows) its devices own. A sweep larger than the
devices' memory runs chunk by chunk; ``auto_chunk_size`` sizes the chunks by that memory.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxgd.inputs.validation import check_choice

MODES = ("runs", "rows", "none")


def use_every_core() -> bool:
    """Lets XLA:CPU show one device per usable core, so that sweeps spread over all of them.

    XLA:CPU offers one device by default, and one device runs a sweep's small per-step
    kernels on one core. Sets ``--xla_force_host_platform_device_count`` in ``XLA_FLAGS``
    unless it is set already; it takes effect only if no JAX computation has run yet in this
    process (the command line calls it first thing). Accelerators are not affected.

    Returns:
      Whether the flag was set here.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags:
        return False
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    if cores < 2:
        return False
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={cores}".strip()
    return True


def mesh() -> Mesh:
    """A one-axis mesh over every device of every process."""
    return Mesh(np.asarray(jax.devices()), ("devices",))


def device_count(mode: str) -> int:
    """How many devices a sweep in this mode spreads over."""
    return 1 if mode == "none" else jax.device_count()


def padded_size(num_runs: int, mode: str) -> int:
    """Runs rounded up to a multiple of the device count when runs are sharded."""
    devices = device_count(mode) if mode == "runs" else 1
    return math.ceil(num_runs / devices) * devices


def place_runs(tree, mode: str):
    """Per-run inputs (leading axis = runs): split across devices in "runs" mode."""
    if mode != "runs" or jax.device_count() == 1:
        return tree
    sharding = NamedSharding(mesh(), PartitionSpec("devices"))
    if jax.process_count() == 1:  # one batched transfer: half the time of one per leaf
        return jax.device_put(tree, sharding)
    return jax.tree_util.tree_map(lambda leaf: _put(leaf, sharding), tree)


def place_rows(X, y, mode: str):
    """The data: rows split across devices in "rows" mode, else left as they are."""
    if mode != "rows" or jax.device_count() == 1:
        return X, y
    rows = NamedSharding(mesh(), PartitionSpec("devices"))
    return _put(X, rows), _put(y, rows)


def _put(array, sharding: NamedSharding):
    if jax.process_count() == 1:
        return jax.device_put(array, sharding)
    # Several processes: each builds the global array from the slices its devices hold.
    array = np.asarray(array)
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def place_replicated(tree):
    """The same data on every device of every process (needed when several processes run:
    an input of a multi-process program must be a global array)."""
    if jax.process_count() == 1:
        return tree
    replicated = NamedSharding(mesh(), PartitionSpec())
    return jax.tree_util.tree_map(lambda leaf: _put(leaf, replicated), tree)


def gather(tree):
    """The whole result on every process (an all-gather across processes when several run).

    Each process then holds every run's numbers; writing them is left to process 0.
    """
    if jax.process_count() == 1:
        return tree
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(tree, tiled=True)


def check_mode(mode: str, num_rows: int) -> str:
    """Validates a sharding mode; "rows" needs the row count to divide among the devices."""
    check_choice(mode, "sharding_mode", MODES)
    if mode == "rows" and num_rows % jax.device_count():
        raise ValueError(f"sharding_mode='rows' needs the {num_rows} rows to divide evenly "
                         f"among {jax.device_count()} devices")
    return mode


#: A chunk's outputs take about this much memory when no chunk_size is given, on a CPU (or a
#: device that does not say how much memory it has free).
CHUNK_BYTES = 256 * 2**20
#: On a GPU or TPU, the share of each device's free memory a chunk's outputs may take: the
#: loop writes the history once and the program lays it out once more for the result, and
#: XLA needs room for the loop's state and its own scratch.
FREE_MEMORY_SHARE = 0.25


def auto_chunk_size(num_logs: int, n_features: int, n_snapshots: int,
                    devices: Sequence[Any] | None = None) -> int:
    """Runs per chunk so that one chunk's outputs fit the devices that run it.

    On a CPU, about ``CHUNK_BYTES`` of outputs. On a GPU or TPU, ``FREE_MEMORY_SHARE`` of the
    free memory each device reports (``memory_stats()``: bytes_limit − bytes_in_use), times
    the number of devices (the runs are spread over them): a sized-for-CPU chunk would cut a
    65,536-run sweep into pieces on an 80 GB GPU and run it 23× slower (issue 11).

    Args:
      num_logs, n_features, n_snapshots: the history's length, the model's width and the
        snapshots kept: what one run outputs.
      devices: the devices the chunk runs on (None: JAX's devices).

    Example:
      >>> auto_chunk_size(num_logs=1000, n_features=7, n_snapshots=3, devices=[])
      64527
    """
    per_run = 4 * (num_logs + (n_snapshots + 1) * (n_features + 1) + 8)
    return max(1, chunk_bytes(jax.devices() if devices is None else devices) // per_run)


def chunk_bytes(devices: Sequence[Any]) -> int:
    """Bytes of outputs one chunk may take on ``devices`` (see ``auto_chunk_size``)."""
    free = [_free_bytes(device) for device in devices]
    if not free or None in free:  # a CPU, or a device that does not report its memory
        return CHUNK_BYTES
    return max(CHUNK_BYTES, int(FREE_MEMORY_SHARE * min(free)) * len(free))


def _free_bytes(device) -> int | None:
    if getattr(device, "platform", "cpu") == "cpu":
        return None
    try:
        stats = device.memory_stats()
    except (RuntimeError, NotImplementedError, AttributeError):  # a backend without them
        return None
    if not stats or "bytes_limit" not in stats:
        return None
    return max(0, int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)))
