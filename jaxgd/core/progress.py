"""Progress reports from inside the compiled loop, and a terminal progress bar.

With ``progress_every=N`` the descent loop calls ``report(steps_done)`` on the host every N
steps through ``jax.debug.callback``. Under ``vmap`` the step counter is shared by every run
of a sweep, so a sweep of 8192 runs still reports once per N steps, not 8192 times.
``report`` hands the count to whoever listens (``listening``); with nobody listening it does
nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

_listeners: list[Callable[[int], None]] = []
_offset = [0]  # steps done before the current compiled call (chunked sweeps)


def report(steps_done) -> None:
    """Called from the compiled loop with the number of steps done."""
    for listener in list(_listeners):
        listener(_offset[0] + int(steps_done))


@contextmanager
def shifted(steps_before: int) -> Iterator[None]:
    """Reports inside the block count on from ``steps_before`` (a chunk of a long sweep)."""
    previous, _offset[0] = _offset[0], steps_before
    try:
        yield
    finally:
        _offset[0] = previous


@contextmanager
def listening(listener: Callable[[int], None]) -> Iterator[None]:
    """Sends progress reports to ``listener`` while the block runs.

    Example:
      >>> import numpy as np, jaxgd
      >>> seen = []
      >>> with listening(seen.append):
      ...     _ = jaxgd.fit(np.ones((3, 1)), np.ones(3), learning_rate=0.1, num_steps=20,
      ...                   record=jaxgd.Record(progress_every=5))
      >>> seen
      [5, 10, 15, 20]
    """
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


class ProgressBar:
    """A one-line progress bar: steps done of total and the rate, redrawn in place.

    Example:
      >>> import io
      >>> out = io.StringIO()
      >>> bar = ProgressBar(100, stream=out, enabled=True)
      >>> bar(50); bar.close()
      >>> "50/100 steps" in out.getvalue()
      True
    """

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool | None = None):
        self.total = total
        self.stream = sys.stderr if stream is None else stream
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.start = time.perf_counter()
        self.shown = False

    def __call__(self, done: int) -> None:
        if not self.enabled:
            return
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        width = 30
        filled = round(width * done / self.total)
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r[{bar}] {done}/{self.total} steps  {done / elapsed:,.0f} steps/s")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
