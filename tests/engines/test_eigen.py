import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxgd
from jaxgd import LinearParams, exact_trajectory, fit, grid_sweep, mse, sweep
from jaxgd.data.statistics import sufficient_statistics
from jaxgd.engines.eigen import eigen_basis, eigen_mse, from_eigen, to_device, to_eigen
from tests.conftest import well_conditioned


def _ridge(params, X, y, l2):
    w = np.asarray(params.weight, np.float64)
    residual = X @ w + float(params.bias) - y
    return np.mean(residual**2) + l2 * w @ w


def test_basis_diagonalizes_the_curvature():
    # Oracle: M = AᵀA/n + l2·diag(1, …, 1, 0) formed directly from A = [X, 1] in float64.
    X, y = well_conditioned(3, n=40, d=4)
    A = np.c_[X, np.ones(len(y))]
    M = A.T @ A / len(y) + 0.3 * np.diag([1.0] * 4 + [0.0])
    e = eigen_basis(sufficient_statistics(X, y), l2=0.3)
    np.testing.assert_allclose(e.basis @ np.diag(e.curvature) @ e.basis.T, M, atol=1e-12)
    np.testing.assert_allclose(e.basis.T @ e.basis, np.eye(5), atol=1e-12)
    assert (e.curvature >= 0).all()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), d=st.sampled_from([1, 3, 20]),
       l2=st.sampled_from([0.0, 0.5]))
def test_eigen_loss_is_the_ridge_mse(seed, d, l2):
    # float64 throughout: the two forms differ by rounding of O(d) terms of size ~|θ|²·λmax,
    # far below rtol 1e-9. d = 20 exercises the vector form, d ≤ 15 the scalar form.
    X, y = well_conditioned(seed % 1000, n=60, d=d)
    rng = np.random.default_rng(seed)
    params = LinearParams(rng.standard_normal(d), np.float64(rng.standard_normal()))
    with jax.enable_x64(True):
        e = to_device(eigen_basis(sufficient_statistics(X, y), l2), jnp.float64)
        p = jax.tree_util.tree_map(jnp.asarray, params)
        z = to_eigen(p, e)
        assert isinstance(z, tuple) == (d < 16)
        np.testing.assert_allclose(float(eigen_mse(z, e)), _ridge(params, X, y, l2),
                                   rtol=1e-9)
        back = from_eigen(z, e)
        np.testing.assert_allclose(back.weight, params.weight, atol=1e-12)
        np.testing.assert_allclose(back.bias, params.bias, atol=1e-12)


@pytest.mark.parametrize("l2", [0.0, 0.2])
def test_eigen_descent_follows_the_closed_form_trajectory(l2):
    # float64: the compiled loop in the eigenbasis against the closed-form history of plain
    # gradient descent (jaxgd.theory.trajectory, its own eigendecomposition of AᵀA): both exact
    # up to rounding of O(num_steps) float64 operations, so rtol 1e-10.
    X, y = well_conditioned(1, n=50, d=3)
    with jax.enable_x64(True):
        run = fit(X, y, learning_rate=0.1, num_steps=400, init=0.3, seed=4, l2=l2,
                  engine="eigen")
        start = jax.tree_util.tree_map(np.asarray, run.snapshots)
        start = LinearParams(start.weight[0], start.bias[0])
        exact = exact_trajectory(X, y, start, 0.1, 400, l2=l2)
        np.testing.assert_allclose(run.losses, exact.losses, rtol=1e-10)
        np.testing.assert_allclose(run.params.weight, exact.params.weight, rtol=1e-10)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov"])
def test_linear_optimizers_follow_the_same_path_in_the_eigenbasis(optimizer):
    # float64: a rotation commutes with updates that are linear in the gradients, so the
    # eigen engine's history equals the direct engine's (autodiff of the plain MSE) step for
    # step, with a cosine schedule too. Independent paths, float64: rtol 1e-9.
    X, y = well_conditioned(2, n=80, d=4)
    with jax.enable_x64(True):
        runs = [sweep(X, y, learning_rates=[0.01, 0.1], num_steps=300,
                      optimizer=jaxgd.Optimizer(optimizer, schedule="cosine_decay"),
                      seeds=[0, 1], l2=0.05, engine=engine)
                for engine in ("direct", "eigen")]
        np.testing.assert_allclose(runs[1].losses, runs[0].losses, rtol=1e-9)
        np.testing.assert_allclose(runs[1].params.weight, runs[0].params.weight, rtol=1e-8,
                                   atol=1e-12)
        np.testing.assert_array_equal(runs[1].converged_step, runs[0].converged_step)


def test_eigen_engine_refuses_what_it_cannot_do_exactly(problem):
    X, y = problem
    with pytest.raises(ValueError, match=r"engine='eigen' is exact only for.*'adam'"):
        fit(X, y, learning_rate=0.1, num_steps=3, optimizer="adam", engine="eigen")
    with pytest.raises(ValueError, match="l2 varies across the runs"):
        grid_sweep(X, y, grid={"learning_rate": [0.1], "l2": [0.0, 1.0]}, num_steps=3,
                   engine="eigen")
    with pytest.raises(ValueError, match="mini-batch SGD needs engine='direct'"):
        fit(X, y, learning_rate=0.1, batches=jaxgd.MiniBatches(batch_size=8, epochs=1),
            engine="eigen")
    # auto falls back to the gram engine where the eigen engine would not be exact
    assert fit(X, y, learning_rate=0.1, num_steps=3, optimizer="adam").engine == "gram"
    assert grid_sweep(X, y, grid={"learning_rate": [0.1], "l2": [0.0, 1.0]},
                      num_steps=3).engine == "gram"
    assert fit(X, y, learning_rate=0.1, num_steps=3, optimizer="momentum").engine == "eigen"


def test_eigen_handles_collinear_features():
    # A duplicated column makes AᵀA singular: the flat direction gets no gradient in either
    # form, and the eigen engine matches the direct one (float32, rtol 1e-5).
    X, y = well_conditioned(5, n=50, d=2)
    X = np.c_[X, X[:, :1]]
    runs = [fit(X, y, learning_rate=0.1, num_steps=500, engine=e) for e in ("direct", "eigen")]
    np.testing.assert_allclose(runs[1].losses, runs[0].losses, rtol=1e-5)
    np.testing.assert_allclose(runs[1].params.weight, runs[0].params.weight, atol=1e-4)
    assert float(mse(runs[1].params, X, y)) == pytest.approx(float(runs[1].final_loss),
                                                             rel=1e-5)
