"""Property-based: on random well-conditioned problems gradient descent finds least squares."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxgd import fit, solve, stability


# Seeded draws (derandomize), so that a run of the suite is repeatable. Noise 0 is an exact
# fit (L* = 0; 12 of the 20 draws), whose float32 loss may freeze at a few h², far above L*:
# converged where its parameters are the optimum's to float32's resolution (issue 22; a
# random exact-fit draw once made CI red, "stalled", so noise started at 1e-3). These draws,
# at the fastest rate, converge by the loss alone too; test_verdicts has the discriminating
# case.
@settings(max_examples=20, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**31 - 1),
    shape=st.sampled_from([(16, 1), (64, 3), (200, 5)]),
    noise=st.just(0.0) | st.floats(1e-3, 1.0),
)
def test_gradient_descent_reaches_least_squares(seed, shape, noise):
    # Well conditioned: standard-normal features (and at least 16 rows for d <= 5) give a
    # Hessian condition number of at most a few tens. At the fastest constant rate the error
    # shrinks by (κ-1)/(κ+1) per step; 2000 steps take it far below float32's resolution, so
    # weights must match the float64 optimum to 1e-3 (absolute, weights are O(1)) and the
    # loss to 1e-4 relative.
    rng = np.random.default_rng(seed)
    n, d = shape
    X = rng.standard_normal((n, d))
    y = X @ rng.standard_normal(d) + rng.standard_normal() + noise * rng.standard_normal(n)
    limits = stability(X)
    result = fit(X, y, learning_rate=limits.fastest_learning_rate, num_steps=2000,
                 seed=seed % 1000)
    best = solve(X, y)
    np.testing.assert_allclose(result.params.weight, best.params.weight, atol=1e-3)
    np.testing.assert_allclose(result.params.bias, best.params.bias, atol=1e-3)
    assert float(result.gap) <= 1e-4 * best.loss + 1e-5
    assert not bool(result.diverged) and bool(result.converged)
