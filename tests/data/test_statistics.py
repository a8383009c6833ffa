import jax
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxgd import LinearParams, mse
from jaxgd.data.statistics import accumulate, merge, sufficient_statistics
from jaxgd.engines.gram import gram_loss, quadratic


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 50), d=st.integers(1, 5))
def test_gram_loss_and_gradient_equal_the_direct_ones_in_float64(seed, n, d):
    # Same function, different algebra: in float64 they agree to rounding, ~1e-13 relative
    # for values of order (offset + scale)², hence rtol 1e-9 with a small atol near 0.
    rng = np.random.default_rng(seed)
    X = 3.0 + 2.0 * rng.standard_normal((n, d))  # an offset, as raw data have
    y = 10.0 + rng.standard_normal(n)
    params = LinearParams(rng.standard_normal(d), np.float64(rng.standard_normal()))
    with jax.enable_x64(True):
        stats = sufficient_statistics(X, y)
        direct, grads_direct = jax.value_and_grad(mse)(params, X, y)
        q = jax.tree_util.tree_map(jax.numpy.asarray, quadratic(stats))
        gram, grads_gram = jax.value_and_grad(gram_loss)(params, q)
        np.testing.assert_allclose(gram, direct, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(grads_gram.weight, grads_direct.weight, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(grads_gram.bias, grads_direct.bias, rtol=1e-9, atol=1e-9)


def test_streamed_blocks_give_the_moments_of_all_rows():
    rng = np.random.default_rng(0)
    X, y = 1e3 + rng.standard_normal((1000, 3)), rng.standard_normal(1000)
    whole = sufficient_statistics(X, y)
    blocks = accumulate((X[i : i + 97], y[i : i + 97]) for i in range(0, 1000, 97))
    for a, b in zip(whole, blocks, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    pair = merge(sufficient_statistics(X[:1], y[:1]), sufficient_statistics(X[1:], y[1:]))
    np.testing.assert_allclose(pair.cov_xx, np.cov(X.T, bias=True), rtol=1e-10)


def test_gram_loss_is_never_negative_near_an_exact_fit():
    import jax.numpy as jnp

    from jaxgd import fit

    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 5))
    y = X @ rng.standard_normal(5) + 50.0  # exact fit, large mean: float32 cancellation
    result = fit(X, y, learning_rate=0.3, num_steps=500, engine="gram")
    assert float(jnp.min(result.losses)) >= 0.0 and float(result.final_loss) >= 0.0
    assert bool(result.converged)
