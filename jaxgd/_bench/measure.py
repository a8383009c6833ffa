"""Measuring a call: the first call (compile time from JAX, peak memory), then steady-state
repeats within a time budget; and how busy the rest of the machine was meanwhile."""

from __future__ import annotations

import gc
import os
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jaxgd.cli.timing import timed


def _rss_bytes() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakRSS:
    """Peak resident-set growth over a block, sampled from /proc/self/statm every 2 ms.

    Unlike ``ru_maxrss`` it sees a block's own peak even after an earlier, bigger one.
    Memory an allocator kept from before the block and reused is not counted.
    """

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.peak_mb = 0.0

    def __enter__(self) -> PeakRSS:
        gc.collect()
        self._base = self._peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, _rss_bytes())

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, _rss_bytes())
        self.peak_mb = (self._peak - self._base) / 2**20


class BackgroundCPU:
    """The share of all cores that other processes used over a block (from /proc/stat minus
    this process's own CPU time): a busy machine makes every timing in the block slower."""

    def __enter__(self) -> BackgroundCPU:
        self.fraction: float | None = None
        self._start = (_busy_cpu_seconds(), _own_cpu_seconds(), time.perf_counter())
        return self

    def __exit__(self, *_) -> None:
        busy, own, start = self._start
        now = _busy_cpu_seconds()
        if busy is None or now is None:
            return
        elapsed = time.perf_counter() - start
        others = (now - busy) - (_own_cpu_seconds() - own)
        self.fraction = max(0.0, others / (elapsed * (os.cpu_count() or 1)))


def _busy_cpu_seconds() -> float | None:
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


@dataclass
class Measured:
    """Timings of one implementation on one configuration (seconds, as measured)."""

    output: Any
    first_s: float
    compile_s: float
    times_s: list[float]
    peak_rss_mb: float

    @property
    def median_s(self) -> float:
        return float(np.median(self.times_s)) if self.times_s else self.first_s - self.compile_s


def measure(call: Callable[[], Any], *, repeats: int, min_repeats: int,
            budget_s: float) -> Measured:
    """Calls ``call`` once (timing JAX's compilation inside it and the peak memory), then
    again for steady-state times: ``min_repeats`` at least, up to ``repeats`` while the
    repeats so far plus one more fit in ``budget_s``. With no repeat, the time is the first
    call's minus its compile time."""
    with PeakRSS() as memory, timed() as first:
        output = call()
    times: list[float] = []
    spent, next_call = 0.0, first.total - first.compile
    while len(times) < repeats and (len(times) < min_repeats or spent + next_call <= budget_s):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
        spent, next_call = spent + times[-1], times[-1]
    return Measured(output, first.total, first.compile, times, memory.peak_mb)
