import numpy as np
import pytest

from jaxgd import LinearParams, exact_trajectory, solve, stability


def test_solve_matches_polyfit_on_the_course_cars(cars):
    X, y = cars
    slope, intercept = np.polyfit(X[:, 0], y, 1)  # an independent float64 fit
    best = solve(X, y)
    np.testing.assert_allclose(best.params.weight, [slope], rtol=1e-10)
    np.testing.assert_allclose(best.params.bias, intercept, rtol=1e-10)
    np.testing.assert_allclose(best.loss, np.mean((X[:, 0] * slope + intercept - y) ** 2))


def test_solve_recovers_noise_free_weights():
    rng = np.random.default_rng(3)
    X, weight, bias = rng.standard_normal((64, 3)), rng.standard_normal(3), 0.7
    y = X @ weight + bias
    best = solve(X, y)
    np.testing.assert_allclose(best.params.weight, weight, rtol=1e-10)
    np.testing.assert_allclose(best.params.bias, bias, rtol=1e-10)
    assert best.loss < 1e-20


def test_stability_of_a_known_hessian():
    # X = [-1, 1] standardized: A = [[-1, 1], [1, 1]], H = 2/n AᵀA = 2·I.
    s = stability(np.array([[-1.0], [1.0], [-1.0], [1.0]]))
    np.testing.assert_allclose(s.eigenvalues, [2.0, 2.0])
    assert s.max_learning_rate == pytest.approx(1.0)
    assert s.fastest_learning_rate == pytest.approx(0.5)
    assert s.condition_number == pytest.approx(1.0)


def test_stability_of_the_course_cars(cars):
    X, _ = cars
    A = np.c_[X, np.ones(len(X))]
    eig = np.linalg.eigvalsh(2 / len(X) * A.T @ A)
    s = stability(X)
    assert s.max_learning_rate == pytest.approx(2 / eig[-1])
    assert s.fastest_learning_rate == pytest.approx(2 / (eig[0] + eig[-1]))
    assert s.condition_number == pytest.approx(eig[-1] / eig[0])


def test_collinear_features_have_infinite_condition_number():
    x = np.arange(5.0)
    assert stability(np.c_[x, 2 * x]).condition_number == np.inf


@pytest.mark.parametrize("learning_rate", [0.01, 0.06, 0.0699, 0.075])
def test_exact_trajectory_matches_a_plain_numpy_loop(cars, learning_rate):
    # Independent oracle: the textbook update θ ← θ − η·2/n·Aᵀ(Aθ − y), float64.
    X, y = cars
    A = np.c_[X, np.ones(len(X))]
    theta, losses = np.array([0.1, -0.1]), []
    for _ in range(200):
        residual = A @ theta - y
        losses.append(np.mean(residual**2))
        theta = theta - learning_rate * 2 / len(y) * A.T @ residual
    start = LinearParams(np.array([0.1]), np.float64(-0.1))
    exact = exact_trajectory(X, y, start, learning_rate, 200)
    np.testing.assert_allclose(exact.losses, losses, rtol=1e-9)
    np.testing.assert_allclose(exact.params.weight, theta[:1], rtol=1e-9)


def test_exact_trajectory_of_a_divergent_rate_overflows_quietly(cars):
    X, y = cars
    exact = exact_trajectory(X, y, LinearParams(np.zeros(1), 0.0), 1.0, 500)
    assert np.isinf(exact.losses[-1]) and not np.isnan(exact.losses).any()


def test_fastest_rate_ignores_the_zero_eigenvalue_of_a_constant_column():
    rng = np.random.default_rng(0)
    X = np.c_[rng.standard_normal((50, 2)), np.zeros(50)]  # a standardized constant column
    limits = stability(X)
    positive = limits.eigenvalues[limits.eigenvalues > 1e-12]
    assert limits.condition_number == np.inf
    assert limits.fastest_learning_rate == pytest.approx(2 / (positive[-1] + positive[0]))
    assert limits.fastest_learning_rate < limits.max_learning_rate


def test_large_data_reference_from_moments_matches_the_svd_oracle():
    # From 50k rows fit's reference loss comes from float64 moments; it must agree with the
    # SVD least squares to float64 accuracy for a well-posed problem (rtol 1e-9).
    from jaxgd import fit

    rng = np.random.default_rng(4)
    X = 3 + rng.standard_normal((60_000, 4))
    y = X @ [1.0, -2.0, 0.5, 0.0] + 7 + rng.standard_normal(60_000)
    result = fit(X, y, learning_rate=0.01, num_steps=2)
    assert result.optimal_loss == pytest.approx(solve(X, y).loss, rel=1e-9)
    ridge = fit(X, y, learning_rate=0.01, num_steps=2, l2=0.3)
    assert ridge.optimal_loss == pytest.approx(solve(X, y, l2=0.3).loss, rel=1e-9)


def test_references_begun_on_a_worker_thread_equal_the_direct_ones(monkeypatch):
    # Data past memo.MAX_BYTES have their float64 pass overlapped with the device copy; the
    # numbers and the conditioning warning are those of the plain call.
    import jaxgd.data.memo
    from jaxgd.pipeline.preparation import references, start_references
    from tests.conftest import well_conditioned

    X, y = well_conditioned(3, n=200, d=3)
    X = np.column_stack([X, 2.0 * X[:, 1]])  # dependent: a warning to carry over
    with pytest.warns(RuntimeWarning, match="linearly dependent"):
        expected = references(X, y, np.array([0.0, 0.5]))
    monkeypatch.setattr(jaxgd.data.memo, "MAX_BYTES", 64)
    collect = start_references(X, y, np.array([0.0, 0.5]))
    with pytest.warns(RuntimeWarning, match="linearly dependent"):
        found = collect()
    for a, b in zip(found, expected, strict=True):
        np.testing.assert_array_equal(a, b)
