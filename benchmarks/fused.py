"""The fused path (``jaxgd.engines.fused``) against the scan path, timed through ``jaxgd.sweep``.

``python -m benchmarks.fused [--smoke] [--out FILE.json]`` (from the repository root).

Each workload is Auto MPG with its 7 features standardized, T = 1000 steps, the full loss
history, K learning rates spread over the stable range and past it: sgd at K = 1,024, 8,192
and 65,536 (engine "eigen-fused" against "eigen"), Adam at K = 8,192 ("gram-fused" against
"gram"). Both are called exactly as a user calls ``jaxgd.sweep`` (NumPy data, the float64
reference, default chunking), blocked until the results are ready; the first call compiles
and is not timed, then the median of ``--repeats`` calls. Each fused sweep is checked
against its scan sweep: the largest relative difference of the finite losses, and whether
the converged and diverged verdicts agree.

``--smoke`` runs tiny versions (K = 8 and 12, T = 20) in seconds on any machine: on a CPU
the kernel runs in Pallas's interpreter, so this only proves the script works. A workload
that fails (a kernel the GPU's Pallas cannot lower, say) prints its error and the script
goes on to the next.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import traceback

import jax
import numpy as np

import jaxgd
from jaxgd.engines import fused

#: (optimizer, K, fused engine, scan engine) per workload.
WORKLOADS = [("sgd", 1024, "eigen-fused", "eigen"), ("sgd", 8192, "eigen-fused", "eigen"),
             ("sgd", 65536, "eigen-fused", "eigen"), ("adam", 8192, "gram-fused", "gram")]
SMOKE = [("sgd", 12, "eigen-fused", "eigen"), ("adam", 8, "gram-fused", "gram")]
#: The course's targets on an H100 (issue #11), in ms, where there is one.
TARGETS_MS = {("sgd", 8192): 0.5, ("sgd", 65536): 2.0, ("adam", 8192): 1.0}


def timed(call, repeats: int) -> tuple[float, object]:
    """The median wall time of ``call()`` in seconds (after one untimed call), and a result."""
    result = jax.block_until_ready(call())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = jax.block_until_ready(call())
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def agreement(fused, scan) -> dict:
    """How far the fused sweep is from the scan sweep."""
    a, b = np.asarray(fused.losses, np.float64), np.asarray(scan.losses, np.float64)
    both = np.isfinite(a) & np.isfinite(b)
    rel = np.abs(a - b)[both] / np.maximum(np.abs(b[both]), np.finfo(np.float32).tiny)
    return {"max_rel_loss": float(rel.max()) if rel.size else 0.0,
            "same_nan": bool(np.array_equal(np.isnan(a), np.isnan(b))),
            "same_converged_step": bool(np.array_equal(fused.converged_step,
                                                       scan.converged_step)),
            "same_diverged_step": bool(np.array_equal(fused.diverged_step,
                                                      scan.diverged_step))}


def run(smoke: bool, repeats: int) -> list[dict]:
    data = jaxgd.datasets.auto_mpg()
    X, y = jaxgd.Standardizer.fit(data.X).transform(data.X), data.y
    num_steps = 20 if smoke else 1000
    rows = []
    for optimizer, K, fused_engine, scan_engine in SMOKE if smoke else WORKLOADS:
        # Stable rates up to the limit 2/λmax (~1.0 here) and some past it (sgd diverges).
        rates = np.geomspace(1e-3, 1.5, K) if optimizer == "sgd" else np.geomspace(1e-4, 1, K)
        row = {"optimizer": optimizer, "K": K, "T": num_steps, "fused": fused_engine,
               "scan": scan_engine}

        def call(engine, rates=rates, optimizer=optimizer):
            return jaxgd.sweep(X, y, learning_rates=rates, num_steps=num_steps,
                               optimizer=optimizer, engine=engine)

        for kind in ("scan", "fused"):
            try:
                seconds, row[f"{kind}_result"] = timed(lambda e=row[kind]: call(e), repeats)
                row[f"{kind}_ms"] = 1e3 * seconds
            except Exception as error:  # report it and go on: the other rows still count
                row[f"{kind}_error"] = f"{type(error).__name__}: {error}"[:2000]
                traceback.print_exc()
        if "fused_result" in row and "scan_result" in row:
            row.update(agreement(row["fused_result"], row["scan_result"]))
        row.pop("fused_result", None), row.pop("scan_result", None)
        row["target_ms"] = TARGETS_MS.get((optimizer, K))
        rows.append(row)
        print(line(row), flush=True)
    return rows


def line(row: dict) -> str:
    fused = f"{row['fused_ms']:.3f} ms" if "fused_ms" in row else "failed"
    scan = f"{row['scan_ms']:.3f} ms" if "scan_ms" in row else "failed"
    check = (f"max rel {row['max_rel_loss']:.1e}, verdicts "
             f"{'same' if row['same_converged_step'] and row['same_diverged_step'] else 'DIFFER'}"
             if "max_rel_loss" in row else "no check")
    return (f"| {row['optimizer']} K={row['K']} T={row['T']} | {row['fused']} {fused} | "
            f"{row['scan']} {scan} | target {row['target_ms'] or '—'} ms | {check} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny workloads, any machine")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per workload")
    parser.add_argument("--out", default=None, help="write the rows to this JSON file")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.smoke else 5)
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, {jax.devices()[0]}; "
          f"{fused.BLOCK_RUNS} runs per kernel program", flush=True)
    print("| workload | fused | scan | goal (H100) | fused vs scan |\n|---|---|---|---|---|")
    rows = run(args.smoke, repeats)
    if args.out:
        with open(args.out, "w") as file:
            json.dump({"backend": jax.default_backend(), "device": str(jax.devices()[0]),
                       "jax": jax.__version__, "rows": rows}, file, indent=1)


if __name__ == "__main__":
    main()
