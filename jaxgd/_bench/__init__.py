"""``jaxgd bench``: how fast jaxgd is, against what users write instead and this machine's limits.

The same work everywhere: plain full-batch gradient descent on the MSE, from zeros, with a
constant learning rate, K learning rates, T steps, keeping every loss (a ``(K, T)`` history).
It is written four more ways, the way users write it without jaxgd:

- NumPy by hand, vectorized across learning rates (``W`` of shape ``(d+1, K)``), float64;
- PyTorch eager on the CPU, the same vectorized form, float32; and again with autograd;
- plain JAX, ``jax.jit(jax.vmap(run))`` of a ``lax.scan`` over ``optax.sgd`` steps, float32;
- scikit-learn's ``SGDRegressor`` looped over learning rates: per-sample SGD, a different
  algorithm, so it is timed to reach within 1% of the least-squares loss instead.

Every history is checked against jaxgd's before its time is reported. Each time is set beside
the machine's own limits, measured in the same run (peak matmul GFLOP/s, memory bandwidth),
through the work each engine must do (``work``). Torch and scikit-learn are optional: without
them their rows say "skipped".

A private harness, not library API: only ``jaxgd bench`` (which imports it when it runs) and
``benchmarks/*.py`` in the source tree load it. Modules: ``work`` (the work model),
``machine`` (limits and description), ``baselines``, ``measure`` (timing, memory, CPU
contention), ``problems`` (``BenchConfig`` and the data), ``workloads`` (running them),
``targets``, ``report`` (markdown, plot, JSON), ``fixed_costs`` (issue 20: first calls,
``jaxgd run``'s compile and imports, each in a fresh process).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jaxgd._bench.baselines import (
    SGDOutcome,
    jaxgd_sweep,
    numpy_gd,
    plain_jax_gd,
    sklearn_sgd,
    torch_autograd_gd,
    torch_gd,
)
from jaxgd._bench.fixed_costs import fixed_cost_targets, fixed_costs
from jaxgd._bench.machine import (
    bandwidth_gbs,
    cpu_model,
    describe_machine,
    matmul_gflops,
    measure_machine,
    wait_until_quiet,
)
from jaxgd._bench.problems import (
    FULL,
    PRESETS,
    QUICK,
    SMOKE,
    BenchConfig,
    Problem,
    auto_mpg_problem,
    make_problem,
    synthetic_problem,
)
from jaxgd._bench.report import (
    fixed_cost_lines,
    machine_lines,
    plot_scaling,
    report_text,
    summary_text,
    write_outputs,
)
from jaxgd._bench.targets import targets
from jaxgd._bench.work import bytes_per_step, flops_per_step, limit_seconds, setup_flops, work
from jaxgd._bench.workloads import compare_histories, run_baseline, run_benchmarks


def main(args: argparse.Namespace) -> int:
    """``jaxgd bench``: runs the benchmark, prints the tables and targets, writes ``--out``
    if given."""
    config = FULL if getattr(args, "full", False) else QUICK
    results = run_benchmarks(config)
    print(summary_text(results))
    if getattr(args, "out", None):
        written = write_outputs(results, Path(args.out), getattr(args, "overwrite", False))
        for path in written.values():
            print(f"wrote {path}")
    return 0


__all__ = [
    "FULL",
    "PRESETS",
    "QUICK",
    "SMOKE",
    "BenchConfig",
    "Problem",
    "SGDOutcome",
    "auto_mpg_problem",
    "bandwidth_gbs",
    "bytes_per_step",
    "compare_histories",
    "cpu_model",
    "describe_machine",
    "fixed_cost_lines",
    "fixed_cost_targets",
    "fixed_costs",
    "flops_per_step",
    "jaxgd_sweep",
    "limit_seconds",
    "machine_lines",
    "main",
    "make_problem",
    "matmul_gflops",
    "measure_machine",
    "numpy_gd",
    "plain_jax_gd",
    "plot_scaling",
    "report_text",
    "run_baseline",
    "run_benchmarks",
    "setup_flops",
    "sklearn_sgd",
    "summary_text",
    "synthetic_problem",
    "targets",
    "torch_autograd_gd",
    "torch_gd",
    "wait_until_quiet",
    "work",
    "write_outputs",
]
