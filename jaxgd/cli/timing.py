"""Wall time split into compiling and running, from JAX's own compile events."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import jax


@dataclass
class Timing:
    """Seconds spent in a block: ``total``, of which ``compile`` went to tracing, lowering
    and compiling (as JAX reports it); ``run`` is the rest."""

    total: float = 0.0
    compile: float = 0.0

    @property
    def run(self) -> float:
        return max(self.total - self.compile, 0.0)


@contextmanager
def timed() -> Iterator[Timing]:
    """Times a block and the JAX compilation inside it.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> with timed() as t:
      ...     _ = jax.jit(lambda x: x * 2)(jnp.ones(3)).block_until_ready()
      >>> t.total >= t.compile >= 0
      True
    """
    timing = Timing()

    def listener(event: str, duration: float, **_) -> None:
        if event.startswith("/jax/core/compile/"):
            timing.compile += duration

    jax.monitoring.register_event_duration_secs_listener(listener)
    start = time.perf_counter()
    try:
        yield timing
    finally:
        timing.total = time.perf_counter() - start
        jax.monitoring.unregister_event_duration_listener(listener)
