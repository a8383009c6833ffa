import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgd import LinearParams, descend, exact_trajectory, mse
from jaxgd.core.snapshots import default_snapshot_steps
from tests.ulps import assert_close_ulps

#: Cut scans, unrolled bodies and segments are other compiled programs than one plain scan,
#: which XLA may fuse and sum otherwise (the quadratic's 3-term sum), by what the CPU at
#: hand vectorizes: same machine, same program is all that is bit for bit. The loss shrinks
#: toward 0 but carries the rounding of its O(1) terms, so losses are compared in ulps of
#: the starting loss (``floor``), parameters in their own. A 1-ulp change of the learning
#: rate (a bias at every step) moves these histories by up to 4.5 such ulps: within 16.
ULPS = 16


def _close(actual, expected, floor=0.0):
    assert_close_ulps(actual, expected, ULPS, floor=floor)


def quadratic(params):
    # A loss over a dict pytree that is not a linear model: descend is generic.
    return jnp.sum((params["a"] - 1.0) ** 2) + 3.0 * (params["b"] + 2.0) ** 2


def start():
    return {"a": jnp.zeros(3), "b": jnp.float32(0.0)}


def test_history_entry_t_is_loss_before_update_t():
    run = descend(quadratic, start(), optax.sgd(0.1), 5)
    params, expected = start(), []
    for _ in range(5):  # the same steps by hand, outside any scan
        expected.append(float(quadratic(params)))
        grads = jax.grad(quadratic)(params)
        params = jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grads)
    np.testing.assert_allclose(run.losses, expected, rtol=1e-6)
    np.testing.assert_allclose(run.final_loss, quadratic(params), rtol=1e-6)
    np.testing.assert_allclose(run.params["b"], params["b"], rtol=1e-6)


def test_works_with_any_optax_optimizer_and_under_jit():
    run = jax.jit(lambda p: descend(quadratic, p, optax.adam(0.1), 500))(start())
    np.testing.assert_allclose(run.params["a"], np.ones(3), atol=1e-3)
    np.testing.assert_allclose(run.params["b"], -2.0, atol=1e-3)


def test_matches_the_closed_form_trajectory_in_float64(cars):
    # Oracle: e_t = (I − ηH)^t e_0 in H's eigenbasis (no autodiff, no loop). Both in float64;
    # over 300 steps rounding stays ~1e-13 relative, so rtol 1e-10 is a tight, safe bound.
    X, y = cars
    with jax.enable_x64(True):
        start = LinearParams(jnp.array([0.3]), jnp.array(-0.2))
        run = descend(lambda p: mse(p, X, y), start, optax.sgd(0.05), 300)
        exact = exact_trajectory(X, y, start, 0.05, 300)
        np.testing.assert_allclose(run.losses, exact.losses, rtol=1e-10)
        np.testing.assert_allclose(run.final_loss, exact.final_loss, rtol=1e-10)
        np.testing.assert_allclose(run.params.weight, exact.params.weight, rtol=1e-10)


def test_snapshots_hold_the_parameters_before_their_step():
    steps = default_snapshot_steps(25)
    assert steps == (0, 5, 25) and default_snapshot_steps(1) == (0, 1)
    run = descend(quadratic, start(), optax.sgd(0.1), 25, snapshot_steps=steps)
    np.testing.assert_array_equal(run.snapshot_steps, steps)
    np.testing.assert_array_equal(run.snapshots["a"][0], start()["a"])
    halfway = descend(quadratic, start(), optax.sgd(0.1), 5)
    np.testing.assert_allclose(run.snapshots["a"][1], halfway.params["a"], rtol=1e-6)
    np.testing.assert_allclose(run.snapshots["b"][2], run.params["b"], rtol=1e-6)


def test_snapshot_steps_out_of_range_are_rejected():
    with pytest.raises(ValueError, match=r"snapshot_steps must lie in \[0, num_steps=10\]"):
        descend(quadratic, start(), optax.sgd(0.1), 10, snapshot_steps=[0, 11])


def test_stop_at_convergence_freezes_and_keeps_the_length():
    run = descend(quadratic, start(), optax.sgd(0.1), 300, stop_at_convergence=True)
    step = int(run.converged_step)
    assert 0 < step < 200
    frozen = np.asarray(run.losses)[step + 10 :]  # detected `patience` steps after step
    assert run.losses.shape == (300,) and np.all(frozen == frozen[0])
    free = descend(quadratic, start(), optax.sgd(0.1), 300)
    assert int(free.converged_step) == step


def test_divergence_stops_the_run_and_blanks_the_rest_of_the_history():
    run = descend(quadratic, start(), optax.sgd(1.0), 100)
    step = int(run.diverged_step)
    assert bool(run.diverged) and 0 < step < 100
    losses = np.asarray(run.losses)
    assert np.isfinite(losses[: step + 1]).all() and np.isnan(losses[step + 1 :]).all()
    assert losses[step] > 1e4 * losses[0]
    assert all(np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(run.params))
    assert int(run.converged_step) == -1


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"num_steps": 0}, ValueError, "num_steps must be >= 1"),
        ({"num_steps": 2.5}, TypeError, "num_steps must be an integer"),
        ({"log_every": 0}, ValueError, "log_every must be >= 1"),
        ({"patience": 0}, ValueError, "patience must be >= 1"),
        ({"tol": -1.0}, ValueError, "tol must be finite and >= 0"),
        ({"divergence_factor": 1.0}, ValueError, "divergence_factor must be > 1"),
    ],
)
def test_descend_checks_its_arguments(kwargs, error, message):
    arguments = {"num_steps": 10, **kwargs}
    num_steps = arguments.pop("num_steps")
    with pytest.raises(error, match=message):
        descend(quadratic, start(), optax.sgd(0.1), num_steps, **arguments)


@pytest.mark.parametrize("log_every, steps", [(1, (0, 4, 9, 25)), (7, (0, 3, 14, 23, 25))])
def test_snapshots_equal_the_params_of_the_shorter_run(log_every, steps):
    # Oracle: the snapshot at step s is the parameters after s updates, i.e. a run of s steps
    # (the same arithmetic in another program: within ULPS). Boundary steps are taken in the
    # loop (from a cond on a CPU; cuts elsewhere); with log_every=7, steps 3 and 23 fall
    # inside a block (the cut path) and 25 ends a padded one.
    opt = optax.sgd(0.1)
    run = descend(quadratic, start(), opt, 25, snapshot_steps=steps, log_every=log_every)
    for slot, s in enumerate(steps):
        expected = start() if s == 0 else descend(quadratic, start(), opt, s).params
        for name in ("a", "b"):
            _close(run.snapshots[name][slot], expected[name])


def test_snapshots_keep_the_history_and_verdicts(monkeypatch):
    # A history whose loop takes the course's three snapshots is the one without, entry for
    # entry; so is the loop cut at the middle one, as off a CPU (keep_snapshots_apart
    # False), and both take the same snapshots.
    from jaxgd.core import descent

    opt, steps = optax.sgd(0.3), (0, 6, 40)
    kept = descend(quadratic, start(), opt, 40, snapshot_steps=steps)
    whole = descend(quadratic, start(), opt, 40, snapshot_steps=())
    monkeypatch.setattr(descent, "keep_snapshots_apart", lambda: False)
    cut = descend(quadratic, start(), opt, 40, snapshot_steps=steps)
    for run in (kept, cut):
        _close(run.losses, whole.losses, floor=whole.losses[0])
        assert int(run.converged_step) == int(whole.converged_step)
    for name in ("a", "b"):
        _close(cut.snapshots[name], kept.snapshots[name])


def test_unroll_is_a_speed_setting_only():
    opt = optax.sgd(0.1)
    base = descend(quadratic, start(), opt, 30, unroll=1)
    for unroll in (3, 8):
        other = descend(quadratic, start(), opt, 30, unroll=unroll)
        _close(other.losses, base.losses, floor=base.losses[0])
    with pytest.raises(ValueError, match="unroll"):
        descend(quadratic, start(), opt, 30, unroll=0)


def test_default_unroll_by_backend():
    from jaxgd.core.descent import default_unroll

    assert default_unroll("cpu") == 1 and default_unroll("gpu") == default_unroll("tpu") > 1


@pytest.mark.parametrize("log_every", [1, 3])
def test_segments_cut_or_not_give_the_snapshots_of_one_run(log_every):
    # A segmented loop run from concrete steps takes the snapshots in its scan; from a traced
    # step counter (jaxgd.tuning.segments) it takes them from a cond. Both equal one descend: the
    # snapshots are copies of the same parameters, from other programs (within ULPS).
    # Steps 0, 6 and 12 are on segment or block boundaries, 7 inside a block for
    # log_every=3, 20 at the end.
    from jaxgd.core.descent import descent_loop

    opt, steps, num_steps, length = optax.sgd(0.1), (0, 6, 7, 12, 20), 20, 6 * log_every
    whole = descend(quadratic, start(), opt, num_steps, snapshot_steps=steps,
                    log_every=log_every)
    loop = descent_loop(quadratic, start(), opt, num_steps, snapshot_steps=steps,
                        log_every=log_every, segmented=True, unroll=2)
    traced_run = jax.jit(loop.run, static_argnums=2)
    for run, first in ((loop.run, int), (traced_run, jnp.int32)):
        state, losses = loop.init(), []
        for step in range(0, num_steps, length):
            state, (logged, _) = run(state, first(step), length)
            losses.append(logged)
        losses = jnp.concatenate(losses)[: whole.losses.size]
        got = loop.finish(state, losses, position=num_steps)
        _close(got.losses, whole.losses, floor=whole.losses[0])
        for name in ("a", "b"):
            _close(got.snapshots[name], whole.snapshots[name])
            _close(got.params[name], whole.params[name])
