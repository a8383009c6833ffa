import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxgd import LinearParams, mse, predict


def test_predict_is_x_times_weight_plus_bias():
    p = LinearParams(jnp.array([2.0, -1.0]), jnp.array(0.5))
    X = jnp.array([[1.0, 1.0], [0.0, 3.0]])
    np.testing.assert_allclose(predict(p, X), [1.5, -2.5])
    np.testing.assert_allclose(mse(p, X, jnp.array([1.5, 0.5])), 4.5)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.sampled_from([1, 5, 40]), d=st.sampled_from([1, 4]))
def test_autodiff_gradient_equals_analytic_gradient(seed, n, d):
    # Oracle: 2/n · Aᵀ(Aθ − y) with A = [X, 1], in float64 NumPy. Both sides are float64, so
    # they may differ only by rounding of O(n·d) terms: rtol 1e-10 is far above that.
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((n, d)), rng.standard_normal(n)
    w, b = rng.standard_normal(d), rng.standard_normal()
    A = np.c_[X, np.ones(n)]
    analytic = 2.0 / n * A.T @ (A @ np.append(w, b) - y)
    with jax.enable_x64(True):
        grads = jax.grad(mse)(LinearParams(jnp.asarray(w), jnp.asarray(b)), X, y)
        autodiff = np.append(np.asarray(grads.weight), np.asarray(grads.bias))
    np.testing.assert_allclose(autodiff, analytic, rtol=1e-10, atol=1e-12)
