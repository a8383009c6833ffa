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


def _dot_precisions(fn, *args):
    """The precision of every dot_general in the jaxpr of ``jax.grad(fn)``."""
    jaxpr = jax.make_jaxpr(jax.grad(fn))(*args).jaxpr
    return [eqn.params["precision"] for eqn in jaxpr.eqns if eqn.primitive.name == "dot_general"]


def test_every_loss_product_asks_for_full_precision():
    # JAX's default lets a GPU compute float32 products in TF32 (and a TPU in bfloat16), which
    # moves loss histories in the fourth digit. The loss functions must ask for HIGHEST; this is
    # checked on the program itself, since a CPU computes full float32 either way.
    from jaxgd.core.minibatch import Batch, batch_mse
    from jaxgd.data.statistics import sufficient_statistics
    from jaxgd.engines.gram import gram_loss, prepare

    p = LinearParams(jnp.ones(3), jnp.array(0.0))
    X, y = jnp.ones((4, 3)), jnp.arange(4.0)
    batch = Batch(rows=jnp.arange(2), real=jnp.ones(2, bool))
    stats = prepare(sufficient_statistics(np.ones((4, 3)), np.arange(4.0)))
    highest = (jax.lax.Precision.HIGHEST, jax.lax.Precision.HIGHEST)
    for fn, args in [(mse, (p, X, y)), (gram_loss, (p, stats)),
                     (lambda q: batch_mse(q, batch, X, y, True), (p,))]:
        precisions = _dot_precisions(fn, *args)
        assert precisions and all(pr == highest for pr in precisions), (fn, precisions)
