"""Warm starts: ``init=`` on fit, sweep and grid_sweep (issue #23).

Every run starts at the given ``LinearParams`` (one for all runs, or one per run along the
result's grid axes) instead of the seed's draw, in every engine, and under the caller's
transformations. Tolerances are stated where they are used.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd import LinearParams, fit, grid_sweep, solve, sweep
from tests.conftest import compiles, well_conditioned
from tests.ulps import assert_close_ulps

DTYPES = [pytest.param(False, id="float32"), pytest.param(True, id="float64")]
ENGINES = ["direct", "gram", "eigen"]


def mse(params, X, y):
    """The float64 MSE of ``params`` on (X, y), outside jaxgd; leading axes are runs."""
    weight = np.asarray(params.weight, np.float64)
    bias = np.asarray(params.bias, np.float64)
    predictions = np.einsum("nd,...d->...n", X, weight) + bias[..., None]
    return np.mean((predictions - y) ** 2, -1)


def starts(shape, d, seed=5):
    """Distinct starts, one per run of a grid of ``shape``, float64."""
    rng = np.random.default_rng(seed)
    return LinearParams(rng.standard_normal((*shape, d)), rng.standard_normal(shape))


@pytest.mark.parametrize("x64", DTYPES)
@pytest.mark.parametrize("engine", ENGINES)
def test_a_start_at_the_optimum_stays_there(engine, x64):
    # The float64 least-squares optimum, rounded to the run's float: its gradient is
    # rounding alone, so every loss of the run is L* to the loss's own rounding. float32:
    # the residuals (~0.1) are differences of terms of order 3, each rounded to ~2e-7, so
    # the loss carries ~1e-5 relative error: rtol 1e-4. float64: the same argument at
    # 1e-16: rtol 1e-10. The start is a fixed point, so the monitor calls it converged
    # after `patience` flat steps. (25 steps, patience 5: the program of the halves in
    # test_continuing_a_run_equals_running_it_longer, compiled once for both.)
    X, y = well_conditioned(0)
    best = solve(X, y)
    with jax.enable_x64(x64):
        run = fit(X, y, learning_rate=0.1, num_steps=25, engine=engine, init=best.params,
                  stopping=jaxgd.Stopping(patience=5))
    rtol = 1e-10 if x64 else 1e-4
    np.testing.assert_allclose(run.losses, best.loss, rtol=rtol)
    np.testing.assert_allclose(run.final_loss, best.loss, rtol=rtol)
    np.testing.assert_allclose(run.params.weight, best.params.weight,
                               rtol=0, atol=1e-12 if x64 else 1e-5)
    assert bool(run.converged) and 0 <= int(run.converged_step) <= 5
    assert run.losses.dtype == (np.float64 if x64 else np.float32)


@pytest.mark.parametrize("x64", DTYPES)
@pytest.mark.parametrize("engine", ENGINES)
def test_continuing_a_run_equals_running_it_longer(engine, x64):
    # Plain SGD at a constant rate keeps no state but the parameters, so a run continued
    # from its final params takes the very steps the longer run takes. In weight and bias
    # (direct) it is the same float arithmetic on the same floats; the moment engines map
    # the params back and forth between their coordinates (gram: a reshaping, exact;
    # eigen: θ = Qz and z = Qᵀθ, each rounding by a few ulps, an error the stable
    # descent then shrinks). Bit for bit on this CPU in all three; asserted to 4 ulps of
    # the parameters' own scale (floor 1) and of the losses, which another compiled
    # program (another num_steps) may round differently. Two halves of 25 steps from a
    # start given as params: one program serves both halves (and, patience 5,
    # test_a_start_at_the_optimum_stays_there).
    X, y = well_conditioned(1)
    options = {"learning_rate": 0.2, "engine": engine, "stopping": jaxgd.Stopping(patience=5)}
    zero = LinearParams(np.zeros(X.shape[1]), np.float64(0.0))
    with jax.enable_x64(x64):
        first = fit(X, y, num_steps=25, init=zero, **options)
        then = fit(X, y, num_steps=25, init=first.params, **options)
        whole = fit(X, y, num_steps=50, init=zero, **options)
    assert_close_ulps(then.params.weight, whole.params.weight, 4, floor=1.0)
    assert_close_ulps(then.params.bias, whole.params.bias, 4, floor=1.0)
    assert_close_ulps(then.losses, whole.losses[25:], 4, floor=whole.final_loss)
    assert_close_ulps(then.final_loss, whole.final_loss, 4)


def test_init_replaces_the_seeds_draw(problem):
    X, y = problem
    start = LinearParams(np.array([1.0, -2.0, 0.5]), np.float64(3.0))
    # The direct engine holds weight and bias as given (the moment engines' coordinates
    # would round them on the way back): step 0's snapshot is the start, cast to float32.
    a = fit(X, y, learning_rate=0.1, num_steps=5, seed=0, init=start, engine="direct")
    b = fit(X, y, learning_rate=0.1, num_steps=5, seed=7, init=start,
            engine="direct")
    np.testing.assert_array_equal(a.losses, b.losses)  # one program, the same inputs
    np.testing.assert_array_equal(a.snapshots.weight[0], np.float32(start.weight))
    # The first loss is the start's: float32 data and parameters, relative 1e-6.
    np.testing.assert_allclose(a.losses[0], mse(start, X, y), rtol=1e-6)
    drawn = fit(X, y, learning_rate=0.1, num_steps=5, seed=0)
    assert not np.allclose(drawn.losses[0], a.losses[0])


def test_a_minibatch_run_starts_at_init(problem):
    X, y = problem
    start = LinearParams(np.array([1.0, -2.0, 0.5]), np.float64(3.0))
    run = fit(X, y, learning_rate=0.05, batches=jaxgd.MiniBatches(batch_size=16, epochs=2),
              init=start)
    # The loss on all rows at the first epoch's start: float32, relative 1e-6.
    np.testing.assert_allclose(run.epoch_losses[0], mse(start, X, y), rtol=1e-6)


def test_gradient_with_respect_to_init_matches_finite_differences():
    # float64, 20 steps of plain GD: the final loss is a smooth (quadratic) function of
    # the start. Central differences with h = 1e-5 have truncation error 0 for a quadratic
    # and rounding error ~1e-16·L/h ~ 1e-11; rtol 1e-6 leaves room for both.
    X, y = well_conditioned(2, n=32, d=2)
    with jax.enable_x64(True):
        def final(weight):
            start = LinearParams(weight, jnp.asarray(0.5))
            return fit(X, y, learning_rate=0.1, num_steps=20, init=start,
                       engine="direct").final_loss

        w0 = jnp.array([0.3, -0.7])
        grad = jax.grad(final)(w0)
        h = 1e-5
        numeric = [(final(w0.at[i].add(h)) - final(w0.at[i].add(-h))) / (2 * h)
                   for i in range(2)]
        np.testing.assert_allclose(grad, numeric, rtol=1e-6)
        assert np.abs(np.asarray(grad)).min() > 1e-6  # a gradient that is really there
        # vmapped over starts: each the fit from its own start.
        weights = jnp.array([[0.3, -0.7], [1.0, 2.0]])
        losses = jax.vmap(final)(weights)
        np.testing.assert_allclose(losses, [final(weights[0]), final(weights[1])],
                                   rtol=1e-12)


@pytest.mark.parametrize("x64", DTYPES)
def test_sweep_takes_one_start_or_one_per_run(x64):
    # Members against fit from the same start: other compiled programs (vmapped), to
    # rounding: 1e-5 float32, 1e-12 float64 (as tests/api/test_sweep.py).
    X, y = well_conditioned(3)
    rates, seeds = [0.05, 0.2], [0, 1, 2]
    rtol = 1e-12 if x64 else 1e-5
    per_run = starts((2, 3), 3)
    with jax.enable_x64(x64):
        shared = sweep(X, y, learning_rates=rates, seeds=seeds, num_steps=10,
                       init=LinearParams(per_run.weight[0, 0], per_run.bias[0, 0]))
        each = sweep(X, y, learning_rates=rates, seeds=seeds, num_steps=10, init=per_run)
        member = fit(X, y, learning_rate=0.2, num_steps=10,
                     init=LinearParams(per_run.weight[1, 2], per_run.bias[1, 2]))
        again = sweep(X, y, learning_rates=rates, seeds=seeds, num_steps=10,
                      init=each.params)  # a warm start from the previous sweep
        per_rate = sweep(X, y, learning_rates=rates, seeds=seeds, num_steps=10,
                         init=LinearParams(per_run.weight[:, :1], per_run.bias[:, :1]))
    for rate in range(2):  # one start: the seeds change nothing
        for seed in range(1, 3):
            np.testing.assert_array_equal(shared.losses[rate, seed], shared.losses[rate, 0])
    np.testing.assert_allclose(each.losses[..., 0], mse(per_run, X, y), rtol=max(rtol, 1e-6))
    np.testing.assert_allclose(each.losses[1, 2], member.losses, rtol=rtol)
    np.testing.assert_allclose(each.params.weight[1, 2], member.params.weight, rtol=rtol,
                               atol=rtol)
    np.testing.assert_allclose(again.losses[..., 0], each.final_loss, rtol=rtol)
    assert again.params.weight.shape == (2, 3, 3)
    # An axis of length 1 is shared: one start per rate, the same for its three seeds.
    for seed in range(3):
        np.testing.assert_array_equal(per_rate.losses[:, seed], each.losses[:, 0])


def test_grid_sweep_takes_one_start_per_point():
    # float32 against fit from the same start, as above: rtol 1e-5.
    X, y = well_conditioned(4)
    grid = {"learning_rate": [0.05, 0.1], "momentum": [0.0, 0.5, 0.9]}
    per_run = starts((2, 3), 3, seed=6)
    run = grid_sweep(X, y, grid=grid, optimizer="momentum", num_steps=10, init=per_run)
    np.testing.assert_allclose(run.losses[..., 0], mse(per_run, X, y), rtol=1e-6)
    one = fit(X, y, learning_rate=0.1, num_steps=10,
              optimizer=jaxgd.Optimizer("momentum", momentum=0.5),
              init=LinearParams(per_run.weight[1, 1], per_run.bias[1, 1]))
    np.testing.assert_allclose(run.losses[1, 1], one.losses, rtol=1e-5)


def test_segmented_runs_start_at_init():
    # stop_at_convergence runs the sweep in segments (jaxgd.tuning.segments), whose first
    # state comes from the same start: float32, relative 1e-6 on the first loss.
    X, y = well_conditioned(3)
    per_run = starts((3,), 3)
    run = sweep(X, y, learning_rates=[0.05, 0.1, 0.2], num_steps=40, init=per_run,
                stopping=jaxgd.Stopping(early_exit=True, segment_steps=10))
    np.testing.assert_allclose(run.losses[:, 0], mse(per_run, X, y), rtol=1e-6)


def test_another_start_reuses_the_compiled_run(problem):
    # The start is a traced input, like the seed: a new one of the same shape compiles
    # nothing; a run without init (the seed's draw) is another program.
    X, y = problem
    fit(X, y, learning_rate=0.1, num_steps=5, init=starts((), 3, seed=1))
    with compiles() as events:
        fit(X, y, learning_rate=0.1, num_steps=5, init=starts((), 3, seed=2))
    assert events == []


def test_the_fused_kernel_starts_at_init():
    # Pallas's interpreter on this CPU: the kernel's own start. Against the scan path,
    # float32: 1e-6 relative plus 1e-7 absolute (see tests/engines/test_fused.py).
    X, y = well_conditioned(1, n=40, d=3)
    per_run = starts((2,), 3)
    options = dict(learning_rates=[0.05, 0.3], num_steps=6, init=per_run)
    scan = sweep(X, y, engine="gram", **options)
    fused = sweep(X, y, engine="gram-fused", **options)
    np.testing.assert_allclose(fused.losses, scan.losses, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(fused.losses[:, 0], mse(per_run, X, y), rtol=1e-6)


@pytest.mark.parametrize("init, error, match", [
    (LinearParams(np.zeros(2), np.float64(0.0)), ValueError, "init.weight has 2 features"),
    (LinearParams(np.zeros(3), np.zeros(2)), ValueError, "init has weight shape"),
    (LinearParams(np.array([0.0, np.nan, 0.0]), np.float64(0.0)), ValueError, "NaN or inf"),
    (LinearParams(np.zeros(3), np.float64(np.inf)), ValueError, "init.bias holds NaN"),
    (LinearParams(np.zeros(3, int), np.float64(0.0)), TypeError, "float array"),
    (LinearParams(np.zeros(3), True), TypeError, "init.bias must be a float array"),
    ((np.zeros(3), 0.0), TypeError, "init must be a jaxgd.LinearParams"),
    ({"weight": np.zeros(3), "bias": 0.0}, TypeError, "got dict"),
    (np.zeros(4), TypeError, "got ndarray"),
])
def test_bad_starts_are_refused_naming_init(problem, init, error, match):
    X, y = problem
    with pytest.raises(error, match=match):
        fit(X, y, learning_rate=0.1, num_steps=5, init=init)


def test_per_run_starts_must_have_the_grid_axes(problem):
    X, y = problem
    wrong = starts((3, 2), 3)  # (seeds, rates): the axes the other way round
    with pytest.raises(ValueError, match=r"one per run: weight \(2, 3, 3\) and bias "
                                         r"\(2, 3\), the runs' axes \(learning_rate, seed\)"):
        sweep(X, y, learning_rates=[0.1, 0.2], seeds=[0, 1, 2], num_steps=5, init=wrong)
    with pytest.raises(ValueError, match="init has weight shape"):  # fit has no run axes
        fit(X, y, learning_rate=0.1, num_steps=5, init=starts((2,), 3))
    with pytest.raises(ValueError, match=r"init\.weight has 2 features"):
        grid_sweep(X, y, grid={"learning_rate": [0.1, 0.2]}, num_steps=5,
                   init=starts((2,), 2))
