import numpy as np
import pytest

import jaxgd
from jaxgd import Standardizer, datasets, fit, sweep
from jaxgd.core import progress
from jaxgd.engines.engine import choose_engine


def standardized_auto_mpg():
    data = datasets.auto_mpg()
    return Standardizer.fit(data.X).transform(data.X), data.y


def test_auto_prefers_gram_unless_rows_are_few():
    assert choose_engine("auto", 392, 7, 1000, 8192) == "eigen"
    for optimizer in ("adam", "adamw", "rmsprop", "adagrad", "custom"):
        assert choose_engine("auto", 392, 7, 1000, 8192, optimizer) == "gram"
    assert choose_engine("auto", 392, 7, 1000, 8192, "momentum", fixed_l2=False) == "gram"
    assert choose_engine("auto", 3, 50, 1, 1) == "direct"
    assert choose_engine("direct", 10**6, 32, 200, 64) == "direct"
    with pytest.raises(ValueError, match="engine must be one of auto, direct, gram, eigen"):
        choose_engine("fast", 1, 1, 1, 1)
    with pytest.raises(ValueError, match="engine must be one of"):
        fit(np.ones((3, 1)), np.ones(3), learning_rate=0.1, num_steps=3, engine="fast")


@pytest.mark.parametrize("case", ["auto_mpg_standardized", "course_cars_raw"])
def test_engines_give_the_same_histories(case, cars):
    # Tolerance: both run in float32 from the same start; they sum in different orders, so
    # each step's loss differs by a few ulps, and descent is stable (it forgets such noise),
    # so histories stay within 1e-5 relative; on the raw cars (condition number ~500) the
    # plateau near the optimum is set by float32 rounding of the parameters: 1e-4.
    X, y = standardized_auto_mpg() if case == "auto_mpg_standardized" else cars
    rate, rtol = (0.2, 1e-5) if case == "auto_mpg_standardized" else (0.03, 1e-4)
    runs = {e: sweep(X, y, learning_rates=[rate / 10, rate], num_steps=3000, seeds=[0, 1],
                     engine=e) for e in ("direct", "gram", "eigen")}
    for engine in ("gram", "eigen"):
        assert runs[engine].engine == engine
        np.testing.assert_allclose(runs[engine].losses, runs["direct"].losses, rtol=rtol)
        np.testing.assert_allclose(runs[engine].params.weight, runs["direct"].params.weight,
                                   rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(runs[engine].snapshots.bias, runs["direct"].snapshots.bias,
                                   rtol=1e-3, atol=1e-4)
        single = fit(X, y, learning_rate=rate, num_steps=3000, engine=engine)
        np.testing.assert_allclose(single.losses, runs["direct"].losses[1, 0], rtol=rtol)


def test_log_every_keeps_every_kth_loss_of_the_same_run(problem):
    # The blocks compile to a slightly different program: a few float32 ulps of the loss's
    # O(var y) terms, so atol 1e-6 (var y is ~3 here) besides rtol 1e-6.
    X, y = problem
    full = fit(X, y, learning_rate=0.05, num_steps=100)
    for k in (10, 7):  # 7 does not divide 100: the last block runs past the end, as no-ops
        thin = fit(X, y, learning_rate=0.05, num_steps=100, record=jaxgd.Record(log_every=k))
        np.testing.assert_array_equal(thin.loss_steps, np.arange(0, 100, k))
        np.testing.assert_allclose(thin.losses, full.losses[::k], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(thin.final_loss, full.final_loss, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(thin.params.weight, full.params.weight, rtol=1e-6,
                                   atol=1e-7)
        assert int(thin.converged_step) == int(full.converged_step)
        np.testing.assert_allclose(thin.snapshots.weight, full.snapshots.weight, rtol=1e-6,
                                   atol=1e-7)


@pytest.mark.parametrize("engine", ["gram", "direct", "eigen"])
def test_chunks_give_the_numbers_of_one_big_run(problem, engine):
    # Each chunk is the same program on fewer runs. Both engines share a matrix product among
    # a chunk's runs, whose summation order may depend on the chunk's width: agreement to
    # float32 rounding (rtol 1e-5, atol 1e-6 for the gram loss's O(var y) terms), and the
    # same verdicts.
    X, y = problem
    rates = np.geomspace(0.01, 0.5, 7)
    whole = sweep(X, y, learning_rates=rates, seeds=[0, 1, 2], num_steps=60, engine=engine)
    seen = []
    with progress.listening(seen.append):
        parts = sweep(X, y, learning_rates=rates, seeds=[0, 1, 2], num_steps=60,
                      record=jaxgd.Record(progress_every=30),
                      placement=jaxgd.Placement(chunk_size=4),
                      engine=engine)
    assert isinstance(parts.losses, np.ndarray) and parts.losses.shape == (7, 3, 60)
    np.testing.assert_allclose(parts.losses, whole.losses, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(parts.params.weight, whole.params.weight, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(parts.diverged, whole.diverged)
    assert np.abs(parts.converged_step - whole.converged_step).max() <= 1
    assert seen == [30 * i for i in range(1, 13)]  # 6 chunks of 60 steps, counted on


def test_auto_counts_the_host_pass_of_the_moment_engines():
    # A million rows: on a CPU the float64 moments (n·(d+1)² once) are far cheaper than
    # 2·n·(d+1) per run-step; on a GPU a host multiply-add costs thousands of device ones,
    # and the direct engine wins (issue 11: 584 ms of host pass against a 143 ms sweep).
    assert choose_engine("auto", 10**6, 32, 200, 64, backend="cpu") == "eigen"
    assert choose_engine("auto", 10**6, 32, 200, 64, backend="gpu") == "direct"
    assert choose_engine("auto", 10**6, 32, 200, 64, optimizer="adam", backend="tpu") == "direct"
    # Small data keep the moments everywhere once there are enough runs to share them; on a
    # GPU in the fused kernel, whose single launch also beats a thousand launched steps of
    # the direct scan for one run (LAUNCH_COST), though the host pass is dearer than the
    # direct engine's multiply-adds there.
    assert choose_engine("auto", 392, 7, 1000, 8192, backend="gpu") == "eigen-fused"
    assert choose_engine("auto", 392, 7, 1000, 1, backend="gpu") == "eigen-fused"
    assert choose_engine("auto", 392, 7, 1000, 1, backend="cpu") == "eigen"
    # Too wide for the kernel: both scans pay the launches, the host pass decides.
    assert choose_engine("auto", 392, 20, 1000, 1, backend="gpu") == "direct"
