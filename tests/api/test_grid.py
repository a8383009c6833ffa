
import jax
import numpy as np
import pytest

import jaxgd
from jaxgd import LinearParams, exact_trajectory, fit, grid_sweep, solve, stability
from tests.conftest import COMPILE_EVENT, compiles, well_conditioned


def test_axes_follow_the_grid_and_points_equal_single_fits(problem):
    X, y = problem
    grid = {"b1": [0.5, 0.9], "learning_rate": [0.01, 0.05, 0.1], "seed": [0, 7]}
    result = grid_sweep(X, y, grid=grid, optimizer="adam", num_steps=40)
    assert result.axes == ("b1", "learning_rate", "seed")
    assert result.losses.shape == (2, 3, 2, 40) and result.params.weight.shape == (2, 3, 2, 3)
    for index in [(0, 0, 0), (1, 2, 1), (0, 1, 1)]:
        point = result.point(index)
        single = fit(X, y, learning_rate=point["learning_rate"], seed=point["seed"],
                     optimizer=jaxgd.Optimizer("adam", b1=point["b1"]), num_steps=40)
        # Same program per run; vmapped sums may differ by ulps (see test_sweep).
        np.testing.assert_allclose(result.losses[index], single.losses, rtol=1e-5, atol=1e-6)


def test_new_hyperparameter_values_do_not_recompile():
    X, y = well_conditioned(4, n=41)
    grid = {"momentum": [0.5, 0.9], "learning_rate": [0.01, 0.1, 0.2]}
    with compiles() as first:
        grid_sweep(X, y, grid=grid, optimizer="momentum", num_steps=11)
    assert COMPILE_EVENT in first  # the listener hears the first grid compile
    with compiles() as again:
        grid_sweep(X, y, grid={**grid, "momentum": [0.1, 0.2]}, optimizer="momentum",
                   num_steps=11)
    assert again == []  # neither traced nor compiled again


def test_ridge_reaches_the_closed_form_ridge_optimum(problem):
    X, y = problem
    l2 = [0.0, 0.1, 1.0]
    result = grid_sweep(X, y, grid={"l2": l2}, learning_rate=0.2, num_steps=2000)
    for i, strength in enumerate(l2):
        best = solve(X, y, l2=strength)
        np.testing.assert_allclose(result.params.weight[i], best.params.weight, atol=1e-4)
        # float32 gram loss: a few ulps of var(y) ~ 3, so atol 1e-6 on top of rtol 1e-5.
        np.testing.assert_allclose(result.final_loss[i], best.loss, rtol=1e-5, atol=1e-6)
    assert result.optimal_loss.shape == (3,) and np.all(np.abs(result.gap) < 1e-4)
    shrunk = np.linalg.norm(result.params.weight, axis=1)
    assert shrunk[0] > shrunk[1] > shrunk[2]  # ridge pulls the weight towards zero


def test_ridge_trajectory_and_stability_in_float64(cars):
    # The ridge objective is still a quadratic: the closed-form history holds with its
    # Hessian 2(AᵀA/n + l2·D); float64 throughout, rtol 1e-10 as in test_descent.
    X, y = cars
    limits = stability(X, l2=0.5)
    assert limits.max_learning_rate < stability(X).max_learning_rate
    with jax.enable_x64(True):
        run = fit(X, y, learning_rate=0.05, num_steps=300, l2=0.5, init=0.0)
        exact = exact_trajectory(X, y, LinearParams(np.zeros(1), 0.0), 0.05, 300, l2=0.5)
        np.testing.assert_allclose(run.losses, exact.losses, rtol=1e-10)


def test_grid_errors_are_named(problem):
    X, y = problem
    with pytest.raises(ValueError, match="give learning_rate, or put learning_rate in the grid"):
        grid_sweep(X, y, grid={"seed": [0]}, num_steps=3)
    with pytest.raises(ValueError, match="has no hyperparameter 'momentum'"):
        grid_sweep(X, y, grid={"momentum": [0.9]}, learning_rate=0.1, num_steps=3)
    with pytest.raises(ValueError, match=r"grid\['b1'\] is empty|b1"):
        grid_sweep(X, y, grid={"b1": []}, learning_rate=0.1, optimizer="adam", num_steps=3)
    with pytest.raises(ValueError, match="grid must map at least one"):
        grid_sweep(X, y, grid={}, learning_rate=0.1, num_steps=3)


class _FakeDevice:
    """A device as auto_chunk_size sees it: a platform and, maybe, memory statistics."""

    def __init__(self, platform, stats):
        self.platform, self._stats = platform, stats

    def memory_stats(self):
        if isinstance(self._stats, Exception):
            raise self._stats
        return self._stats


def test_auto_chunk_size_follows_the_free_memory_of_an_accelerator():
    from jaxgd.pipeline.sharding import CHUNK_BYTES, FREE_MEMORY_SHARE, auto_chunk_size

    per_run = 4 * (1000 + 4 * 8 + 8)  # history, snapshots + params, verdicts
    cpu = auto_chunk_size(1000, 7, 3, devices=[_FakeDevice("cpu", None)])
    assert cpu == CHUNK_BYTES // per_run == 64527
    gib = 2**30
    gpu = _FakeDevice("gpu", {"bytes_limit": 80 * gib, "bytes_in_use": 16 * gib})
    assert auto_chunk_size(1000, 7, 3, devices=[gpu]) == int(
        FREE_MEMORY_SHARE * 64 * gib) // per_run
    assert auto_chunk_size(1000, 7, 3, devices=[gpu]) >= 65536  # issue 11: one chunk
    # Two devices share the runs; the fuller one sets the size of each share.
    full = _FakeDevice("gpu", {"bytes_limit": 80 * gib, "bytes_in_use": 72 * gib})
    assert auto_chunk_size(1000, 7, 3, devices=[gpu, full]) == int(
        FREE_MEMORY_SHARE * 8 * gib) * 2 // per_run
    # Without statistics (or with an almost full device), today's CPU rule.
    for device in (_FakeDevice("tpu", None), _FakeDevice("gpu", {}),
                   _FakeDevice("gpu", RuntimeError("no stats")),
                   _FakeDevice("gpu", {"bytes_limit": gib, "bytes_in_use": gib})):
        assert auto_chunk_size(1000, 7, 3, devices=[device]) == cpu
