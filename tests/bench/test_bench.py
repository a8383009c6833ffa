"""The benchmark harness: its baselines compute what jaxgd computes, its work model counts
right, and a tiny configuration runs end to end. No test looks at a timing."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgd import _bench as bench
from jaxgd._bench.scanpath import SETTINGS
from jaxgd.core.model import mse
from jaxgd.core.params import LinearParams
from tests.conftest import well_conditioned

STEPS = 60
ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def problem():
    X, y = well_conditioned(3, n=48, d=3)
    return bench.make_problem("small", X, y)


@pytest.fixture(scope="module")
def rates(problem):
    return problem.learning_rates(5)  # 0.001 to 0.9 times 2/λmax: all converge


@pytest.fixture(scope="module")
def reference(problem, rates):
    losses, engine = bench.jaxgd_sweep(problem.X32, problem.y32, rates, STEPS, "direct")
    assert engine == "direct"
    return np.asarray(losses)


def assert_same(history, reference, problem, rates):
    assert history.shape == reference.shape
    check = bench.compare_histories(history, reference, rates, problem.max_learning_rate)
    assert check["ok"], check
    assert check["rates_compared"] == len(rates)


def test_numpy_matches_jaxgd(problem, rates, reference):
    assert_same(bench.numpy_gd(problem.X, problem.y, rates, STEPS), reference, problem, rates)


def test_plain_jax_matches_jaxgd(problem, rates, reference):
    history = np.asarray(bench.plain_jax_gd(problem.X32, problem.y32, rates, STEPS))
    assert_same(history, reference, problem, rates)


def test_gram_engine_matches_direct(problem, rates, reference):
    losses, engine = bench.jaxgd_sweep(problem.X32, problem.y32, rates, STEPS, "gram")
    assert engine == "gram"
    assert_same(np.asarray(losses), reference, problem, rates)


@pytest.mark.parametrize("name", ["torch_gd", "torch_autograd_gd"])
def test_torch_matches_jaxgd(problem, rates, reference, name):
    pytest.importorskip("torch")
    history = getattr(bench, name)(problem.X32, problem.y32, rates, STEPS)
    assert_same(history, reference, problem, rates)


def test_numpy_history_is_plain_gradient_descent():
    # y = 2x + 1 on x = ±1: H = 2·I, so learning rate 0.5 lands on the optimum in one step.
    history = bench.numpy_gd(np.array([[-1.0], [1.0]]), np.array([-1.0, 3.0]), [0.5, 0.25], 3)
    assert history[0].tolist() == [5.0, 0.0, 0.0]
    assert history[1].tolist() == [5.0, 1.25, 0.3125]


def test_sklearn_reaches_the_optimum_or_says_why(problem):
    pytest.importorskip("sklearn")
    outcome = bench.sklearn_sgd(problem.X, problem.y, [0.01, 1e3], problem.optimal_loss,
                                max_epochs=100)
    assert outcome.reached.tolist() == [True, False]
    assert outcome.diverged.tolist() == [False, True]
    assert 1 <= outcome.epochs[0] <= 100


def test_comparison_catches_a_different_history(problem, rates, reference):
    wrong = reference.copy()
    wrong[2, 30:] *= 1.001
    check = bench.compare_histories(wrong, reference, rates, problem.max_learning_rate)
    assert not check["ok"]
    assert check["max_rel_err"] == pytest.approx(1e-3, rel=1e-2)


def test_comparison_skips_rates_that_diverge(problem, rates, reference):
    fast = np.append(rates, 3 * problem.max_learning_rate)
    history = np.vstack([reference, np.full(STEPS, np.nan)])
    check = bench.compare_histories(history, history, fast, problem.max_learning_rate)
    assert check["ok"]
    assert check["rates_compared"] == len(rates)


def test_flop_and_byte_counts_for_a_tiny_case():
    # direct: forward (10×3)@(3×5) and back, 2·10·3·5 each way; gram: the same with 3×3.
    assert bench.flops_per_step("direct", n=10, d=2, K=5) == 600
    assert bench.flops_per_step("gram", n=10, d=2, K=5) == 180
    assert bench.setup_flops("gram", n=10, d=2) == 180
    assert bench.setup_flops("direct", n=10, d=2) == 0
    # X twice (2·10·2), y once (10), residuals written and read (2·10·5), 4 bytes each.
    assert bench.bytes_per_step("direct", n=10, d=2, K=5) == 4 * (40 + 10 + 100)
    total = bench.work("direct", n=10, d=2, K=5, T=7)
    assert total["flops"] == 7 * 600
    assert bench.limit_seconds(total, peak_gflops=1.0, peak_gbs=1e-3) == pytest.approx(
        7 * 600 / 1e6)
    with pytest.raises(ValueError, match="unknown engine"):
        bench.flops_per_step("auto", 1, 1, 1)


def test_direct_flop_count_agrees_with_xla():
    n, d, K = 1000, 16, 8
    step = jax.jit(jax.vmap(jax.value_and_grad(mse), in_axes=(0, None, None)))
    params = LinearParams(jnp.zeros((K, d)), jnp.zeros(K))
    cost = step.lower(params, jnp.zeros((n, d)), jnp.zeros(n)).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    if not cost or "flops" not in cost:
        pytest.skip("this XLA gives no cost analysis")
    # XLA also counts the elementwise residual and square, O(n·K), which the model leaves out.
    assert 1.0 <= cost["flops"] / bench.flops_per_step("direct", n, d, K) <= 1.3


def test_slow_baselines_run_fewer_steps_and_say_so(problem):
    config = replace(bench.SMOKE, baseline_budget_s=0.0)
    row, history = bench.run_baseline("numpy", problem, 4, 40, config)
    assert row["measured_T"] == 3 and row["extrapolated_from"] == "T=3"
    assert history.shape == (4, 3)


def test_smoke_benchmark_runs_end_to_end(tmp_path):
    lines = []
    results = bench.run_benchmarks(bench.SMOKE, log=lines.append)
    assert lines
    assert {"machine", "method", "workloads", "scaling", "targets", "mode",
            "background_cpu"} <= set(results)
    assert {"peak_gflops_f32", "peak_gflops_f64", "peak_gbs", "cpu", "jax_backend",
            "versions"} <= set(results["machine"])
    (workload,) = results["workloads"]
    impls = {row["impl"] for row in workload["rows"]}
    assert {"jaxgd:auto", "jaxgd:direct", "numpy", "plain-jax", "torch", "sklearn-sgd"} <= impls
    for row in workload["rows"]:
        assert row["skipped"] or row["median_s"] > 0
        if row["check"] is not None:
            assert row["check"]["ok"], row
    numpy_row = next(r for r in workload["rows"] if r["impl"] == "numpy")
    assert {"gflops", "flops_fraction", "limit_s", "x_limit", "work"} <= set(numpy_row)
    assert set(results["scaling"]) == {"K", "T"}
    names = [t["name"] for t in results["targets"]]
    assert names == ["a", "b", "b", "c", "c", "d", "a2", "e", "f", "GPU"]
    # The scan path: every setting of the A/B at every K, its program timed apart.
    scan = results["scan_path"]
    assert {(r["K"], r["setting"]) for r in scan} == {
        (K, s) for K in bench.SMOKE.scan_ks for s in SETTINGS}
    for r in scan:
        assert r["call_s"] > 0 and r["program_s"] > 0
        assert r["us_per_step"] == pytest.approx(1e6 * r["program_s"] / r["T"])
    default = next(r for r in scan if r["setting"] == "default")
    assert 0 < default["dispatched_ms"] < default["returned_ms"]
    direct = results["direct_vs_hand"]
    assert direct["ratio_user"] > 0 and direct["ratio_device"] > 0
    e = next(t for t in results["targets"] if t["name"] == "e")
    assert e["measured"] is not None  # the host overhead is reported
    early = results["early_exit"]
    assert early["same_verdicts"] and early["same_nan"]
    segmented, plain = early["rows"]["segments"], early["rows"]["plain scan"]
    assert segmented["run_steps_executed"] <= plain["run_steps_executed"] == 8 * 400

    written = bench.write_outputs(results, tmp_path)
    assert json.loads(written["json"].read_text())["mode"] == "smoke"
    report = written["report"].read_text()
    assert "## Targets" in report and "GPU" in report and "## Machine" in report
    assert "## Early exit: auto_mpg K=8, T=400" in report
    assert "## Targets" in bench.summary_text(results)


def test_bench_subcommand_parses_without_loading_the_harness():
    script = ("import sys; from jaxgd import cli; parser = cli.build_parser(); "
              "args = parser.parse_args(['bench', '--full', '--out', 'somewhere']); "
              "assert args.full and args.out == 'somewhere' and args.handler is cli.command_bench; "
              "assert not parser.parse_args(['bench']).full; "
              "print([m for m in sys.modules if m.startswith('jaxgd._bench')])")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.strip() == "[]"


def test_regenerating_benchmarks_md_keeps_its_hand_written_end(tmp_path):
    from benchmarks.run import hand_written

    page = tmp_path / "BENCHMARKS.md"
    assert hand_written(page) == ""  # no page yet
    page.write_text("# generated\n\n## Targets\nold\n\n## Why (analysis, written by hand)\n"
                    "kept\n\n## GPU\nalso kept\n")
    assert hand_written(page) == "\n## Why (analysis, written by hand)\nkept\n\n## GPU\nalso kept\n"
    page.write_text("# generated only\n")
    assert hand_written(page) == ""


def test_the_captured_program_is_the_one_the_sweep_ran(problem):
    # Replaying the program the sweep dispatched gives the sweep's own history, to the bit.
    from jaxgd._bench.scanpath import captured_program, user_sweep

    call = user_sweep(problem, 4, 30)
    program = captured_program(call)
    np.testing.assert_array_equal(np.asarray(program().losses), np.asarray(call().losses))


def test_fixed_costs_harness_runs_in_fresh_processes():
    # One fresh process per measurement, a tiny sweep; jaxgd run is left out here (two CLI
    # processes take longer than this test may). No number is held to a target.
    from jaxgd._bench.report import fixed_cost_lines

    fc = bench.fixed_costs(repeats=1, rates=(0.01, 0.1), steps=20, cli=False)
    for key in ("scan", "sweep", "sweep_stop"):
        m = fc[key]
        for field in ("s", "trace_s", "lower_s", "compile_s", "programs"):
            assert m[f"{field}_min"] > 0 and m[f"{field}_median"] > 0, (key, field)
        assert m["s_min"] >= m["compile_s_min"]
        assert len(m["runs"]) == 1
    assert fc["scan"]["programs_min"] == 1  # the hand-written scan is one program
    for module in ("jax", "jaxgd"):
        assert fc[f"import_{module}"]["s_min"] > 0
    assert fc["cli_cold"] is None and fc["cli_warm"] is None
    assert set(fc["ratios"]) == {"sweep_vs_scan", "stop_vs_scan", "import"}
    assert all(r > 0 for r in fc["ratios"].values())
    assert [t["name"] for t in fc["targets"]] == ["20.1", "20.2", "20.3", "20.4"]
    assert [t["met"] is None for t in fc["targets"]] == [False, False, True, False]
    json.dumps(fc)  # JSON-ready, for bench.json
    text = "\n".join(fixed_cost_lines(fc))
    assert "## Fixed costs" in text and "first call: jaxgd.sweep" in text


def test_fixed_cost_children_get_jax_defaults_and_this_jaxgd(monkeypatch):
    from jaxgd._bench.fixed_costs import child_env

    monkeypatch.setenv("JAX_ENABLE_X64", "1")
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    env = child_env(JAXGD_CACHE_DIR="/somewhere")
    assert not any(k.startswith("JAX_") for k in env) and "XLA_FLAGS" not in env
    assert env["JAXGD_CACHE_DIR"] == "/somewhere"
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(ROOT)
