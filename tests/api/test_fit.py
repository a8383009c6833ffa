import dataclasses

import jax
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd import Standardizer, datasets, fit, solve, unstandardize_params
from tests.conftest import well_conditioned


def test_auto_mpg_all_features_reach_least_squares_in_original_units():
    # Seven standardized features: condition number 137, 2/λmax = 0.217, fastest constant rate
    # 0.215. Plain GD at 0.2 for 3000 steps shrinks the slowest direction by (1 - 0.2·0.067)^3000
    # ~ 1e-18, far below float32's resolution; mapped back to pounds, cubic inches, etc., every
    # coefficient must sit within 1e-3 relative of the float64 optimum (seen: ~1e-5).
    data = datasets.auto_mpg()
    scaler = Standardizer.fit(data.X)
    result = fit(scaler.transform(data.X), data.y, learning_rate=0.2, num_steps=3000)
    learned = unstandardize_params(result.params, scaler)
    best = solve(data.X, data.y).params
    np.testing.assert_allclose(learned.weight, best.weight, rtol=1e-3)
    np.testing.assert_allclose(learned.bias, best.bias, rtol=1e-3)
    assert bool(result.converged) and not bool(result.diverged)


def test_result_fields_and_shapes(problem):
    X, y = problem
    result = fit(X, y, learning_rate=0.1, num_steps=50)
    assert result.losses.shape == (50,) and result.final_loss.shape == ()
    assert result.params.weight.shape == (3,) and result.params.bias.shape == ()
    assert result.snapshots.weight.shape == (3, 3)
    np.testing.assert_array_equal(result.snapshot_steps, [0, 7, 50])
    assert result.losses.dtype == np.float32
    assert float(result.gap) >= -1e-5
    assert fit(X, y, learning_rate=0.1, num_steps=5,
               stopping=jaxgd.Stopping(reference=False)).optimal_loss is None


def test_same_seed_gives_identical_arrays_and_other_seeds_differ(problem):
    X, y = problem
    a, b = (fit(X, y, learning_rate=0.1, num_steps=20, seed=7) for _ in range(2))
    for left, right in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(left, right)
    c = fit(X, y, learning_rate=0.1, num_steps=20, seed=8)
    assert not np.array_equal(a.losses, c.losses)


def test_other_optimizers_are_passed_as_constructors(problem):
    X, y = problem
    result = fit(X, y, learning_rate=0.05, num_steps=2000, optimizer=optax.adam)
    assert float(result.gap) < 1e-4
    with pytest.raises(TypeError, match=r"optimizer must be a name .* or a function that builds"):
        fit(X, y, learning_rate=0.1, num_steps=5, optimizer=optax.sgd(0.1))


def test_float64_everywhere_under_x64(problem):
    X, y = problem
    with jax.enable_x64(True):
        result = fit(X, y, learning_rate=0.3, num_steps=1000)
        assert result.losses.dtype == np.float64
        best = solve(X, y)
        np.testing.assert_allclose(result.params.weight, best.params.weight, rtol=1e-9)


def test_badly_conditioned_features_get_a_warning_that_suggests_standardizing():
    data = datasets.auto_mpg()  # raw units: pounds next to cylinders, condition number ~7e9
    with pytest.warns(RuntimeWarning, match=r"badly conditioned .* standardize them"):
        fit(data.X, data.y, learning_rate=1e-9, num_steps=3)
    scaled = Standardizer.fit(data.X).transform(data.X)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fit(scaled, data.y, learning_rate=0.1, num_steps=3)  # condition number ~137: quiet


def test_a_gap_below_the_optimum_by_float32_rounding_is_zero():
    # float32 rounds this run's final loss 8e-11 below the float64 optimum L* = 0.0126: a
    # rounding, not a loss below the least-squares minimum, so the gap is 0.
    result = fit(*well_conditioned(2), learning_rate=0.3, num_steps=3000)
    assert float(result.final_loss) - result.optimal_loss < 0  # the rounding is there
    assert result.gap.dtype == np.float64 and float(result.gap) == 0.0
    eps = np.finfo(np.float32).eps
    just_below = dataclasses.replace(
        result, final_loss=np.float32(result.optimal_loss * (1 - 8 * eps)))
    assert float(just_below.gap) == 0.0


def test_a_gap_below_the_optimum_by_more_than_rounding_stays_negative():
    # A loss further below L* than float32 resolves there is a bug: it must stay visible.
    result = fit(*well_conditioned(2), learning_rate=0.3, num_steps=3000)
    wrong = dataclasses.replace(result, final_loss=np.float32(result.optimal_loss * (1 - 1e-4)))
    assert float(wrong.gap) == pytest.approx(-1e-4 * result.optimal_loss, rel=1e-2)
    above = dataclasses.replace(result, final_loss=np.float32(result.optimal_loss * 1.01))
    assert float(above.gap) == pytest.approx(0.01 * result.optimal_loss, rel=1e-4)
