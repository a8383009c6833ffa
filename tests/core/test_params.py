import jax
import jax.numpy as jnp
import numpy as np

from jaxgd import LinearParams, init_params, mse


def test_params_pass_through_jax_transformations():
    p = LinearParams(jnp.array([1.0, 2.0]), jnp.array(0.5))
    leaves, treedef = jax.tree_util.tree_flatten(p)
    assert len(leaves) == 2
    assert jax.tree_util.tree_unflatten(treedef, leaves) == p
    doubled = jax.jit(lambda q: jax.tree_util.tree_map(lambda a: 2 * a, q))(p)
    assert isinstance(doubled, LinearParams)
    np.testing.assert_array_equal(doubled.weight, [2.0, 4.0])
    batched = jax.vmap(lambda s: LinearParams(p.weight * s, p.bias * s))(jnp.arange(3.0))
    assert batched.weight.shape == (3, 2) and batched.bias.shape == (3,)
    grads = jax.grad(mse)(p, jnp.ones((4, 2)), jnp.zeros(4))
    assert isinstance(grads, LinearParams) and grads.weight.shape == (2,)


def test_init_is_random_near_zero_and_reproducible():
    a = init_params(jax.random.key(1), 5)
    b = init_params(jax.random.key(1), 5)
    c = init_params(jax.random.key(2), 5)
    assert a.weight.shape == (5,) and a.bias.shape == ()
    assert a.weight.dtype == jnp.float32
    np.testing.assert_array_equal(a.weight, b.weight)
    assert not np.array_equal(a.weight, c.weight)
    assert 0 < np.abs(a.weight).max() < 0.1  # scale 0.01: five draws stay well under 10 sigma


def test_scale_zero_starts_from_positive_zeros():
    p = jax.jit(init_params, static_argnums=1)(jax.random.key(0), 4, 0.0)
    np.testing.assert_array_equal(p.weight, np.zeros(4))
    assert not np.signbit(p.weight).any() and not np.signbit(p.bias)


def test_init_in_float64_under_x64():
    with jax.enable_x64(True):
        assert init_params(jax.random.key(0), 2).weight.dtype == jnp.float64


def test_the_draw_is_jax_random_normal_bit_for_bit():
    # init_params hashes with a straight-line Threefry (it compiles ~0.25 s faster on a CPU
    # than JAX's rolled loop); oracle: jax.random.normal itself on the same keys, under vmap
    # and jit as a sweep draws, for sizes odd and even; other keys go to JAX as they are.
    seeds = jnp.arange(2000, dtype=jnp.uint32)
    for n in (1, 2, 7, 8, 33):
        def ours(s, n=n):
            p = init_params(jax.random.key(s), n - 1, 1.0)
            return jnp.append(p.weight, p.bias)

        def theirs(s, n=n):
            return jax.random.normal(jax.random.key(s), (n,), jnp.float32)

        got, want = jax.jit(jax.vmap(ours))(seeds), jax.vmap(theirs)(seeds)
        assert np.asarray(got).tobytes() == np.asarray(want).tobytes(), n
    for key in (jax.random.PRNGKey(3), jax.random.key(3, impl="rbg")):
        want = jax.random.normal(key, (4,), jnp.float32)
        got = init_params(key, 3, 1.0)
        np.testing.assert_array_equal(jnp.append(got.weight, got.bias), want)
