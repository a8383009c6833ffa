"""Adam's preconditioned sharpness (``track_sharpness``): equal to an independent float64
NumPy computation from a plain optax run's state, and on the course's cars it behaves as the
edge-of-stability theory says: it hovers at 2(1 + b1)/(1 − b1) at large rates."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd.api.settings import group
from jaxgd.theory.sharpness import adam_threshold
from jaxgd.theory.stability import hessian
from tests.conftest import COURSE_CARS_X, COURSE_CARS_Y
from tests.ulps import assert_close_ulps

X, Y = COURSE_CARS_X, COURSE_CARS_Y
#: Histories of the same runs from other programs (log_every blocks, the sharpness computed
#: besides), which XLA may fuse and sum otherwise: a 1-ulp change of the learning rate (a
#: bias at every step) moves these 200-step Adam histories by up to 14 ulps: within 64.
ULPS = 64


def _optax_sharpness(rate, steps, b1=0.9, b2=0.999, eps=1e-8):
    """Plain optax Adam from zeros; per step η·λmax(D^{-1/2} H D^{-1/2}) in float64 NumPy
    from its state after the update, H from ``jaxgd.theory.stability.hessian`` (float64)."""
    H = hessian(X)
    Xj, Yj = jnp.asarray(X), jnp.asarray(Y)
    loss = lambda p: jnp.mean((Xj[:, 0] * p[0] + p[1] - Yj) ** 2)  # noqa: E731
    opt = optax.adam(rate, b1=b1, b2=b2, eps=eps)
    params = jnp.zeros(2, jnp.result_type(float))
    state = opt.init(params)
    step = jax.jit(lambda p, s: opt.update(jax.grad(loss)(p), s))
    out = []
    for _ in range(steps):
        updates, state = step(params, state)
        params = optax.apply_updates(params, updates)
        nu, count = np.asarray(state[0].nu, np.float64), int(state[0].count)
        d = np.sqrt(nu / (1.0 - b2 ** count)) + eps
        out.append(rate * np.linalg.eigvalsh(H / np.sqrt(np.outer(d, d)))[-1])
    return np.asarray(out)


@pytest.mark.parametrize("x64,rtol", [(True, 1e-9), (False, 2e-4)])
def test_tracked_sharpness_equals_a_float64_computation_from_optax_state(x64, rtol):
    # float64: the same numbers to rounding. float32: jaxgd's loss and optax's plain loop
    # round differently, and Adam's v̂ carries that along; 40 steps stay within 2e-4.
    with jax.enable_x64(x64):
        run = jaxgd.fit(X, Y, learning_rate=0.5, num_steps=40, optimizer="adam",
                        record=jaxgd.Record(track_sharpness=True), init=0.0, engine="direct")
        expected = _optax_sharpness(0.5, 40)
    assert run.observed.dtype == (np.float64 if x64 else np.float32)
    np.testing.assert_allclose(np.asarray(run.observed, np.float64), expected, rtol=rtol)


def test_adam_hovers_at_its_edge_of_stability_on_the_course_cars():
    rates = [0.1, 0.3, 1.0, 3.0, 10.0, 30.0]
    r = jaxgd.sweep(X, Y, learning_rates=rates, num_steps=3000, optimizer="adam",
                    record=jaxgd.Record(track_sharpness=True), init=0.0, engine="direct")
    s = np.asarray(r.observed, np.float64)
    edge = adam_threshold(0.9)
    assert edge == pytest.approx(38.0)
    late = slice(2000, None)
    # The loss over the last 200 steps, relative to the optimum.
    gap = (np.asarray(r.losses, np.float64)[:, -200:] - r.optimal_loss) / r.optimal_loss
    for k, rate in enumerate(rates):
        assert not r.diverged[k], rate  # Adam self-stabilises: no blow-up at any rate
        if rate <= 1.0:
            # Far below the threshold all the way: the run settles on the optimum.
            assert s[k].max() < 0.6 * edge, rate
            assert gap[k].max() < 2e-4, rate
        else:
            # v̂ decays as the gradients shrink, so s climbs to the threshold; there the
            # run oscillates, its gradients and v̂ grow, and s falls back: it hovers at the
            # edge (within -25%/+10% over the last third), and the loss spikes (to more
            # than twice the optimum) and comes back, again and again, never settling.
            assert (s[k, late] > edge).any(), rate
            assert 0.75 * edge < s[k, late].min() and s[k, late].max() < 1.1 * edge, rate
            assert gap[k].max() > 1.0 and gap[k].min() < 1e-5, rate


def test_tracking_changes_nothing_else_and_is_off_by_default():
    plain = jaxgd.sweep(X, Y, learning_rates=[0.1, 3.0], num_steps=200, optimizer="adam")
    tracked = jaxgd.sweep(X, Y, learning_rates=[0.1, 3.0], num_steps=200, optimizer="adam",
                          record=jaxgd.Record(track_sharpness=True, log_every=7))
    assert plain.observed is None
    # The same steps, in another program: within ULPS.
    assert_close_ulps(np.asarray(tracked.losses), np.asarray(plain.losses)[:, ::7], ULPS)
    assert tracked.observed.shape == tracked.losses.shape
    assert tracked.run(1).observed.shape == tracked.losses.shape[1:]


@pytest.mark.parametrize("keywords,message", [
    ({"optimizer": "sgd"}, "track_sharpness is for optimizer adam"),
    ({"optimizer": "adam", "schedule": "cosine_decay"}, "constant learning rate"),
    ({"optimizer": "adam", "track_sharpness": "yes"}, "True or False"),
    ({"optimizer": "adam", "stop_at_convergence": True}, "stops runs between segments"),
])
def test_bad_tracking_requests_are_refused_by_name(keywords, message):
    keywords = {"track_sharpness": True, **keywords}
    with pytest.raises((ValueError, TypeError), match=message):
        jaxgd.fit(X, Y, learning_rate=0.1, num_steps=10, **group(keywords))


def test_adam_runs_that_diverge_were_above_the_threshold_but_not_the_other_way_round():
    # What the theory does and does not predict, against observed divergence: a run is
    # flagged when its loss passes 1e4× its start, here at its first step (Adam's first
    # step is about η in every coordinate); each such run had η·λmax(P⁻¹H) far above 38.
    # Being above the threshold is not enough, though: at η = 316 the first step's
    # sharpness is 88 and the loss jumps, then Adam's v̂ grows and the run recovers.
    rates = np.geomspace(1e-2, 1e4, 13)
    r = jaxgd.sweep(X, Y, learning_rates=rates, num_steps=300, optimizer="adam",
                    record=jaxgd.Record(track_sharpness=True), init=0.0, engine="direct")
    s = np.asarray(r.observed, np.float64)
    edge = adam_threshold(0.9)
    diverged = np.asarray(r.diverged)
    assert diverged.any()
    for k in np.flatnonzero(diverged):
        step = int(r.diverged_step[k])
        assert s[k, step - 1] > edge, rates[k]
    recovered = ~diverged & (s[:, 0] > edge)
    assert recovered.any()  # above the threshold at its first step, yet no divergence
    assert np.all(np.asarray(r.final_loss)[recovered] < 10 * float(r.losses[0, 0]))


def test_the_tracked_sharpness_survives_save_and_load(tmp_path):
    r = jaxgd.sweep(X, Y, learning_rates=[0.1, 3.0], num_steps=30, optimizer="adam",
                    record=jaxgd.Record(track_sharpness=True))
    back = jaxgd.load(r.save(tmp_path / "run"))
    np.testing.assert_array_equal(np.asarray(back.observed), np.asarray(r.observed))


def test_a_fused_engine_tracks_in_the_scan_loop_with_the_same_numbers():
    # The fused kernel keeps only the losses: a tracked run takes the scan loop instead.
    runs = [jaxgd.fit(X, Y, learning_rate=0.5, num_steps=40, optimizer="adam", engine=engine,
                      record=jaxgd.Record(track_sharpness=True),
                      init=0.0) for engine in ("gram-fused", "gram")]
    assert runs[0].engine == "gram-fused"
    np.testing.assert_allclose(np.asarray(runs[0].observed), np.asarray(runs[1].observed),
                               rtol=1e-6)
