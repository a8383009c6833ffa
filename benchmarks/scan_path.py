"""The scan path alone: µs per step against K with the settings A/B, the host overhead, the
issue-11 CPU target (K = 8,192 through ``jaxgd.sweep`` against NumPy K = 1) and,
optionally, the direct engine against a hand-written X·W scan.

``python -m benchmarks.scan_path [--ks 1 64 1024 8192] [--repeats 7] [--direct N D K T]
[--json FILE]`` from the repository root; ``--eigen K T`` times only issue 24's sweep
against a bare scan of the same engine. One process and JAX's default devices, as a
user runs it (unlike ``benchmarks.run``, which spreads XLA:CPU over every core). On a GPU,
run it once more with ``XLA_FLAGS=--xla_gpu_enable_command_buffer=`` (command buffers off)
for the command-buffer A/B (``benchmarks/gpu_check.sh`` does).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

import jax
import numpy as np

from jaxgd._bench.baselines import numpy_gd
from jaxgd._bench.problems import auto_mpg_problem, synthetic_problem
from jaxgd._bench.scanpath import (
    SETTINGS,
    direct_row,
    direct_table,
    eigen_row,
    eigen_table,
    scan_path,
    scan_table,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scan_path", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 64, 1024, 8192])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--direct", type=int, nargs=4, metavar=("N", "D", "K", "T"))
    parser.add_argument("--eigen", type=int, nargs=2, metavar=("K", "T"),
                        help="only issue 24's sweep against a bare eigen scan (K runs, T steps)")
    parser.add_argument("--settings", nargs="+", choices=sorted(SETTINGS),
                        default=sorted(SETTINGS), help="which settings of the A/B to time")
    parser.add_argument("--json", metavar="FILE", help="write every measurement here")
    args = parser.parse_args(argv)
    device = jax.devices()[0]
    print(f"# {device.platform}: {device.device_kind}; XLA_FLAGS="
          f"{os.environ.get('XLA_FLAGS', '')!r}; load {os.getloadavg()}")
    problem = auto_mpg_problem()
    if args.eigen:
        row = eigen_row(problem, *args.eigen, args.repeats)
        print(eigen_table(row) + f"\n# load after: {os.getloadavg()}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(row, f, indent=1)
        return 0
    rows = scan_path(problem, args.ks, args.steps, args.repeats,
                     {name: SETTINGS[name] for name in args.settings})
    print(scan_table(rows))
    numpy_s = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        numpy_gd(problem.X, problem.y, problem.learning_rates(1), args.steps)
        numpy_s.append(time.perf_counter() - start)
    numpy_median = float(np.median(numpy_s))
    big = next((r for r in rows if r["setting"] == "default" and r["K"] == max(args.ks)), None)
    print(f"\nNumPy K=1, T={args.steps}: median {1e3 * numpy_median:.2f} ms "
          f"(min {1e3 * min(numpy_s):.2f})")
    if big:
        ms = {key: "—" if big[key] is None else f"{big[key]:.2f}"  # None: chunked
              for key in ("dispatched_ms", "host_ms", "returned_ms")}
        print(f"jaxgd K={big['K']} call / NumPy K=1: {big['call_s'] / numpy_median:.2f}; "
              f"host overhead {ms['dispatched_ms']} ms before the program (call − "
              f"program: {ms['host_ms']} ms), the call returns after {ms['returned_ms']} ms")
    out = {"device": str(device.device_kind), "platform": device.platform,
           "scan_path": rows, "numpy_k1_s": numpy_s, "load": os.getloadavg()}
    if args.direct:
        n, d, K, T = args.direct
        out["direct_vs_hand"] = direct_row(synthetic_problem(n, d), K, T,
                                           max(1, args.repeats // 3))
        print("\n" + direct_table(out["direct_vs_hand"]))
    print(f"# load after: {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
