
import jax
import numpy as np
import pytest

from jaxgd import fit, stability, sweep
from tests.conftest import COMPILE_EVENT, compiles, well_conditioned
from tests.ulps import assert_close_ulps


def test_grid_axes_come_first_and_steps_last(problem):
    X, y = problem
    plain = sweep(X, y, learning_rates=[0.01, 0.1, 0.2], num_steps=40)
    assert plain.losses.shape == (3, 40) and plain.params.weight.shape == (3, 3)
    assert plain.snapshots.weight.shape == (3, 3, 3) and plain.snapshot_steps.shape == (3,)
    assert plain.seeds is None
    seeded = sweep(X, y, learning_rates=[0.01, 0.1, 0.2], num_steps=40, seeds=[0, 1])
    assert seeded.losses.shape == (3, 2, 40) and seeded.final_loss.shape == (3, 2)
    assert seeded.params.bias.shape == (3, 2)


def test_each_member_equals_the_matching_fit(problem):
    # Same traced program per member; vmap may reorder float32 sums in X @ w, so members
    # agree with fit to a few ulps of float32 rather than bit for bit. The flat-loss test is a
    # sharp threshold, so such ulps may move the detected convergence by one step. The gram
    # engine's loss is a difference of O(var y) terms (var y ~ 3 here): atol 1e-6.
    X, y = problem
    rates, seeds = [0.01, 0.15, 0.4], [3, 5]
    grid = sweep(X, y, learning_rates=rates, num_steps=60, seeds=seeds)
    for i, rate in enumerate(rates):
        for j, seed in enumerate(seeds):
            single = fit(X, y, learning_rate=rate, num_steps=60, seed=seed)
            member = grid.run((i, j))
            np.testing.assert_allclose(member.losses, single.losses, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(member.params.weight, single.params.weight, rtol=1e-5,
                                       atol=1e-6)
            assert abs(int(member.converged_step) - int(single.converged_step)) <= 1


def test_new_learning_rate_values_do_not_recompile():
    X, y = well_conditioned(1, n=37)  # a shape no other test compiles
    with compiles() as first:
        sweep(X, y, learning_rates=[0.1, 0.2], num_steps=17)
    assert COMPILE_EVENT in first  # the listener hears the first sweep compile
    with compiles() as again:
        sweep(X, y, learning_rates=[0.05, 0.3], num_steps=17)
        sweep(X, y, learning_rates=[0.07, 0.01], num_steps=17, seed=4)
    assert again == []  # neither traced nor compiled again


def test_divergence_begins_at_two_over_the_largest_eigenvalue():
    X, y = well_conditioned(2, n=200)
    limit = stability(X).max_learning_rate
    result = sweep(X, y, learning_rates=[0.9 * limit, 0.98 * limit, 1.02 * limit, 1.1 * limit],
                   num_steps=3000)
    assert result.converged.tolist() == [True, True, False, False]
    assert result.diverged.tolist() == [False, False, True, True]
    assert np.all(result.gap[:2] < 1e-4)


def test_a_diverging_member_does_not_disturb_the_others(problem):
    X, y = problem
    calm = sweep(X, y, learning_rates=[0.05, 0.1], num_steps=50)
    mixed = sweep(X, y, learning_rates=[0.05, 0.1, 50.0], num_steps=50)
    # A NaN or inf in one member would spread to the others through a shared sum; what
    # remains is rounding: 3 runs vmapped are a program of another batch size, which XLA
    # may sum in another order, by what the CPU vectorizes. Even a 1-ulp change of the
    # learning rate (a bias at every step) moves these histories by only 10 ulps: within 64.
    assert_close_ulps(mixed.losses[:2], calm.losses, 64)
    assert mixed.diverged.tolist() == [False, False, True]
    assert mixed.best() == (1,)


def test_best_refuses_when_every_run_diverged(problem):
    X, y = problem
    with pytest.raises(ValueError, match="every run diverged"):
        sweep(X, y, learning_rates=[50.0, 80.0], num_steps=50).best()


def test_same_seeds_give_identical_arrays(problem):
    X, y = problem
    a = sweep(X, y, learning_rates=[0.1, 0.2], num_steps=30, seeds=[1, 2])
    b = sweep(X, y, learning_rates=[0.1, 0.2], num_steps=30, seeds=[1, 2])
    for left, right in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(left, right)
