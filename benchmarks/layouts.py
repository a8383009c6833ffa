"""Sweep time with and without the scalar layout (``jaxgd.engines.layout``), per engine, on this
machine's default backend: the measurement behind ``layout.MAX_SCALARS``.

``python -m benchmarks.layouts [K ...]`` prints one line per (engine, layout, K): the median
of 5 timed sweeps (Auto MPG, 7 standardized features, T = 1000, full history) after one
warm-up call, and that call's compile time.
"""

from __future__ import annotations

import sys
import time

import jax
import numpy as np

import jaxgd
from jaxgd._bench import auto_mpg_problem
from jaxgd.cli.timing import timed
from jaxgd.engines import layout
from jaxgd.pipeline.sharding import use_every_core


def measure(engine: str, K: int, scalars: bool, steps: int = 1000, repeats: int = 5):
    """(median seconds, compile seconds) of one sweep of K learning rates."""
    problem = auto_mpg_problem()
    rates = problem.learning_rates(K)
    saved = layout.MAX_SCALARS
    layout.MAX_SCALARS = saved if scalars else 0
    jax.clear_caches()  # the layout is read while tracing: no cached program may be reused
    try:
        def run():
            result = jaxgd.sweep(problem.X32, problem.y32, learning_rates=rates,
                                 num_steps=steps, stopping=jaxgd.Stopping(reference=False),
                                 init=0.0, engine=engine)
            jax.block_until_ready(result.losses)

        with timed() as first:
            run()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
    finally:
        layout.MAX_SCALARS = saved
    return float(np.median(times)), first.compile


def main(argv: list[str]) -> None:
    use_every_core()
    ks = [int(k) for k in argv] or [64, 1024, 8192]
    print(f"backend {jax.default_backend()}, devices {jax.device_count()}: "
          f"{jax.devices()[0].device_kind}")
    for engine in ("eigen", "gram"):
        for K in ks:
            for scalars in (True, False):
                median, compile_s = measure(engine, K, scalars)
                print(f"{engine:5s} {'scalars' if scalars else 'arrays ':7s} K={K:5d}: "
                      f"{median * 1e3:8.2f} ms  (compile {compile_s:.2f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
