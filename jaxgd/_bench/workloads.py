"""Running every implementation on a problem, checking its history against jaxgd's, and the
workloads and scaling curves of a benchmark run (``run_benchmarks``)."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import jax
import numpy as np

import jaxgd
from jaxgd._bench.baselines import (
    SKLEARN_TARGET,
    SGDOutcome,
    jaxgd_sweep,
    numpy_gd,
    plain_jax_gd,
    sklearn_sgd,
    torch_autograd_gd,
    torch_gd,
)
from jaxgd._bench.fixed_costs import fixed_costs
from jaxgd._bench.machine import measure_machine
from jaxgd._bench.measure import BackgroundCPU, Measured, PeakRSS, measure
from jaxgd._bench.problems import (
    ATOL,
    PLANNING_EFFICIENCY,
    QUICK,
    RTOL,
    BenchConfig,
    Problem,
    auto_mpg_problem,
    method_notes,
    synthetic_problem,
)
from jaxgd._bench.scanpath import direct_row, scan_path
from jaxgd._bench.targets import targets
from jaxgd._bench.work import flops_per_step, limit_seconds, work
from jaxgd.api.settings import Record, Stopping
from jaxgd.engines.engine import choose_engine

IMPL_LABELS = {
    "jaxgd": "jaxgd",
    "numpy": "NumPy by hand (float64)",
    "torch": "PyTorch eager (float32)",
    "torch-autograd": "PyTorch autograd (float32)",
    "plain-jax": "plain JAX jit(vmap(scan)) (float32)",
    "sklearn-sgd": "scikit-learn SGDRegressor (float64, to 1%)",
}
_BASELINES = {"numpy": numpy_gd, "torch": torch_gd, "torch-autograd": torch_autograd_gd}


def _row(impl: str, problem: Problem, K: int, T: int, **fields) -> dict[str, Any]:
    row = {"impl": impl, "label": IMPL_LABELS[impl.split(":")[0]], "engine": "direct",
           "dtype": "float32", "n": problem.n, "d": problem.d, "K": K, "T": T,
           "measured_K": K, "measured_T": T, "extrapolated_from": None, "skipped": None,
           "median_s": None, "times_s": [], "first_call_s": None, "compile_s": None,
           "peak_rss_mb": None, "check": None}
    row.update(fields)
    return row


def _fill_timing(row: dict, m: Measured, scale: float = 1.0) -> dict:
    row.update(median_s=m.median_s * scale, min_s=min(m.times_s) * scale if m.times_s else None,
               times_s=[round(t, 6) for t in m.times_s],
               repeats=len(m.times_s), first_call_s=m.first_s, peak_rss_mb=m.peak_rss_mb)
    if row["impl"].startswith(("jaxgd", "plain-jax")):
        row["compile_s"] = m.compile_s
        row["first_minus_steady_s"] = m.first_s - m.median_s if m.times_s else None
    return row


def _steps_within(budget_s: float, seconds_per_step: float, T: int, least: int) -> int:
    """T, or fewer steps (a multiple of 10 when it can be) that fit the budget."""
    if seconds_per_step * T <= budget_s:
        return T
    fit = int(budget_s / seconds_per_step)
    return min(T, max(least, fit // 10 * 10 if fit >= 10 else fit))


def _runs_direct(engine: str, problem: Problem, K: int, T: int) -> bool:
    """Whether jaxgd's ``engine`` will compute X·θ every step."""
    if engine == "direct":
        return True
    if engine == "auto":
        return choose_engine("auto", problem.n, problem.d, T, K) == "direct"
    return False


def compiled_steps(problem: Problem, K: int, T: int, config: BenchConfig,
                   machine: dict[str, Any]) -> int:
    """Steps a compiled X·θ-every-step run gets: T, unless the work model at a fifth of the
    machine's float32 peak says T steps would take longer than ``compiled_budget_s``."""
    per_step = flops_per_step("direct", problem.n, problem.d, K) / (
        PLANNING_EFFICIENCY * machine["peak_gflops_f32"] * 1e9)
    return _steps_within(config.compiled_budget_s, per_step, T, least=10)


def run_jaxgd(problem: Problem, K: int, T: int, engine: str, config: BenchConfig,
              machine: dict[str, Any]):
    """One jaxgd engine on the problem; returns (row, history or None)."""
    rates = problem.learning_rates(K)
    impl = f"jaxgd:{engine}"
    steps = compiled_steps(problem, K, T, config, machine) if _runs_direct(
        engine, problem, K, T) else T
    m = measure(lambda: jaxgd_sweep(problem.X32, problem.y32, rates, steps, engine),
                repeats=config.repeats, min_repeats=config.min_repeats,
                budget_s=config.budget_s)
    losses, ran = m.output
    label = f"jaxgd engine={engine}" + (f" → {ran}" if engine == "auto" else "")
    row = _row(impl, problem, K, T, label=label, engine=ran, requested_engine=engine,
               measured_T=steps, extrapolated_from=f"T={steps}" if steps < T else None)
    return _fill_timing(row, m, scale=T / steps), np.asarray(losses)


def run_baseline(impl: str, problem: Problem, K: int, T: int, config: BenchConfig):
    """NumPy, torch or torch-autograd, with fewer steps (time extrapolated) past the budget."""
    fn = _BASELINES[impl]
    float64 = impl == "numpy"
    X, y = (problem.X, problem.y) if float64 else (problem.X32, problem.y32)
    rates = problem.learning_rates(K)
    dtype = "float64" if float64 else "float32"
    probe_steps = 1
    per_step = math.inf
    for _ in range(2):  # the first probe also warms up; the faster one estimates a step
        start = time.perf_counter()
        if fn(X, y, rates, probe_steps) is None:
            return _row(impl, problem, K, T, dtype=dtype,
                        skipped="skipped: torch not installed"), None
        per_step = min(per_step, (time.perf_counter() - start) / probe_steps)
    # Three steps at least, so that the history check sees two updates.
    steps = _steps_within(config.baseline_budget_s, per_step, T, least=min(T, 3))
    m = measure(lambda: fn(X, y, rates, steps), repeats=config.repeats,
                min_repeats=config.min_repeats, budget_s=config.budget_s)
    row = _row(impl, problem, K, T, dtype=dtype, measured_T=steps,
               extrapolated_from=f"T={steps}" if steps < T else None)
    return _fill_timing(row, m, scale=T / steps), np.asarray(m.output)


def run_plain_jax(problem: Problem, K: int, T: int, config: BenchConfig,
                  machine: dict[str, Any]):
    rates = problem.learning_rates(K)
    steps = compiled_steps(problem, K, T, config, machine)
    m = measure(lambda: plain_jax_gd(problem.X32, problem.y32, rates, steps),
                repeats=config.repeats, min_repeats=config.min_repeats,
                budget_s=config.budget_s)
    row = _row("plain-jax", problem, K, T, measured_T=steps,
               extrapolated_from=f"T={steps}" if steps < T else None)
    return _fill_timing(row, m, scale=T / steps), np.asarray(m.output)


def sklearn_outcome(problem: Problem, config: BenchConfig) -> tuple[SGDOutcome | None, float]:
    """scikit-learn on ``sklearn_rates`` rates spread over the whole range (the same for
    every K), once per problem; returns (outcome, peak MB)."""
    if problem.sklearn is None:
        rates = problem.learning_rates(config.sklearn_rates)[spread_order(config.sklearn_rates)]
        with PeakRSS() as memory:
            outcome = sklearn_sgd(problem.X, problem.y, rates, problem.optimal_loss,
                                  max_seconds=config.sklearn_rate_budget_s,
                                  total_seconds=config.sklearn_budget_s)
        problem.sklearn = (outcome, memory.peak_mb)
    return problem.sklearn


def spread_order(count: int) -> np.ndarray:
    """Indices 0..count-1 ordered so that every prefix spreads over the range: the ends
    first, then midpoints (so a run cut short by its time budget still spans it).

    Example:
      >>> spread_order(5).tolist()
      [0, 4, 2, 1, 3]
    """
    order = [0, count - 1] if count > 1 else [0]
    step = count - 1
    while len(order) < count and step > 1:
        step = -(-step // 2)
        order += [i for i in range(0, count, step) if i not in order]
    order += [i for i in range(count) if i not in order]
    return np.asarray(order[:count])


def run_sklearn(problem: Problem, K: int, T: int, config: BenchConfig) -> dict[str, Any]:
    """Per-sample SGD, timed to within 1% per rate; its total for K rates is the mean per
    rate over the spread times K (for K=1, the largest rate's own time)."""
    outcome, peak_mb = sklearn_outcome(problem, config)
    row = _row("sklearn-sgd", problem, K, T, dtype="float64", engine="per-sample SGD")
    if outcome is None:
        row["skipped"] = "skipped: scikit-learn not installed"
        return row
    tried = outcome.seconds.size
    # The largest rate comes first: for K=1 (the largest rate alone) it is the measurement.
    total = float(outcome.seconds[0]) if K == 1 else float(outcome.seconds.mean()) * K
    reached = outcome.reached
    row.update(
        median_s=total, measured_K=tried, measured_T=None,
        extrapolated_from=None if K == 1 or tried == K else f"K={tried}",
        times_s=[round(float(v), 6) for v in outcome.seconds], peak_rss_mb=peak_mb,
        reached=int(reached.sum()), tried=tried, diverged=int(outcome.diverged.sum()),
        rate_budget_s=config.sklearn_rate_budget_s,
        sklearn_rates=outcome.learning_rates.tolist(),
        epochs=outcome.epochs.tolist(), best_gap=outcome.best_gap.tolist(),
        seconds_to_target_median=float(np.median(outcome.seconds[reached]))
        if reached.any() else None,
        epochs_to_target_median=float(np.median(outcome.epochs[reached]))
        if reached.any() else None,
        note=f"per rate: partial_fit epochs until MSE ≤ (1+{SKLEARN_TARGET:g})·optimum, "
             f"divergence, or {config.sklearn_rate_budget_s:g} s",
    )
    return row


def compare_histories(history: np.ndarray, reference: np.ndarray, rates: np.ndarray,
                      max_learning_rate: float) -> dict[str, Any]:
    """Checks ``history`` against ``reference`` over the steps both have, on converging rates
    (below 2/λmax, finite in the reference): |a − b| ≤ RTOL·|b| + ATOL·loss₀."""
    steps = min(history.shape[-1], reference.shape[-1])
    a = np.asarray(history, np.float64)[:, :steps]
    b = np.asarray(reference, np.float64)[:, :steps]
    keep = (rates < max_learning_rate) & np.isfinite(b).all(axis=1)
    a, b = a[keep], b[keep]
    scale = np.abs(b[:, :1])
    error = np.abs(a - b)
    relative = error / np.maximum(np.abs(b), np.finfo(np.float32).tiny)
    ok = bool(np.all(error <= RTOL * np.abs(b) + ATOL * scale)) if a.size else False
    return {"ok": ok, "max_rel_err": float(relative.max()) if a.size else None,
            "rtol": RTOL, "atol_times_loss0": ATOL, "rates_compared": int(keep.sum()),
            "steps_compared": steps}


def annotate(row: dict[str, Any], problem: Problem, machine: dict[str, Any]) -> dict[str, Any]:
    """Adds the run's work, achieved rates, fractions of the machine's peaks and the limit."""
    if row["median_s"] is None or row["impl"] == "sklearn-sgd":
        return row
    engine = str(row["engine"]).removesuffix("-fused")  # a fused engine does the same work
    engine = engine if engine in ("direct", "gram", "eigen") else "direct"
    itemsize = 8 if row["dtype"] == "float64" else 4
    total = work(engine, problem.n, problem.d, row["K"], row["T"], itemsize)
    peak_flops = machine["peak_gflops_f64" if itemsize == 8 else "peak_gflops_f32"]
    seconds = row["median_s"]
    limit = limit_seconds(total, peak_flops, machine["peak_gbs"])
    row.update(
        work=total, gflops=total["flops"] / seconds / 1e9,
        flops_fraction=total["flops"] / seconds / 1e9 / peak_flops,
        gbs=total["bytes"] / seconds / 1e9,
        bandwidth_fraction=total["bytes"] / seconds / 1e9 / machine["peak_gbs"],
        limit_s=limit, x_limit=seconds / limit)
    return row


def run_problem(problem: Problem, K: int, T: int, impls: tuple[str, ...],
                config: BenchConfig, machine: dict[str, Any],
                log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Times each implementation on (problem, K, T); checks histories against jaxgd's."""
    rows: list[dict[str, Any]] = []
    histories: dict[str, np.ndarray] = {}
    ran_engines: dict[str, dict] = {}
    for impl in impls:
        if impl.startswith("jaxgd:"):
            engine = impl.split(":")[1]
            if engine in ran_engines:  # auto resolved to it: the very same program
                row = dict(ran_engines[engine], impl=impl, label=f"jaxgd engine={engine}",
                           requested_engine=engine, same_as="jaxgd:auto")
                rows.append(row)
                histories[impl] = histories["jaxgd:auto"]
                continue
            row, history = run_jaxgd(problem, K, T, engine, config, machine)
            if engine == "auto" and history is not None:
                ran_engines[row["engine"]] = row
        elif impl == "plain-jax":
            row, history = run_plain_jax(problem, K, T, config, machine)
        elif impl == "sklearn-sgd":
            row, history = run_sklearn(problem, K, T, config), None
        else:
            row, history = run_baseline(impl, problem, K, T, config)
        if history is not None:
            histories[impl] = history
        rows.append(annotate(row, problem, machine))
        log(_progress_line(problem, row))
    jaxgd_runs = [row for row in rows if row["impl"] in histories
                  and row["impl"].startswith("jaxgd") and not row.get("same_as")]
    reference_impl = max(jaxgd_runs, key=lambda r: (r["measured_T"], r["engine"] == "direct"),
                         default={"impl": None})["impl"]
    if reference_impl is not None:
        rates = problem.learning_rates(K)
        for row in rows:
            if (row["impl"] in histories and row["impl"] != reference_impl
                    and not row.get("same_as")):
                row["check"] = compare_histories(histories[row["impl"]],
                                                 histories[reference_impl], rates,
                                                 problem.max_learning_rate)
                row["check"]["against"] = reference_impl
    return rows


def _progress_line(problem: Problem, row: dict[str, Any]) -> str:
    where = f"[{problem.name} K={row['K']} T={row['T']}] {row['impl']}"
    if row["skipped"]:
        return f"{where}: {row['skipped']}"
    extra = f" (extrapolated from {row['extrapolated_from']})" if row["extrapolated_from"] else ""
    return f"{where}: {row['median_s']:.4g} s{extra}"


WORKLOAD_IMPLS = ("jaxgd:auto", "jaxgd:direct", "jaxgd:gram", "jaxgd:eigen", "numpy", "torch",
                  "torch-autograd", "plain-jax", "sklearn-sgd")


def run_benchmarks(config: BenchConfig = QUICK, log: Callable[[str], None] | None = None,
                   machine: dict[str, Any] | None = None) -> dict[str, Any]:
    """Runs every workload of ``config`` and returns all measurements (JSON-ready).

    Args:
      config: a preset (``QUICK``, ``FULL``, ``SMOKE``) or your own ``BenchConfig``.
      log: called with one line per measurement (default: print to stderr).
      machine: a ``measure_machine`` result to reuse; measured now if None.
    """
    started = time.perf_counter()
    if log is None:
        def log(line: str) -> None:
            print(f"[{time.perf_counter() - started:6.1f} s] {line}", file=sys.stderr,
                  flush=True)

    if machine is None:
        log("measuring the machine's limits ...")
        machine = measure_machine(config.matmul_sizes, config.bandwidth_mb,
                                  config.machine_reps)
    log(f"peak {machine['peak_gflops_f32']:.0f} GFLOP/s float32, "
        f"{machine['peak_gflops_f64']:.0f} float64, {machine['peak_gbs']:.1f} GB/s")
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    cases = [("auto_mpg", K, None, None, config.auto_mpg_steps) for K in config.auto_mpg_ks]
    if config.synthetic is not None:
        n, d, K, T = config.synthetic
        cases.append(("synthetic", K, n, d, T))
    workloads = []
    with BackgroundCPU() as background:
        mpg = auto_mpg_problem()
        for kind, K, n, d, T in cases:
            problem = mpg if kind == "auto_mpg" else synthetic_problem(n, d)
            name = f"auto_mpg K={K}" if kind == "auto_mpg" else f"synthetic n={n} d={d} K={K}"
            with BackgroundCPU() as busy:
                rows = run_problem(problem, K, T, WORKLOAD_IMPLS, config, machine, log)
            workloads.append(_workload(name, problem, K, T, rows, busy.fraction))
            del problem
        with BackgroundCPU() as scaling_busy:
            scaling = run_scaling(config, machine, log)
        log("scan path: µs per step against K, settings A/B, host overhead ...")
        scan = scan_path(mpg, config.scan_ks, config.scan_steps, config.scan_repeats)
        direct = None
        if config.direct is not None:
            n, d, K, T = config.direct
            log(f"direct engine n={n} d={d} K={K} T={T} against a hand-written scan ...")
            direct = direct_row(synthetic_problem(n, d), K, T, max(1, config.scan_repeats // 3))
        early_exit = None
        if config.early_exit is not None:
            with BackgroundCPU() as busy:
                early_exit = run_early_exit(mpg, *config.early_exit, log)
            early_exit["background_cpu"] = busy.fraction
        fixed = None
        if config.fixed_cost_repeats:
            log(f"fixed costs: {config.fixed_cost_repeats} fresh processes each ...")
            fixed = fixed_costs(config.fixed_cost_repeats, log=log)
    results = {
        "schema": 1,
        "mode": config.mode,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": asdict(config),
        "machine": machine,
        "method": method_notes(config),
        "workloads": workloads,
        "scan_path": scan,
        "direct_vs_hand": direct,
        "scaling": scaling,
        "early_exit": early_exit,
        "fixed_costs": fixed,
        "background_cpu": background.fraction,
        "scaling_background_cpu": scaling_busy.fraction,
        "loadavg_before": load_before,
    }
    results["targets"] = targets(results)
    results["elapsed_s"] = time.perf_counter() - started
    return results


def _workload(name: str, problem: Problem, K: int, T: int, rows: list[dict],
              background_cpu: float | None) -> dict:
    return {"name": name, "dataset": problem.name, "n": problem.n, "d": problem.d, "K": K,
            "T": T, "background_cpu": background_cpu,
            "max_learning_rate": problem.max_learning_rate,
            "optimal_loss": problem.optimal_loss,
            "work": {e: work(e, problem.n, problem.d, K, T)
                     for e in ("direct", "gram", "eigen")},
            "rows": rows}


#: The early-exit workload's learning rates, as fractions of 2/λmax: most converge early.
EARLY_EXIT_RATES = (0.02, 0.9)


def run_early_exit(problem: Problem, K: int, T: int, log_every: int,
                   log: Callable[[str], None]) -> dict[str, Any]:
    """``stop_at_convergence`` sweeps with segments (``jaxgd.tuning.segments``, the default) and as
    one plain scan (``segment_steps=T``): run-steps executed, wall time of the first call
    (compiles included) and of a second one, and whether the results agree."""
    rates = problem.max_learning_rate * np.geomspace(*EARLY_EXIT_RATES, K)
    rows = {}
    for name, segment_steps in (("segments", None), ("plain scan", T)):
        def call(segment_steps=segment_steps):
            return jaxgd.sweep(problem.X32, problem.y32, learning_rates=rates, num_steps=T,
                               stopping=Stopping(early_exit=True, segment_steps=segment_steps),
                               record=Record(log_every=log_every), init=0.0)

        times, result = [], None
        for _ in range(2):  # the first call compiles; the second reuses the programs
            start = time.perf_counter()
            result = call()
            jax.block_until_ready(result.losses)
            times.append(time.perf_counter() - start)
        rows[name] = {"first_call_s": times[0], "second_call_s": times[1],
                      "run_steps_executed": result.run_steps_executed,
                      "run_steps_scheduled": result.run_steps_scheduled,
                      "converged": int(np.sum(result.converged)),
                      "diverged": int(np.sum(result.diverged)), "engine": result.engine,
                      "result": result}
        log(f"[early exit K={K} T={T}] {name}: {times[1]:.3g} s, "
            f"{result.run_steps_executed:,} of {result.run_steps_scheduled:,} run-steps")
    a, b = rows["segments"].pop("result"), rows["plain scan"].pop("result")
    finite = np.isfinite(b.losses)
    rel = np.abs(a.losses - b.losses)[finite] / np.maximum(np.abs(b.losses[finite]), 1e-30)
    return {"K": K, "T": T, "log_every": log_every, "rates": list(EARLY_EXIT_RATES),
            "rows": rows,
            "same_verdicts": bool((a.converged_step == b.converged_step).all()
                                  and (a.diverged == b.diverged).all()),
            "same_nan": bool((np.isnan(a.losses) == np.isnan(b.losses)).all()),
            "max_rel_loss_difference": float(rel.max()) if rel.size else 0.0}


def run_scaling(config: BenchConfig, machine: dict[str, Any],
                log: Callable[[str], None]) -> dict[str, list[dict]]:
    """For each axis, vary it from ``scaling_base`` and time ``scaling_impls`` at each value."""
    problems: dict[tuple[int, int], Problem] = {}
    done: dict[tuple[int, int, int, int], list[dict]] = {}
    curves: dict[str, list[dict]] = {}
    for axis, values in config.scaling:
        curves[axis] = []
        for value in values:
            n, d, K, T = _vary(config.scaling_base, axis, value)
            if (n, d, K, T) not in done:
                if (n, d) not in problems:
                    problems[(n, d)] = synthetic_problem(n, d, seed=1)
                rows = run_problem(problems[(n, d)], K, T, config.scaling_impls, config,
                                   machine, log)
                done[(n, d, K, T)] = rows
            for row in done[(n, d, K, T)]:
                curves[axis].append({"value": value, **_slim(row)})
    return curves


def _vary(base: tuple[int, int, int, int], axis: str, value: int):
    n, d, K, T = base
    return {"n": (value, d, K, T), "d": (n, value, K, T), "K": (n, d, value, T),
            "T": (n, d, K, value)}[axis]


def _slim(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("impl", "label", "engine", "n", "d", "K", "T", "median_s", "min_s", "times_s",
            "compile_s",
            "extrapolated_from", "skipped", "gflops", "flops_fraction", "x_limit", "check")
    return {k: row.get(k) for k in keys}
