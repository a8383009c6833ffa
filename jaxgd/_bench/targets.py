"""The "Performance" issue's targets, each with its measured ratio and met / missed / not
measured, from a benchmark run's results."""

from __future__ import annotations

from typing import Any

import numpy as np

# Thresholds of the "Performance" issue's targets (see ``targets``).
TARGET_K8192_VS_NUMPY_K1 = 1.0  # (a) jaxgd 8192 rates / NumPy one rate: at most (less time)
TARGET_VS_NUMPY = 100.0  # (b) K=1024 speed-up over NumPy: at least
TARGET_VS_PLAIN_JAX = 30.0  # (b) K=1024 speed-up over plain JAX: at least
TARGET_DIRECT_VS_LIMIT = 2.0  # (c) direct engine time / machine limit: at most
TARGET_GRAM_VS_NUMPY = 50.0  # (c) gram engine speed-up over NumPy: at least
TARGET_COMPILE_S = 1.0  # (d) sweep compile time in seconds: at most
TARGET_HOST_MS = 1.0  # (e) per-call host overhead of jaxgd.sweep on Auto MPG, ms: at most
TARGET_DIRECT_VS_HAND = 1.2  # (f) direct engine / hand-written X·W scan: at most


def _find(results: dict, workload: str, impl: str) -> dict | None:
    for w in results["workloads"]:
        if w["name"] == workload:
            for row in w["rows"]:
                if row["impl"] == impl and row["median_s"] is not None and not row["skipped"]:
                    return row
    return None


def _target(name: str, description: str, measured: float | None, threshold: float | None,
            at_most: bool, detail: str) -> dict[str, Any]:
    if measured is None or threshold is None:
        met = None
    else:
        met = measured <= threshold if at_most else measured >= threshold
    goal = "none given" if threshold is None else f"{'≤' if at_most else '≥'} {threshold:g}"
    return {"name": name, "description": description, "measured": measured, "target": goal,
            "met": met, "detail": detail if measured is not None else "not measured in this mode"}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with its measured ratio and met / missed / not measured."""
    out = []
    big = _find(results, "auto_mpg K=8192", "jaxgd:auto")
    one = _find(results, "auto_mpg K=1", "numpy")
    ratio = big["median_s"] / one["median_s"] if big and one else None
    out.append(_target(
        "a", "Auto MPG: jaxgd K=8192 wall time / NumPy K=1 wall time", ratio,
        TARGET_K8192_VS_NUMPY_K1, True,
        f"{big['median_s']:.4g} s / {one['median_s']:.4g} s" if ratio else ""))
    for impl, threshold, what in (("numpy", TARGET_VS_NUMPY, "NumPy"),
                                  ("plain-jax", TARGET_VS_PLAIN_JAX, "plain JAX")):
        ours = _find(results, "auto_mpg K=1024", "jaxgd:auto")
        theirs = _find(results, "auto_mpg K=1024", impl)
        speedup = theirs["median_s"] / ours["median_s"] if ours and theirs else None
        out.append(_target(
            "b", f"Auto MPG K=1024: {what} time / jaxgd time", speedup, threshold, False,
            f"{theirs['median_s']:.4g} s / {ours['median_s']:.4g} s"
            + (f" ({what} extrapolated from {theirs['extrapolated_from']})"
               if theirs["extrapolated_from"] else "") if speedup else ""))
    synthetic = next((w["name"] for w in results["workloads"]
                      if w["name"].startswith("synthetic")), "synthetic")
    direct = _find(results, synthetic, "jaxgd:direct")
    out.append(_target(
        "c", f"{synthetic}: direct engine time / machine limit",
        direct["x_limit"] if direct else None, TARGET_DIRECT_VS_LIMIT, True,
        f"{direct['median_s']:.4g} s vs limit {direct['limit_s']:.4g} s "
        f"({direct['gflops']:.0f} GFLOP/s, {100 * direct['flops_fraction']:.0f}% of peak)"
        if direct else ""))
    gram = _find(results, synthetic, "jaxgd:gram")
    numpy = _find(results, synthetic, "numpy")
    speedup = numpy["median_s"] / gram["median_s"] if gram and numpy else None
    out.append(_target(
        "c", f"{synthetic}: NumPy time / gram engine time", speedup, TARGET_GRAM_VS_NUMPY,
        False, f"{numpy['median_s']:.4g} s / {gram['median_s']:.4g} s"
        + (f" (NumPy extrapolated from {numpy['extrapolated_from']})"
           if numpy["extrapolated_from"] else "") if speedup else ""))
    compiles = [(w["name"], row["impl"], row["compile_s"]) for w in results["workloads"]
                for row in w["rows"] if row["impl"].startswith("jaxgd") and row.get("compile_s")
                and not row.get("same_as")]
    worst = max(compiles, key=lambda c: c[2]) if compiles else None
    out.append(_target(
        "d", "sweep compile time, seconds (the slowest jaxgd sweep of the workloads)",
        worst[2] if worst else None, TARGET_COMPILE_S, True,
        f"{worst[1]} on {worst[0]}; median of {len(compiles)} sweeps "
        f"{np.median([c[2] for c in compiles]):.3g} s" if worst else ""))
    out += _scan_targets(results)
    machine = results["machine"]
    on_gpu = machine["jax_backend"] == "gpu"
    out.append({"name": "GPU", "description": "the same workloads on a GPU",
                "measured": machine["device_kind"] if on_gpu else None, "target": "—",
                "met": None,
                "detail": "every workload above ran on it" if on_gpu else
                          f"not measured here (JAX backend {machine['jax_backend']}); "
                          "BENCHMARKS.md's GPU section has a run on a GPU"})
    return out


def _scan_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 11's targets from the scan-path section (``jaxgd._bench.scanpath``)."""
    scan = [r for r in results.get("scan_path") or [] if r["setting"] == "default"]
    big = max((r for r in scan if r["program_s"] is not None), key=lambda r: r["K"],
              default=None)
    one = _find(results, "auto_mpg K=1", "numpy")
    k8192 = next((r for r in scan if r["K"] == 8192), None)
    ratio = k8192["call_s"] / one["median_s"] if k8192 and one else None
    # The issue asks for JAX's default devices (one on a CPU); `jaxgd bench` and
    # benchmarks.run spread XLA:CPU over every core, so say what this process had.
    devices = len(results.get("machine", {}).get("devices", [])) or "?"
    out = [_target(
        "a2", "Auto MPG K=8192 through jaxgd.sweep as a user calls it (defaults, reference on, "
        f"{devices} device(s)) / NumPy K=1", ratio, TARGET_K8192_VS_NUMPY_K1, True,
        f"{k8192['call_s']:.4g} s / {one['median_s']:.4g} s" if ratio else "")]
    # The host's work in front of the program, timed directly (the call minus its program
    # is the difference of two medians of ~100 ms at K=8192: noise larger than the target).
    host = big and big.get("dispatched_ms")
    out.append(_target(
        "e", f"per-call host overhead of jaxgd.sweep on Auto MPG K={big['K'] if big else '—'}, "
        f"{devices} device(s), ms (from the call until its program is dispatched)", host,
        TARGET_HOST_MS, True,
        f"call − program: {1e3 * big['call_s']:.2f} − {1e3 * big['program_s']:.2f} ms = "
        f"{big['host_ms']:.2f} ms" if host else ""))
    direct = results.get("direct_vs_hand")
    out.append(_target(
        "f", "direct engine as a user calls it / hand-written X·W scan (device arrays)",
        direct["ratio_user"] if direct else None, TARGET_DIRECT_VS_HAND, True,
        f"n={direct['n']} d={direct['d']} K={direct['K']} T={direct['T']}; from device "
        f"arrays without the reference {direct['ratio_device']:.2f}" if direct else ""))
    return out
