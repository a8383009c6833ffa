"""k folds under the caller's transformations: ``jax.grad`` and ``jax.jit`` of the mean
held-out loss over folds with respect to l2 and the learning rate (issue #23, item 3).

The fold ids are drawn once on the host from ``validation_seed`` and stay fixed, so the
cross-validated loss is a smooth function of the hyperparameters: its float64 gradient is
checked against central differences of the same function run untraced.
"""

import jax
import numpy as np
import pytest

import jaxgd
from jaxgd import grid_sweep, load, stability, sweep
from jaxgd.pipeline.holdout import fold_ids
from jaxgd.tuning.search import Range
from tests.conftest import well_conditioned

X, Y = well_conditioned(31, n=40)


def _cv_loss(l2, rate, engine):
    """The mean held-out loss over 4 folds and two learning rates (``rate`` and 0.2), as a
    function of l2 and of the first rate: one program serves both derivatives."""
    return grid_sweep(X, Y, grid={"learning_rate": jax.numpy.stack([rate, 0.2])},
                      validation=jaxgd.KFolds(4, seed=5), l2=l2, num_steps=30,
                      engine=engine).final_validation_loss.mean()


def _central(f, x, step):
    return (f(x + step) - f(x - step)) / (2 * step)


@pytest.mark.parametrize("engine", ["direct", "gram", "eigen"])
def test_the_gradients_in_l2_and_the_learning_rate_match_finite_differences(engine):
    # float64 throughout; one jax.grad gives both derivatives (one program). l2: step 1e-5,
    # the truncation error (~h²·f'''/6, f''' of order 1 here) ~1e-11 and the rounding error
    # ~eps·|f|/h ~ 1e-11. The rate: the loss after 30 steps holds (1 - ηλ)^60-like factors,
    # whose third derivative in η is large (~60³λ³): step 1e-6 keeps the truncation error
    # ~1e-10 relative, the rounding error ~eps·|f|/h ~ 1e-10 (seen: 1e-10 for l2, 5e-10 for
    # the rate). Both far below rtol 1e-7.
    with jax.enable_x64(True):
        grad = jax.grad(_cv_loss, argnums=(0, 1))(0.3, 0.1, engine)
        fd_l2 = _central(lambda l2: _cv_loss(l2, 0.1, engine), 0.3, 1e-5)
        fd_rate = _central(lambda rate: _cv_loss(0.3, rate, engine), 0.1, 1e-6)
        # Each moves the held-out loss: the checks are not 0 = 0.
        assert abs(float(fd_l2)) > 1e-3 and abs(float(fd_rate)) > 1e-3
        np.testing.assert_allclose(grad, [fd_l2, fd_rate], rtol=1e-7)
        # jit and grad compose, and the traced objective is the untraced one.
        jitted = jax.jit(jax.grad(_cv_loss, argnums=(0, 1)), static_argnums=2)(0.3, 0.1, engine)
        np.testing.assert_allclose(jitted, grad, rtol=1e-12)
        np.testing.assert_allclose(jax.jit(lambda l2: _cv_loss(l2, 0.1, engine))(0.3),
                                   _cv_loss(0.3, 0.1, engine), rtol=1e-12)


@pytest.mark.parametrize("engine", ["gram-fused", "eigen-fused"])
def test_a_fused_engine_differentiates_its_folds_through_the_scan_path(engine):
    # A fused engine's k folds under jax.grad failed to lower (the kernel's per-run fold
    # constants); under the caller's transformation they take the same engine's scan path:
    # its gradient, bit for bit (the same program), in float32 as a GPU run would be.
    scan = engine.removesuffix("-fused")
    got = jax.grad(lambda rate: _cv_loss(0.3, rate, engine))(0.1)
    want = jax.grad(lambda rate: _cv_loss(0.3, rate, scan))(0.1)
    assert np.isfinite(got) and abs(float(got)) > 1e-3
    np.testing.assert_array_equal(got, want)


def test_traced_hyperparameters_see_the_same_folds_and_verdicts():
    # A traced rate gets each fold's own stability verdict, as an untraced one does: at a
    # rate between the folds' limits some folds' runs are flagged above it, others not.
    ids = fold_ids(X.shape[0], 3, seed=2)
    limits = [stability(X[ids != f], 0.0).max_learning_rate for f in range(3)]
    rate = 0.5 * (min(limits) + max(limits))
    assert min(limits) < rate < max(limits)
    kw = {"num_steps": 20, "validation": jaxgd.KFolds(3, seed=2)}
    plain = sweep(X, Y, learning_rates=[rate, 0.1], **kw)

    def verdicts_and_losses(r):  # one traced program for both
        runs = sweep(X, Y, learning_rates=[r, 0.1], **kw)
        return runs.diverged, runs.final_validation_loss

    traced, losses = jax.jit(verdicts_and_losses)(rate)
    np.testing.assert_array_equal(traced, plain.diverged)
    assert plain.diverged[0].any() and not plain.diverged[0].all()  # fold by fold
    np.testing.assert_allclose(losses, plain.final_validation_loss, rtol=1e-6)


# Two features on scales 1 and 3 (as in test_refinement): after 10 steps the best constant
# rate lies inside the stable range, so refinement has somewhere to go.
_RNG = np.random.default_rng(4)
X_ILL = _RNG.normal(size=(60, 2)) * [1.0, 3.0]
Y_ILL = X_ILL @ [1.0, 2.0] + 1.0 + 0.5 * _RNG.normal(size=60)


def test_refine_with_k_folds_descends_the_mean_held_out_loss_over_folds(tmp_path):
    space = {"learning_rate": ("log", 1e-3, 1.0)}
    r = Range("log", 1e-3, 1.0)
    with jax.enable_x64(True):
        result = grid_sweep(X_ILL, Y_ILL, sample=jaxgd.Sample(space, 8),
                            validation=jaxgd.KFolds(3, seed=1), num_steps=10,
                            refine={"top": 2, "steps": 4})
        refined = result.refined

        def cv(rate):  # the oracle: a fresh cross-validated sweep at one rate
            return float(sweep(X_ILL, Y_ILL, learning_rates=[rate], num_steps=10,
                               validation=jaxgd.KFolds(3, seed=1)).final_validation_loss.mean())

        mean = np.asarray(result.final_validation_loss).mean(-1)
        # Start points: the best points by their mean over the folds (the index leaves the
        # fold axis out, as best() does); the objective is that mean (float64: the start
        # goes to unit coordinates and back, a few ulps, times the loss's sensitivity).
        np.testing.assert_array_equal(refined.start[:, 0], np.argsort(mean)[:2])
        assert tuple(refined.start[0]) == result.best()
        np.testing.assert_allclose(refined.objective[:, 0], mean[refined.start[:, 0]],
                                   rtol=1e-10)
        assert np.all(np.diff(refined.objective, axis=1) <= 0)
        assert refined.objective[0, -1] < refined.objective[0, 0]  # it moved, downhill
        # The end points, rerun as plain k-fold sweeps, give the objective found.
        ends = refined.path["learning_rate"][:, -1]
        np.testing.assert_allclose(refined.objective[:, -1], [cv(rate) for rate in ends],
                                   rtol=1e-10)
        assert refined.runs.axes == ("sample", "fold")
        np.testing.assert_allclose(refined.runs.final_validation_loss.mean(-1),
                                   refined.objective[:, -1], rtol=1e-12)
        # The hypergradient of the mean over folds, in the unit coordinate, against central
        # differences (float64, h = 1e-6: error ~h²·f''' + ulp/h, about 1e-9; rel 1e-6).
        u0 = float(r.to_unit(refined.path["learning_rate"][0, 0]))
        h = 1e-6
        finite = (cv(r.from_unit(u0 + h)) - cv(r.from_unit(u0 - h))) / (2 * h)
        assert abs(finite) > 1e-3
        assert refined.gradient["learning_rate"][0, 0] == pytest.approx(finite, rel=1e-6)
        # A refined k-fold search saves and loads, its refinement with it.
        result.save(tmp_path / "cv")
        loaded = load(tmp_path / "cv").refined
        assert loaded.runs.axes == ("sample", "fold") and loaded.start.shape == (2, 1)
        np.testing.assert_array_equal(loaded.objective, refined.objective)
        np.testing.assert_array_equal(loaded.runs.final_validation_loss,
                                      refined.runs.final_validation_loss)


def test_vmap_over_l2_with_k_folds_matches_one_call_per_value():
    def cv(l2):
        return grid_sweep(X, Y, grid={"learning_rate": [0.1]}, l2=l2, num_steps=20,
                          validation=jaxgd.KFolds(4)).final_validation_loss.mean()
    # float32: vmap may reorder the sums of a run (a few ulps of the loss).
    np.testing.assert_allclose(jax.vmap(cv)(jax.numpy.array([0.0, 0.5])),
                               [cv(0.0), cv(0.5)], rtol=1e-5)


def test_refined_k_fold_points_stay_below_every_fold_s_stability_limit():
    # Centred orthogonal features on scales 1 and 4, the target along the first only, runs
    # started at zero: above a fold's limit 2/λmax its loss still falls for these 5 steps,
    # so only the verdict keeps refinement out (without the folds' curvatures the paths go
    # to 0.064 and 0.074, past the folds' limits 0.058 to 0.067). A point is refused if any
    # fold is above its own.
    rng = np.random.default_rng(0)
    q = np.linalg.qr(np.c_[np.ones(40), rng.normal(size=(40, 2))])[0]
    x_edge = q[:, 1:] * np.sqrt(40) * [1.0, 4.0]
    y_edge = 3.0 * x_edge[:, 0] + 1.0
    ids = fold_ids(40, 4, seed=0)
    limits = [float(stability(x_edge[ids != f]).max_learning_rate) for f in range(4)]
    result = grid_sweep(x_edge, y_edge, num_steps=5,
                        sample=jaxgd.Sample({"learning_rate": ("log", 1e-3, 0.3)}, 8),
                        validation=jaxgd.KFolds(4), init=0.0,
                        refine={"top": 2, "steps": 6, "learning_rate": 0.2})
    refined = result.refined
    assert (refined.path["learning_rate"] < min(limits)).all()
    assert (np.diff(refined.objective, axis=1) <= 0).all()
    assert (refined.objective[:, -1] < refined.objective[:, 0]).all()
