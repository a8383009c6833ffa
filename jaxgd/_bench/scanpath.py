"""The scan path as a user calls it: µs per step against K, an A/B of its settings, the
per-call host overhead, and the direct engine against a hand-written X·W scan.

Every time here is of ``jaxgd.sweep`` called with its defaults (the float64 reference on,
one process, JAX's default devices), blocked until the result is ready, in steady state
(the first call, which compiles, is left out). The compiled program alone is timed by
calling again the very program the sweep dispatched (captured from
``jaxgd.api.grid._members_compiled``) with the same inputs: the call's time minus the
program's is the host's share (checks, reference, engine data, dispatch, result). Settings
are timed interleaved, one call of each in turn, so that a busy machine slows them alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxgd
from jaxgd._bench.baselines import _plain_jax, bare_eigen_scan
from jaxgd._bench.problems import Problem
from jaxgd.api import grid
from jaxgd.api.settings import Placement, Record, Stopping
from jaxgd.data import statistics
from jaxgd.engines import eigen

#: The A/B of the scan path's settings: name -> keywords of ``jaxgd.sweep``.
SETTINGS: dict[str, dict[str, Any]] = {
    "default": {},
    "unroll=8": {"placement": Placement(unroll=8)},
    "unroll=32": {"placement": Placement(unroll=32)},
    "no snapshots": {"record": Record(snapshot_steps=())},
}


def user_sweep(problem: Problem, K: int, T: int, **settings) -> Callable[[], Any]:
    """``jaxgd.sweep`` on the problem's float32 data with K learning rates, as a user calls
    it (defaults but ``settings``), blocked until ready."""
    rates = problem.learning_rates(K)

    def call():
        result = jaxgd.sweep(problem.X32, problem.y32, learning_rates=rates, num_steps=T,
                             **settings)
        jax.block_until_ready(result.losses)
        return result

    return call


def captured_program(call: Callable[[], Any]) -> Callable[[], Any]:
    """The compiled program that one ``call`` dispatched, as a function that runs it again
    on the same inputs (blocked); None if the call ran several chunks."""
    seen = []
    compiled = grid._members_compiled

    def spy(*args, **kwargs):
        seen.append((args, kwargs))
        return compiled(*args, **kwargs)

    grid._members_compiled = spy
    try:
        call()
    finally:
        grid._members_compiled = compiled
    if len(seen) != 1:
        return None
    args, kwargs = seen[0]
    return lambda: jax.block_until_ready(compiled(*args, **kwargs))


def returned_ms(call_unblocked: Callable[[], Any], repeats: int) -> tuple[list[float], list[float]]:
    """Milliseconds until ``jaxgd.sweep`` dispatches its program, and until it returns
    (the program dispatched but not waited for), per call; each call is waited for before
    the next.

    The first is the host's work in front of the program (checks, reference, engine data,
    the dispatch itself): what a blocked call adds to its program, the issue's host
    overhead, measured directly rather than as the difference of two noisy medians. The
    second adds what the host does while the program runs (the result's assembly), which
    overlaps the program and competes with it for the CPU's cores on XLA:CPU.
    """
    jax.block_until_ready(call_unblocked().losses)
    compiled = grid._members_compiled
    dispatched_at = []

    def spy(*args, **kwargs):
        out = compiled(*args, **kwargs)
        dispatched_at.append(time.perf_counter())
        return out

    dispatched, returned = [], []
    grid._members_compiled = spy
    try:
        for _ in range(repeats):
            dispatched_at.clear()
            start = time.perf_counter()
            result = call_unblocked()
            returned.append(1e3 * (time.perf_counter() - start))
            if len(dispatched_at) == 1:  # one program (a chunked sweep has several)
                dispatched.append(1e3 * (dispatched_at[0] - start))
            jax.block_until_ready(result.losses)
    finally:
        grid._members_compiled = compiled
    return dispatched, returned


def interleaved(calls: Mapping[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each call, ``repeats`` rounds of one call each in turn (after one warm-up)."""
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return times


def scan_path(problem: Problem, Ks, T: int, repeats: int,
              settings: Mapping[str, dict[str, Any]] = SETTINGS) -> list[dict[str, Any]]:
    """Per K and setting: the call's and the program's median seconds, µs per step (of the
    program, all K runs together) and the host's share in ms (the difference of two
    medians: noisy on a busy machine); for the default setting also the median times
    until the program is dispatched and until the call returns, unblocked
    (``returned_ms``): the first is the host overhead measured directly."""
    rows = []
    for K in Ks:
        rates = problem.learning_rates(K)
        unblocked = partial(jaxgd.sweep, problem.X32, problem.y32, learning_rates=rates,
                            num_steps=T)
        dispatched, returned = returned_ms(unblocked, 3 * repeats)
        calls = {}
        for name, kw in settings.items():
            call = user_sweep(problem, K, T, **kw)
            calls[f"call {name}"] = call
            program = captured_program(call)
            if program is not None:  # a chunked sweep has no one program to time
                calls[f"program {name}"] = program
        times = interleaved(calls, repeats)
        for name in settings:
            call_s = float(np.median(times[f"call {name}"]))
            program = times.get(f"program {name}")
            program_s = float(np.median(program)) if program else None
            rows.append({"K": K, "T": T, "setting": name, "call_s": call_s,
                         "call_min_s": min(times[f"call {name}"]), "program_s": program_s,
                         "us_per_step": None if program_s is None else 1e6 * program_s / T,
                         "host_ms": None if program_s is None else 1e3 * (call_s - program_s),
                         "returned_ms": float(np.median(returned)) if name == "default"
                         else None,
                         "dispatched_ms": float(np.median(dispatched))
                         if name == "default" and dispatched else None, "repeats": repeats})
    return rows


def direct_row(problem: Problem, K: int, T: int, repeats: int) -> dict[str, Any]:
    """The direct engine as a user calls it (NumPy arrays, reference on) and from device
    arrays without the reference, against a hand-written ``jit(vmap(scan))`` of X·w steps
    on device arrays, float32 both (full precision: XLA:CPU has no TF32)."""
    rates = problem.learning_rates(K)
    X, y = jax.device_put(problem.X32), jax.device_put(problem.y32)
    device_rates = jax.device_put(rates.astype(np.float32))

    def jaxgd_call(data, **kw):
        def call():
            result = jaxgd.sweep(*data, learning_rates=rates, num_steps=T, engine="direct",
                                 init=0.0, **kw)
            return jax.block_until_ready(result.losses)
        return call

    plain = Stopping(reference=False)
    calls = {"jaxgd (NumPy arrays, reference)": jaxgd_call((problem.X32, problem.y32)),
             "jaxgd (device arrays, no reference)": jaxgd_call((X, y), stopping=plain),
             "hand-written X·W scan": lambda: _plain_jax(X, y, device_rates, T)
             .block_until_ready()}
    times = interleaved(calls, repeats)
    medians = {name: float(np.median(ts)) for name, ts in times.items()}
    hand = medians["hand-written X·W scan"]
    return {"n": problem.n, "d": problem.d, "K": K, "T": T, "median_s": medians,
            "ratio_user": medians["jaxgd (NumPy arrays, reference)"] / hand,
            "ratio_device": medians["jaxgd (device arrays, no reference)"] / hand,
            "repeats": repeats}


def scan_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: µs per step against K for each setting, and the host's share."""
    head = ("| K | setting | call (ms) | program (ms) | µs / step | call − program (ms) "
            "| host before the program (ms) | returns after (ms) |")
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        chunked = r["program_s"] is None
        lines.append(f"| {r['K']} | {r['setting']} | {1e3 * r['call_s']:.2f} | " + (
            "chunked | — | — |" if chunked else f"{1e3 * r['program_s']:.2f} | "
            f"{r['us_per_step']:.2f} | {r['host_ms']:.2f} |")
            + "".join(f" {r[key]:.2f} |" if r.get(key) is not None else " — |"
                      for key in ("dispatched_ms", "returned_ms")))
    return "\n".join(lines)


def direct_table(row: dict[str, Any]) -> str:
    lines = [f"n={row['n']}, d={row['d']}, K={row['K']}, T={row['T']}", "",
             "| implementation | median (s) | / hand-written |", "|---|---|---|"]
    hand = row["median_s"]["hand-written X·W scan"]
    for name, seconds in row["median_s"].items():
        lines.append(f"| {name} | {seconds:.4g} | {seconds / hand:.2f} |")
    return "\n".join(lines)


def eigen_row(problem: Problem, K: int, T: int, repeats: int) -> dict[str, Any]:
    """Issue 24's overhead of jaxgd around its compiled loop: ``jaxgd.sweep`` as a user calls
    it (NumPy arrays, defaults: the eigen engine, verdicts, freezing, the three snapshots)
    and the program it dispatched, against the bare ``jit(vmap(scan))`` of the same engine
    that returns the same ``(K, T)`` history (``bare_eigen_scan``), float32, interleaved.
    Medians and minima of wall time, and of the process's CPU time (all threads), which a
    busy machine's descheduling inflates less."""
    rates = problem.learning_rates(K)
    basis = eigen.to_device(eigen.eigen_basis(statistics.sufficient_statistics(
        problem.X, problem.y)), jnp.float32)
    start = tuple(jnp.full((K,), 0.01, jnp.float32) for _ in range(problem.d + 1))
    device_rates = jax.device_put(rates.astype(np.float32))
    sweep = user_sweep(problem, K, T)
    calls = {"jaxgd.sweep": sweep, "its program": captured_program(sweep),
             "bare jit(vmap(scan))": lambda: bare_eigen_scan(
                 basis, device_rates, start, T).block_until_ready()}
    wall: dict[str, list[float]] = {name: [] for name in calls}
    cpu: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        call()
    for _ in range(repeats):
        for name, call in calls.items():
            began, began_cpu = time.perf_counter(), time.process_time()
            call()
            wall[name].append(time.perf_counter() - began)
            cpu[name].append(time.process_time() - began_cpu)
    stats = {name: {"wall_median_s": float(np.median(wall[name])), "wall_min_s": min(wall[name]),
                    "cpu_median_s": float(np.median(cpu[name])), "cpu_min_s": min(cpu[name])}
             for name in calls}
    bare = stats["bare jit(vmap(scan))"]
    return {"K": K, "T": T, "repeats": repeats, "stats": stats,
            "ratios": {name: {key: s[key] / bare[key] for key in s} for name, s in stats.items()}}


def eigen_table(row: dict[str, Any]) -> str:
    """Markdown of ``eigen_row``: ms and the ratio to the bare scan, median and min."""
    lines = [f"Auto MPG, eigen engine, K={row['K']}, T={row['T']}, {row['repeats']} rounds",
             "", "| | wall median (ms) | wall min (ms) | CPU median (ms) | CPU min (ms) |",
             "|---|---|---|---|---|"]
    for name, s in row["stats"].items():
        r = row["ratios"][name]
        lines.append(f"| {name} | " + " | ".join(
            f"{1e3 * s[key]:.1f} ({r[key]:.2f}×)" for key in
            ("wall_median_s", "wall_min_s", "cpu_median_s", "cpu_min_s")) + " |")
    return "\n".join(lines)
