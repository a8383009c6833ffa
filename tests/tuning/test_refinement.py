import jax
import numpy as np
import pytest

import jaxgd
from jaxgd import fit, grid_sweep, stability, sweep
from jaxgd.api.settings import group
from jaxgd.theory.stability import limit_factor
from jaxgd.tuning.search import Range

RNG = np.random.default_rng(0)
# Two features on scales 1 and 3: after 10 steps the best constant learning rate lies
# inside the stable range, where the slow direction's progress meets the fast one's bounce.
X_ILL = RNG.normal(size=(40, 2)) * [1.0, 3.0]
Y_ILL = X_ILL @ [1.0, 2.0] + 1.0 + 0.1 * RNG.normal(size=40)
# Centred orthogonal features on scales 1 and 4, the target along the first only: started at
# zero the fast direction holds no error, so runs above the stability limit 2/λmax keep
# lowering the loss for a while, and their verdict cannot catch them (nothing grows).
_Q = np.linalg.qr(np.c_[np.ones(40), RNG.normal(size=(40, 2))])[0]
X_EDGE = _Q[:, 1:] * np.sqrt(40) * [1.0, 4.0]
Y_EDGE = 3.0 * X_EDGE[:, 0] + 1.0


def test_refinement_moves_toward_the_best_learning_rate_and_never_worsens():
    result = grid_sweep(X_ILL, Y_ILL, sample=jaxgd.Sample({"learning_rate": ("log", 1e-3, 1.0)}, 8),
                        num_steps=10, refine={"top": 2, "steps": 6})
    refined = result.refined
    # The oracle: the final loss after 10 steps on a dense grid of learning rates.
    rates = np.geomspace(0.05, 0.115, 400)
    dense = sweep(X_ILL, Y_ILL, learning_rates=rates, num_steps=10).final_loss
    best_rate, best_loss = rates[np.argmin(dense)], float(np.min(dense))
    assert np.all(np.diff(refined.objective, axis=1) <= 0)  # accepted steps only lower it
    start = float(result.final_loss.min())
    # The start's rate goes to unit coordinates and back in float32 (log, exp: a few ulps,
    # and the loss after 10 steps moves ~10x as much): equal to 1e-5.
    assert refined.objective[0, 0] == pytest.approx(start, rel=1e-5)
    end = float(refined.objective.min())
    # Most of the way from the best sampled point to the optimum (its loss to 1%).
    assert end < start and end - best_loss < 0.01 * (start - best_loss) + 1e-6
    assert refined.path["learning_rate"][0, -1] == pytest.approx(best_rate, rel=0.05)
    # The refined runs are the end points run in full, named by point().
    np.testing.assert_allclose(refined.runs.final_loss, refined.objective[:, -1], rtol=1e-6)
    point = refined.runs.point((0,))
    assert point["learning_rate"] == pytest.approx(refined.path["learning_rate"][0, -1])
    assert refined.runs.losses.shape == (2, 10) and refined.start.shape == (2, 1)


def test_refinement_stops_below_the_stability_limit():
    limit = stability(X_EDGE).max_learning_rate
    above = fit(X_EDGE, Y_EDGE, learning_rate=1.5 * limit, num_steps=5, init=0.0)
    below = fit(X_EDGE, Y_EDGE, learning_rate=0.99 * limit, num_steps=5, init=0.0)
    # The trap: above the limit the loss is lower still, and the run is not flagged.
    assert above.final_loss < below.final_loss and not above.diverged
    result = grid_sweep(X_EDGE, Y_EDGE,
                        sample=jaxgd.Sample({"learning_rate": ("log", 1e-3, 0.2)}, 8),
                        init=0.0,
                        num_steps=5, refine={"top": 2, "steps": 8, "learning_rate": 0.2})
    refined = result.refined
    rates = np.asarray(result.values["learning_rate"])
    for index in refined.start[:, 0]:  # start points lie below the limit too
        assert rates[index] < limit
    path = refined.path["learning_rate"]
    assert (path < limit).all()
    assert path[0, -1] > 0.9 * limit  # pushed up against it, and stopped there
    assert (refined.step_size[:, -1] == 0).any()  # the last tries were rejected


def test_the_hypergradient_matches_finite_differences():
    with jax.enable_x64(True):
        space = {"learning_rate": ("log", 1e-3, 1.0)}
        step = 1e-3
        result = grid_sweep(X_ILL, Y_ILL, sample=jaxgd.Sample(space, 4), num_steps=10,
                            refine={"top": 1, "steps": 1, "learning_rate": step,
                                    "backtracks": 1})
        refined = result.refined
        assert refined.step_size[0, 0] == step  # accepted: a descent direction
        r = Range("log", 1e-3, 1.0)
        u0 = float(r.to_unit(refined.path["learning_rate"][0, 0]))
        u1 = float(r.to_unit(refined.path["learning_rate"][0, 1]))
        hypergradient = refined.gradient["learning_rate"][0, 0]
        # One coordinate: the normalized step moves it by exactly the step, downhill.
        assert u0 - u1 == pytest.approx(step * np.sign(hypergradient), rel=1e-9)

        def loss(u):
            return float(fit(X_ILL, Y_ILL, learning_rate=r.from_unit(u), num_steps=10)
                         .final_loss)

        h = 1e-6  # central differences in float64: error ~h² f''' + ulp/h, about 1e-9
        finite = (loss(u0 + h) - loss(u0 - h)) / (2 * h)
        assert hypergradient == pytest.approx(finite, rel=1e-6)


@pytest.mark.parametrize("keywords, message", [
    ({"refine": {"tops": 2}}, r"unknown settings 'tops'"),
    ({"refine": {"top": 0}}, r"refine\['top'\]"),
    ({"refine": {"learning_rate": 2.0}}, r"refine\['learning_rate'\].*\(0, 1\]"),
    ({"refine": [4]}, r"refine must map"),
    ({"refine": {"top": 2}, "sample": {"l2": ("log", 1e-3, 1.0)}, "learning_rate": 0.1},
     r"other than l2"),
    ({"refine": {"top": 2}, "sample": None, "num_samples": None,
      "grid": {"learning_rate": [0.1]}}, r"give sample="),
])
def test_bad_refine_settings_are_named(keywords, message):
    keywords = {"sample": {"learning_rate": ("log", 1e-3, 1.0)}, "num_samples": 4,
                **keywords}
    with pytest.raises(ValueError, match=message):  # the old flat spellings, grouped here
        grid_sweep(X_ILL, Y_ILL, num_steps=5, **group(keywords))


def test_a_traced_momentum_gets_the_same_stability_limit():
    for name in ("momentum", "nesterov"):
        traced = jax.jit(lambda beta, name=name: limit_factor(name, beta))(0.7)
        assert float(traced) == pytest.approx(limit_factor(name, 0.7), rel=1e-6)


def test_refined_momentum_runs_stay_below_their_own_limit():
    # Both the rate and β move; the limit 2(1 + β)/λmax moves with β (traced in the program).
    result = grid_sweep(X_EDGE, Y_EDGE, optimizer="momentum", num_steps=5,
                        sample=jaxgd.Sample({"learning_rate": ("log", 1e-3, 0.3),
                                "momentum": ("uniform", 0.0, 0.9)}, 8),
                        init=0.0,
                        refine={"top": 2, "steps": 6, "learning_rate": 0.2})
    refined = result.refined
    curvature = 2.0 / stability(X_EDGE).max_learning_rate  # λmax
    rates, betas = refined.path["learning_rate"], refined.path["momentum"]
    assert (rates * curvature < limit_factor("momentum", betas)).all()
    assert (np.diff(refined.objective, axis=1) <= 0).all()
    assert (refined.objective[:, -1] < refined.objective[:, 0]).all()
    assert ((betas >= 0.0) & (betas <= 0.9)).all()  # kept within the ranges
