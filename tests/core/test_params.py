import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
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


def test_a_seed_gives_the_float32_start_under_x64():
    # The start is drawn (and scaled) in float32 and cast: float64 holds every float32
    # exactly, so the float64 start must equal the float32 one bit for bit; before, x64
    # drew float64 normals from the key and started elsewhere.
    starts = {(seed, d, scale): init_params(jax.random.key(seed), d, scale)
              for seed in (0, 1, 2**32 - 1) for d in (1, 7) for scale in (0.01, 0.3)}
    with jax.enable_x64(True):
        for (seed, d, scale), single in starts.items():
            double = init_params(jax.random.key(seed), d, scale)
            assert double.weight.dtype == jnp.float64
            np.testing.assert_array_equal(double.weight, np.asarray(single.weight, np.float64))
            np.testing.assert_array_equal(double.bias, np.asarray(single.bias, np.float64))


def test_fit_starts_where_it_starts_in_float32_under_x64():
    # Where a run turns its seed into a start (jaxgd.pipeline.training): the snapshot before update
    # 0 is the start, in the run's dtype.
    X, y = np.linspace(-1.0, 1.0, 8)[:, None], np.linspace(0.0, 3.0, 8)

    def start():
        r = jaxgd.fit(X, y, learning_rate=0.1, num_steps=2, seed=5, engine="direct",
                      stopping=jaxgd.Stopping(reference=False),
                      record=jaxgd.Record(snapshot_steps=[0]))
        return jax.tree_util.tree_map(lambda a: np.asarray(a)[0], r.snapshots)

    single = start()
    with jax.enable_x64(True):
        double = start()
    assert double.weight.dtype == np.float64 and single.weight.dtype == np.float32
    np.testing.assert_array_equal(double.weight, single.weight.astype(np.float64))
    np.testing.assert_array_equal(double.bias, single.bias.astype(np.float64))


def test_an_integer_seed_is_the_key_it_names():
    expected = init_params(jax.random.key(3), 4)
    for seed in (3, np.int64(3), np.uint32(3), jnp.array(3), jax.random.PRNGKey(3)):
        got = init_params(seed, 4)
        np.testing.assert_array_equal(got.weight, expected.weight)
        np.testing.assert_array_equal(got.bias, expected.bias)
    # A traced seed under the caller's vmap draws each seed's own start.
    batched = jax.vmap(lambda s: init_params(s, 4).weight)(jnp.arange(3))
    np.testing.assert_array_equal(batched[2], init_params(2, 4).weight)


@pytest.mark.parametrize("bad, error, match", [
    (0.5, TypeError, "integer seed, got float"),
    (True, TypeError, "integer seed, got bool"),
    ("0", TypeError, "integer seed, got str"),
    (jnp.zeros(3, jnp.int32), TypeError, "array of int32 with shape"),
    (-1, ValueError, "seed must be >= 0"),
    (2**32, ValueError, "seed must be < 2\\*\\*32"),
])
def test_anything_else_is_refused_by_name(bad, error, match):
    with pytest.raises(error, match=match):
        init_params(bad, 3)


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
