"""This machine's limits, measured: peak matmul GFLOP/s and memory bandwidth, plus its
description (CPU, cores, JAX backend and devices, versions).

The measurement lives in ``jaxgd/_bench/machine.py`` (``measure_machine``) so that ``jaxgd bench``
has it when installed; every benchmark run measures the machine again in the same process,
so its fractions of peak compare like with like. Run this module to see the numbers alone:
``python -m benchmarks.machine``.
"""

from __future__ import annotations

from jaxgd._bench import (
    bandwidth_gbs,
    cpu_model,
    describe_machine,
    machine_lines,
    matmul_gflops,
    measure_machine,
)

__all__ = ["bandwidth_gbs", "cpu_model", "describe_machine", "matmul_gflops",
           "measure_machine"]


def main() -> None:
    print("\n".join(machine_lines(measure_machine())))


if __name__ == "__main__":
    main()
