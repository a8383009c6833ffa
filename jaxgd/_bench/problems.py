"""What a benchmark run measures (``BenchConfig`` and its presets) and on which data
(``Problem``: Auto MPG, or synthetic data of a given size)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

import jaxgd

#: |a − b| ≤ RTOL·|b| + ATOL·loss₀ for histories of converging learning rates. float64 NumPy
#: against float32 jaxgd differs by float32 rounding, ~1e-6 relative on these problems.
RTOL = 1e-4
ATOL = 1e-6
#: Learning rates are log-spaced over [LR_LOW, LR_HIGH] × 2/λmax: all of them converge.
LR_LOW, LR_HIGH = 1e-3, 0.9
PLANNING_EFFICIENCY = 0.2  # share of peak assumed when sizing compiled runs to a budget


@dataclass(frozen=True)
class BenchConfig:
    """What one benchmark run measures; ``QUICK``, ``FULL`` and ``SMOKE`` are the presets.

    Attributes:
      mode: its name.
      auto_mpg_ks, auto_mpg_steps: the Auto MPG workload (all 7 features, standardized).
      synthetic: (n, d, K, T) of the large synthetic workload, or None.
      scaling_base: (n, d, K, T) from which each scaling curve varies one of them.
      scaling: (axis, values) pairs, axis one of "K", "n", "d", "T".
      scaling_impls: which implementations the scaling curves time.
      repeats, min_repeats, budget_s: steady-state runs after the first call (see
        ``measure``).
      baseline_budget_s: seconds one NumPy or torch run may take; past it the baseline runs
        fewer steps and its time is extrapolated linearly in T.
      compiled_budget_s: the same for the X·θ-every-step compiled programs (jaxgd's direct
        engine, plain JAX), judged from the work model before compiling.
      sklearn_rates, sklearn_rate_budget_s, sklearn_budget_s: how many learning rates,
        spread over the range, scikit-learn is timed on (its total is extrapolated to K);
        the seconds it may spend on each before giving up on reaching the target; and on
        all of them (past it, the rates not yet tried are left out, two at least are run).
      matmul_sizes, bandwidth_mb, machine_reps: the machine measurement.
      scan_ks, scan_steps, scan_repeats: the scan path's µs per step against K and the A/B
        of its settings, on Auto MPG (``jaxgd._bench.scanpath``).
      direct: (n, d, K, T) of the direct engine against a hand-written X·W scan, or None.
      early_exit: (K, T, log_every) of the early-exit workload (Auto MPG, rates over
        [0.02, 0.9]×2/λmax, most of which converge early), or None.
      fixed_cost_repeats: fresh processes per fixed cost of issue 20
        (``jaxgd._bench.fixed_costs``), or None to leave them out.
    """

    mode: str
    auto_mpg_ks: tuple[int, ...] = (1, 64, 1024, 8192)
    auto_mpg_steps: int = 1000
    synthetic: tuple[int, int, int, int] | None = (10**6, 32, 64, 200)
    scaling_base: tuple[int, int, int, int] = (4096, 16, 64, 200)
    scaling: tuple[tuple[str, tuple[int, ...]], ...] = (
        ("K", (1, 64, 1024)), ("n", (1024, 4096, 65536)), ("d", (4, 16, 64)),
        ("T", (50, 200, 1000)))
    scaling_impls: tuple[str, ...] = ("jaxgd:direct", "jaxgd:gram", "jaxgd:eigen", "numpy")
    repeats: int = 3
    min_repeats: int = 0
    budget_s: float = 2.0
    baseline_budget_s: float = 1.5
    compiled_budget_s: float = 3.0
    sklearn_rates: int = 6
    sklearn_rate_budget_s: float = 0.25
    sklearn_budget_s: float = 4.0
    matmul_sizes: tuple[int, ...] = (2048, 4096)
    bandwidth_mb: int = 512
    machine_reps: int = 3
    scan_ks: tuple[int, ...] = (1, 64, 1024, 8192)
    scan_steps: int = 1000
    scan_repeats: int = 5
    direct: tuple[int, int, int, int] | None = None
    early_exit: tuple[int, int, int] | None = (4096, 50000, 100)
    fixed_cost_repeats: int | None = 3


QUICK = BenchConfig(mode="quick")
FULL = BenchConfig(
    mode="full",
    scaling=(("K", (1, 16, 256, 4096)), ("n", (1024, 8192, 65536, 262144)),
             ("d", (4, 16, 64, 256)), ("T", (50, 200, 1000, 5000))),
    scaling_impls=("jaxgd:direct", "jaxgd:gram", "jaxgd:eigen", "numpy", "plain-jax"),
    repeats=5, min_repeats=3, budget_s=20.0, baseline_budget_s=8.0, compiled_budget_s=60.0,
    sklearn_rates=16, sklearn_rate_budget_s=1.5, sklearn_budget_s=30.0,
    matmul_sizes=(1024, 2048, 4096),
    machine_reps=5, scan_repeats=9, direct=(200_000, 32, 64, 200),
    fixed_cost_repeats=5)
SMOKE = BenchConfig(  # seconds, for tests: one jaxgd compile per engine, tiny everything
    mode="smoke", auto_mpg_ks=(4,), auto_mpg_steps=20, synthetic=None,
    scaling_base=(500, 4, 4, 10), scaling=(("K", (1, 4)), ("T", (10, 20))),
    scaling_impls=("numpy",), repeats=1, min_repeats=1, budget_s=0.5,
    baseline_budget_s=0.5, compiled_budget_s=1.0, sklearn_rates=2, sklearn_rate_budget_s=0.05,
    sklearn_budget_s=0.2,
    matmul_sizes=(128,), bandwidth_mb=8, machine_reps=1, early_exit=(8, 400, 10),
    scan_ks=(4,), scan_steps=20, scan_repeats=1, direct=(500, 4, 4, 10),
    fixed_cost_repeats=None)  # tests/bench times them apart
PRESETS = {"quick": QUICK, "full": FULL, "smoke": SMOKE}


@dataclass
class Problem:
    """A workload's data: float64 for NumPy and scikit-learn, float32 for JAX and torch."""

    name: str
    X: np.ndarray
    y: np.ndarray
    max_learning_rate: float
    optimal_loss: float
    X32: np.ndarray = field(init=False)
    y32: np.ndarray = field(init=False)
    sklearn: tuple[Any, float] | None = field(init=False, default=None)  # computed once

    def __post_init__(self):
        self.X32 = self.X.astype(np.float32)
        self.y32 = self.y.astype(np.float32)

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def d(self) -> int:
        return self.X.shape[1]

    def learning_rates(self, K: int) -> np.ndarray:
        """K rates log-spaced from 0.9 down to 0.001 times 2/λmax (K=1: the largest)."""
        return self.max_learning_rate * np.geomspace(LR_HIGH, LR_LOW, K)


def make_problem(name: str, X, y) -> Problem:
    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    return Problem(name, X, y, jaxgd.stability(X).max_learning_rate, jaxgd.solve(X, y).loss)


def auto_mpg_problem() -> Problem:
    """Auto MPG, all 7 features standardized, → mpg."""
    data = jaxgd.datasets.auto_mpg()
    X = jaxgd.Standardizer.fit(data.X).transform(data.X)
    return make_problem("auto_mpg", X, data.y)


def synthetic_problem(n: int, d: int, seed: int = 0) -> Problem:
    data = jaxgd.datasets.synthetic(jax.random.key(seed), n, d)
    return make_problem(f"synthetic n={n} d={d}", data.X, data.y)


BUSY_WARNING = 0.1  # warn when other processes used more than this share of the CPUs


def method_notes(config: BenchConfig) -> dict[str, str]:
    """How ``config`` measures, in words, for the report and the JSON."""
    return {
        "work": "Plain full-batch gradient descent on the MSE, from zeros, constant learning "
                f"rate, K learning rates log-spaced over [{LR_LOW:g}, {LR_HIGH:g}]×2/λmax, T "
                "steps, the full (K, T) loss history kept.",
        "timing": "time.perf_counter around the whole call, blocked until results are ready. "
                  "The first call is timed apart; its compile time is what JAX reports "
                  "(jaxgd.cli.timing.timed). The time reported is the median of up to "
                  f"{config.repeats} steady-state calls after it, at least "
                  f"{config.min_repeats}, more while they fit {config.budget_s:g} s"
                  + ("; a run with no repeat is timed as its first call minus its compile "
                     "time" if config.min_repeats == 0 else "") + ".",
        "extrapolation": "A NumPy or PyTorch run that would take more than "
                         f"{config.baseline_budget_s:g} s (judged from a one-step probe), and "
                         "a compiled X·θ-every-step run (jaxgd direct, plain JAX) that the "
                         f"work model at {PLANNING_EFFICIENCY:g} of peak says would take more "
                         f"than {config.compiled_budget_s:g} s, runs fewer steps and its time "
                         "is scaled linearly to T: marked 'extrapolated from T=…'. Each of "
                         "these loops does the same work every step (the fixed per-call cost "
                         "is scaled too, which can only overstate the time).",
        "memory": "Peak growth of the resident set during the first call (compilation "
                  "included), sampled from /proc/self/statm every 2 ms; memory an allocator "
                  "kept from earlier and reused is not counted.",
        "work_model": "direct: 4·n·(d+1)·K flops and itemsize·(2nd + n + 2nK) bytes per step; "
                      "gram: 4·(d+1)²·K flops per step plus 2·n·(d+1)² once; eigen: "
                      "6·(d+1)·K flops per step plus the same moments once. Limit = "
                      "max(flops / peak matmul GFLOP/s, bytes / peak GB/s), with the float32 "
                      "peak (float64 for NumPy) measured in the same run; '% peak' is achieved "
                      "GFLOP/s over that peak.",
        "check": "Every history is compared with the longest jaxgd history of the same "
                 "workload (the direct engine's when it ran every step) over the steps both "
                 f"ran, on converging rates: |a − b| ≤ {RTOL:g}·|b| + {ATOL:g}·loss₀ "
                 "(float32 resolves the loss to about 1e-7 of its initial size).",
        "sklearn": "SGDRegressor(learning_rate='constant', eta0=rate, penalty=None, tol=None, "
                   f"shuffle=False) on {config.sklearn_rates} rates spread over the range, "
                   "one partial_fit epoch at a time, until the MSE is within 1% of the "
                   f"least-squares loss, it diverges, or {config.sklearn_rate_budget_s:g} s "
                   "pass for that rate; its total for K rates is the mean per rate times K. "
                   "A different algorithm (per-sample updates): a time to target, not to T "
                   "steps.",
        "contention": "The share of the CPUs used by other processes is measured over each "
                      "workload (/proc/stat minus this process's CPU time); above "
                      f"{100 * BUSY_WARNING:.0f}% the report warns. Multi-threaded BLAS and "
                      "OpenMP (NumPy, PyTorch) slow down far more than XLA when a core is "
                      "taken.",
        **({"fixed_costs": "Issue 20's fixed costs, each in a fresh Python process (JAX_* "
                           "variables and XLA_FLAGS removed): the first call of jaxgd.sweep "
                           "and of a hand-written jit(vmap(scan)), jaxgd run's compile with "
                           "an empty and a warm cache, import jaxgd and import jax; "
                           f"{config.fixed_cost_repeats} processes per measurement, ratios "
                           "of the minima."} if config.fixed_cost_repeats else {}),
    }
