"""The memory goal: a sweep of 10⁶ learning-rate × seed members × 1000 steps within 4 GB.

``python -m benchmarks.memory`` runs ``jaxgd.sweep`` on Auto MPG (7 standardized features)
over 1000 learning rates × 1000 seeds, 1000 steps, ``log_every=10`` (chunked automatically),
and prints the wall time, the engine and the peak resident memory of the process.
"""

from __future__ import annotations

import resource
import time

import numpy as np

import jaxgd
from jaxgd._bench import auto_mpg_problem
from jaxgd.pipeline.sharding import use_every_core


def main() -> None:
    use_every_core()
    problem = auto_mpg_problem()
    rates = problem.learning_rates(1000)
    start = time.perf_counter()
    result = jaxgd.sweep(problem.X32, problem.y32, learning_rates=rates, seeds=range(1000),
                         num_steps=1000, record=jaxgd.Record(log_every=10))
    seconds = time.perf_counter() - start
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(f"{result.losses.shape[0] * result.losses.shape[1]} runs × 1000 steps "
          f"(history {result.losses.shape}), engine {result.engine}: {seconds:.1f} s, "
          f"peak RSS {peak_gib:.2f} GiB, converged {np.mean(result.converged):.1%}")


if __name__ == "__main__":
    main()
