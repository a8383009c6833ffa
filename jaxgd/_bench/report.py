"""The benchmark's report: markdown tables, the scaling plot and the JSON of every
measurement, and what ``jaxgd bench`` prints."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from jaxgd._bench.baselines import optional
from jaxgd._bench.problems import BUSY_WARNING, LR_HIGH
from jaxgd._bench.problems import method_notes as method_notes  # re-exported
from jaxgd._bench.scanpath import direct_table, scan_table
from jaxgd.cli import lock
from jaxgd.cli.results import staging, write_atomic

_TABLE_HEAD = ("implementation", "K×T run", "time (s)", "compile (s)", "peak MB",
               "GFLOP/s", "% peak", "× limit", "history check")

def _fmt(value, spec: str = ".3g", none: str = "—") -> str:
    return none if value is None else format(value, spec)


def _table_row(row: dict[str, Any]) -> tuple[str, ...]:
    label = row.get("label") or row["impl"]
    if row["skipped"]:
        return (label, "—", row["skipped"], "—", "—", "—", "—", "—", "—")
    ran = f"{row['measured_K']}×{row['measured_T']}"
    if row["impl"] == "sklearn-sgd":
        ran = f"{row['measured_K']} rates, ≤{row['rate_budget_s']:g} s each"
    time_s = _fmt(row["median_s"], ".4g")
    if row["extrapolated_from"]:
        time_s += f" (extrapolated from {row['extrapolated_from']})"
    if row.get("same_as"):
        time_s += f" (same program as {row['same_as']})"
    if row["impl"] == "sklearn-sgd":
        time_s += f"; {row['reached']}/{row['tried']} rates reached 1%"
        if row["diverged"]:
            time_s += f", {row['diverged']} diverged"
        gaps = [g for g in row["best_gap"] if math.isfinite(g)]
        if gaps and row["reached"] < row["tried"]:
            time_s += f"; median best gap {np.median(gaps):.2g}"
    check = row.get("check")
    verdict = "—" if check is None else (
        f"{'ok' if check['ok'] else 'MISMATCH'} (max rel {_fmt(check['max_rel_err'], '.1e')})")
    pct = row.get("flops_fraction")
    return (label, ran, time_s, _fmt(row.get("compile_s"), ".3g"),
            _fmt(row.get("peak_rss_mb"), ".0f"), _fmt(row.get("gflops"), ".3g"),
            _fmt(None if pct is None else 100 * pct, ".1f"), _fmt(row.get("x_limit"), ".2g"),
            verdict)


def markdown_table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def workload_table(workload: dict[str, Any]) -> str:
    return markdown_table(_TABLE_HEAD, [_table_row(r) for r in workload["rows"]])


def targets_table(results: dict[str, Any]) -> str:
    rows = []
    for t in results["targets"]:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        if t["met"] is None and t["measured"] is not None:
            verdict = "reported"
        measured = t["measured"] if isinstance(t["measured"], str) else _fmt(t["measured"], ".3g")
        rows.append((t["name"], t["description"], measured, t["target"],
                     verdict, t["detail"]))
    return markdown_table(("", "target", "measured", "goal", "verdict", "how"), rows)


def machine_lines(machine: dict[str, Any]) -> list[str]:
    v = machine["versions"]
    return [
        f"- CPU: {machine['cpu']}, {machine['cores']} cores ({machine['cores_usable']} usable), "
        f"{machine.get('memory_gb')} GB",
        f"- JAX backend: {machine['jax_backend']} ({', '.join(machine['devices'])})",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- peak matmul: {machine['peak_gflops_f32']:.0f} GFLOP/s float32, "
        f"{machine['peak_gflops_f64']:.0f} GFLOP/s float64 (best of NumPy and JAX over "
        f"sizes {', '.join(machine['matmul_gflops_f32'])})",
        f"- memory bandwidth: {machine['peak_gbs']:.1f} GB/s (best of "
        + ", ".join(f"{k} {val:.1f}" for k, val in machine["bandwidth_gbs"].items()) + ")",
    ]


def report_text(results: dict[str, Any], plot_name: str | None = None) -> str:
    """The markdown report: machine, method, one table per workload, targets, scaling."""
    out = [f"# jaxgd benchmarks ({results['mode']} mode)", "",
           f"Measured {results['created']} in {results.get('elapsed_s', 0):.0f} s. "
           "Regenerate with `python -m benchmarks.run --full --write-md --overwrite` (or "
           "`jaxgd bench --full`).", "", "## Machine", "", *machine_lines(results["machine"]),
           ""]
    background = results.get("background_cpu")
    if background is not None and background > BUSY_WARNING:
        out += [f"**Other processes used {100 * background:.0f}% of the CPUs during this run**: "
                "every time below is slower than on a quiet machine.", ""]
    out += ["## Method", ""]
    out += [f"- **{k}**: {v}" for k, v in results["method"].items()]
    out += [""]
    out += ["## Targets", "", targets_table(results), ""]
    for w in results["workloads"]:
        out += [f"## {w['name']}, T={w['T']}", "",
                f"n={w['n']}, d={w['d']}; learning rates up to "
                f"{LR_HIGH * w['max_learning_rate']:.4g} (2/λmax = "
                f"{w['max_learning_rate']:.4g}); least-squares loss {w['optimal_loss']:.6g}. "
                f"Work per step: direct {w['work']['direct']['flops_per_step']:.3g} flops, "
                f"gram {w['work']['gram']['flops_per_step']:.3g} flops."
                + _busy_note(w), "",
                workload_table(w), ""]
    if results.get("early_exit"):
        out += early_exit_lines(results["early_exit"])
    out += scan_lines(results)
    out += fixed_cost_lines(results.get("fixed_costs"))
    out += ["## Scaling", ""]
    busy = results.get("scaling_background_cpu")
    if busy is not None and busy > BUSY_WARNING:
        out += [f"Other processes used {100 * busy:.0f}% of the CPUs meanwhile: times are "
                "inflated.", ""]
    if plot_name:
        out += [f"![scaling curves]({plot_name})", ""]
    for axis, points in results["scaling"].items():
        out += [f"### {axis}", "", markdown_table(
            (axis, "implementation", "time (s)", "GFLOP/s", "× limit"),
            [(str(p["value"]), p.get("label") or p["impl"],
              _fmt(p["median_s"], ".4g") + (f" (extrapolated from {p['extrapolated_from']})"
                                             if p["extrapolated_from"] else ""),
              _fmt(p.get("gflops"), ".3g"), _fmt(p.get("x_limit"), ".2g"))
             for p in points if not p["skipped"]]), ""]
    return "\n".join(out)


def early_exit_lines(early: dict[str, Any]) -> list[str]:
    """The early-exit workload: stop_at_convergence with segments against one plain scan."""
    low, high = early["rates"]
    rows = [(name, f"{r['run_steps_executed']:,} of {r['run_steps_scheduled']:,} "
                   f"({r['run_steps_executed'] / r['run_steps_scheduled']:.1%})",
             _fmt(r["first_call_s"], ".3g"), _fmt(r["second_call_s"], ".3g"),
             f"{r['converged']} / {r['diverged']}")
            for name, r in early["rows"].items()]
    same = "same verdicts" if early["same_verdicts"] and early["same_nan"] else (
        "VERDICTS DIFFER")
    return [f"## Early exit: auto_mpg K={early['K']}, T={early['T']}", "",
            f"`sweep(..., stop_at_convergence=True, log_every={early['log_every']})`, rates "
            f"over [{low}, {high}]×2/λmax; segments (the default) against one plain scan "
            f"(`segment_steps=T`). Results: {same}, largest relative loss difference "
            f"{early['max_rel_loss_difference']:.2g}.", "",
            markdown_table(("run", "run-steps executed", "first call (s, compiles)",
                            "second call (s)", "converged / diverged"), rows), ""]


def plot_scaling(results: dict[str, Any], path: Path) -> bool:
    """Draws the scaling curves (time against each axis, log-log) to a PNG; False without
    matplotlib. Written atomically."""
    if optional("matplotlib") is None:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_data = results["scaling"]
    columns = min(2, max(1, len(axes_data)))
    rows = -(-max(1, len(axes_data)) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.8 * rows), squeeze=False)
    base = results["config"]["scaling_base"]
    for ax, (axis, points) in zip(axes.flat, axes_data.items(), strict=False):
        for impl in dict.fromkeys(p["impl"] for p in points):
            mine = [p for p in points if p["impl"] == impl and p["median_s"]]
            if mine:
                ax.plot([p["value"] for p in mine], [p["median_s"] for p in mine], "o-",
                        label=(mine[0].get("label") or impl).replace("jaxgd engine=", "jaxgd "))
        ax.set_xscale("log")
        ax.set_yscale("log")
        values = sorted({p["value"] for p in points})
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.minorticks_off()
        ax.set_xlabel(axis)
        ax.set_ylabel("seconds (median run)")
        ax.grid(True, alpha=0.3)
        fixed = ", ".join(f"{k}={v}" for k, v in zip("ndKT", base, strict=True) if k != axis)
        ax.set_title(f"vary {axis} ({fixed})", fontsize=9)
    for ax in list(axes.flat)[len(axes_data):]:
        ax.set_visible(False)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"jaxgd scaling, {results['machine']['cpu']} ({results['mode']} mode)",
                 fontsize=10)
    fig.tight_layout()
    from jaxgd.figures import save_figure

    try:
        save_figure(fig, path, dpi=110)
    finally:
        plt.close(fig)
    return True


def to_json(results: dict[str, Any]) -> str:
    return json.dumps(results, indent=1, default=_jsonable)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serializable: {type(value).__name__}")


#: What ``write_outputs`` writes, by key of the paths it returns.
OUTPUTS = {"json": "bench.json", "report": "report.md", "plot": "scaling.png"}


def write_outputs(results: dict[str, Any], out_dir: Path,
                  overwrite: bool = False) -> dict[str, Path]:
    """Writes ``bench.json``, ``report.md`` and ``scaling.png`` (with matplotlib) as a results
    folder of their own, as ``jaxgd run`` writes (``jaxgd.cli.results.staging``): whole or
    not at all, under the folder's lock, replacing only a folder jaxgd wrote and only with
    ``overwrite``, so no file of an older run stays beside them. Returns the paths written.

    Raises:
      ResultsExistError, DestinationError: ``out_dir`` may not or cannot be written.
    """
    out_dir = Path(out_dir)
    with lock.locked(out_dir), staging(out_dir, overwrite,
                                       also_writes=tuple(OUTPUTS.values())) as folder:
        write_atomic(folder / OUTPUTS["json"], to_json(results).encode())
        drawn = plot_scaling(results, folder / OUTPUTS["plot"])
        write_atomic(folder / OUTPUTS["report"],
                     report_text(results, OUTPUTS["plot"] if drawn else None).encode())
    return {key: out_dir / name for key, name in OUTPUTS.items() if drawn or key != "plot"}


def _busy_note(workload: dict[str, Any]) -> str:
    busy = workload.get("background_cpu")
    if busy is None or busy <= BUSY_WARNING:
        return ""
    return f" Other processes used {100 * busy:.0f}% of the CPUs meanwhile: times are inflated."


def scan_lines(results: dict[str, Any]) -> list[str]:
    """The scan path's µs per step against K with the settings A/B, and the direct engine
    against a hand-written scan (absent from results written before they were measured)."""
    out = []
    if results.get("scan_path"):
        out += ["## Scan path: µs per step against K, settings A/B, host overhead", "",
                "Auto MPG, jaxgd.sweep as a user calls it (defaults), medians of interleaved "
                "calls; program = the compiled program alone; host before the program = from the "
                "call until its program is dispatched (the host overhead).", "",
                scan_table(results["scan_path"]), ""]
    if results.get("direct_vs_hand"):
        out += ["## Direct engine against a hand-written X·W scan", "",
                direct_table(results["direct_vs_hand"]), ""]
    return out


def fixed_cost_lines(fc: dict[str, Any] | None) -> list[str]:
    """Issue 20's fixed costs (``jaxgd._bench.fixed_costs``): its targets, then each
    measurement's min and median over fresh processes, the first calls split by JAX's
    compile events."""
    if not fc:
        return []
    rows = []
    for key, what in (("scan", "first call: hand-written jit(vmap(scan))"),
                      ("sweep", "first call: jaxgd.sweep"),
                      ("sweep_stop", "first call: jaxgd.sweep(stop_at_convergence=True)")):
        m = fc[key]
        rows.append((what, _fmt(m["s_min"]), _fmt(m["s_median"]), _fmt(m["trace_s_median"]),
                     _fmt(m["lower_s_median"]), _fmt(m["compile_s_median"]),
                     f"{m['programs_median']:.0f}"))
    for key, what in (("cli_cold", "jaxgd run, empty cache: compile"),
                      ("cli_warm", "jaxgd run, second run: compile")):
        m = fc[key]
        if m:
            programs = m.get("programs_cached_median")
            rows.append((what, _fmt(m["compile_min"]), _fmt(m["compile_median"]), "—", "—",
                         "—", "—" if programs is None else f"{programs:.0f} cached"))
    for module in ("jax", "jaxgd"):
        m = fc[f"import_{module}"]
        rows.append((f"import {module}", _fmt(m["s_min"]), _fmt(m["s_median"]), "—", "—", "—",
                     "—"))
    busy = fc.get("background_cpu")
    note = (f" Other processes used {100 * busy:.0f}% of the CPUs meanwhile: times are "
            "inflated." if busy is not None and busy > BUSY_WARNING else "")
    return ["## Fixed costs: fresh processes (issue 20)", "",
            f"Each measurement in fresh Python processes ({fc['repeats']} each, interleaved); "
            f"ratios of the minima. Auto MPG, 7 standardized features (float32), "
            f"{len(fc['rates'])} learning rates × {fc['steps']} steps; trace, lowering, XLA "
            "compile (medians) and programs compiled from JAX's compile events. `jaxgd run` "
            "is the shipped default config with figures off, on a new JAXGD_CACHE_DIR; "
            "its compile seconds come from its summary.json." + note, "",
            targets_table(fc), "",
            markdown_table(("measurement", "min (s)", "median (s)", "trace (s)",
                            "lowering (s)", "XLA compile (s)", "programs"), rows), ""]


def summary_text(results: dict[str, Any]) -> str:
    """What ``jaxgd bench`` prints: a table per workload and the targets."""
    out = []
    for w in results["workloads"]:
        out += [f"## {w['name']}, T={w['T']} (n={w['n']}, d={w['d']}){_busy_note(w)}",
                workload_table(w), ""]
    out += scan_lines(results)
    out += fixed_cost_lines(results.get("fixed_costs"))
    out += ["## Targets", targets_table(results)]
    return "\n".join(out)
