"""Tests for jaxgd.data.scaling: Standardizer and the maps between standardized and original
units."""

import doctest

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import jaxgd.data.scaling
from jaxgd.core.model import predict
from jaxgd.core.params import LinearParams
from jaxgd.data.scaling import Standardizer, standardize_params, unstandardize_params

EPS = np.finfo(np.float64).eps


def magnitudes(largest):
    """0 or |v| in [1e-6, largest]: far from underflow and overflow, where the relative
    error bounds below would not hold. Columns may still be constant or nearly so, which is
    why the tolerances grow with 1/scale."""
    return st.one_of(st.just(0.0), st.floats(1e-6, largest), st.floats(-largest, -1e-6))


values = magnitudes(1e3)
matrices = st.tuples(st.integers(1, 12), st.integers(1, 4)).flatmap(
    lambda shape: hnp.arrays(np.float64, shape, elements=values)
)


def test_fit_matches_numpy_population_moments():
    X = np.array([[1.0, 10.0, 5.0], [2.0, 20.0, 5.0], [6.0, 60.0, 5.0]])
    s = Standardizer.fit(X)
    np.testing.assert_allclose(s.mean, X.mean(axis=0))
    np.testing.assert_allclose(s.scale[:2], X[:, :2].std(axis=0, ddof=0))
    assert s.scale[2] == 1.0  # constant column: scale 1, as scikit-learn's StandardScaler
    Xs = s.transform(X)
    np.testing.assert_allclose(Xs.mean(axis=0), 0.0, atol=1e-15)
    np.testing.assert_allclose(Xs[:, :2].std(axis=0), 1.0, rtol=1e-15)
    assert (Xs[:, 2] == 0.0).all()


def test_constant_column_with_rounding_gets_scale_one():
    # mean(0.1, 0.1, 0.1) is not exactly 0.1, so np.std gives ~1e-17, not 0.
    s = Standardizer.fit(np.full((3, 1), 0.1))
    assert s.scale.tolist() == [1.0]


def test_fit_keeps_the_input_kind_and_float_dtype():
    s32 = Standardizer.fit(np.ones((3, 2), dtype=np.float32))
    assert isinstance(s32.mean, np.ndarray) and s32.mean.dtype == s32.scale.dtype == np.float32
    s_int = Standardizer.fit([[1, 2], [3, 4]])
    assert s_int.mean.dtype == np.float64 and s_int.mean.tolist() == [2.0, 3.0]
    s_jax = Standardizer.fit(jnp.array([[1.0], [3.0]]))
    assert isinstance(s_jax.mean, jax.Array) and s_jax.mean.dtype == jnp.result_type(float)
    s_jax_int = Standardizer.fit(jnp.array([[1], [3]]))
    assert s_jax_int.scale.dtype == jnp.result_type(float)
    assert s_jax_int.scale.tolist() == [1.0]


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.ones(3), r"X must be 2-D"),
        (np.ones((0, 2)), r"X has no rows"),
        (np.array([[1.0, np.inf], [2.0, 3.0]]), r"NaN or infinite values in columns \[1\]"),
    ],
)
def test_fit_rejects_bad_input(X, match):
    with pytest.raises(ValueError, match=match):
        Standardizer.fit(X)


def test_feature_count_mismatch_is_an_error_not_a_broadcast():
    s = Standardizer.fit(np.arange(6.0).reshape(3, 2))
    with pytest.raises(ValueError, match=r"X must have 2 features .* shape \(3, 1\)"):
        s.transform(np.ones((3, 1)))
    with pytest.raises(ValueError, match=r"Xs must have 2 features"):
        s.inverse_transform(np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"params.weight must have 2 features"):
        unstandardize_params(LinearParams(np.ones(1), np.array(0.0)), s)
    with pytest.raises(ValueError, match=r"params.weight must have 2 features"):
        standardize_params(LinearParams(np.ones(3), np.array(0.0)), s)


def test_works_inside_jit_and_as_a_pytree():
    X = jnp.array([[1.0, 2.0], [3.0, 5.0], [4.0, 11.0]])
    s = jax.jit(Standardizer.fit)(X)
    chex.assert_trees_all_close(s, Standardizer.fit(X), rtol=1e-6)  # float32 rounding
    Xs = jax.jit(lambda s, X: s.transform(X))(s, X)
    back = jax.jit(lambda s, Xs: s.inverse_transform(Xs))(s, Xs)
    chex.assert_trees_all_close(back, X, rtol=1e-5)  # float32: a few ulps of values ~10
    assert len(jax.tree_util.tree_leaves(s)) == 2


def test_batched_params_map_one_model_at_a_time():
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 3.0, size=(20, 3))
    s = Standardizer.fit(X)
    batch = LinearParams(rng.normal(size=(4, 2, 3)), rng.normal(size=(4, 2)))
    mapped = unstandardize_params(batch, s)
    assert mapped.weight.shape == (4, 2, 3) and mapped.bias.shape == (4, 2)
    for i in range(4):
        for j in range(2):
            one = unstandardize_params(LinearParams(batch.weight[i, j], batch.bias[i, j]), s)
            np.testing.assert_allclose(mapped.weight[i, j], one.weight, rtol=1e-15)
            np.testing.assert_allclose(mapped.bias[i, j], one.bias, rtol=1e-14)
    # The same through jax.vmap (float32 unless x64 is on, hence the looser tolerance).
    vmapped = jax.vmap(unstandardize_params, in_axes=(0, None))(
        jax.tree_util.tree_map(jnp.asarray, batch), jax.tree_util.tree_map(jnp.asarray, s)
    )
    chex.assert_trees_all_close(vmapped, mapped, rtol=1e-5, atol=1e-5)


@settings(deadline=None, max_examples=200)
@given(matrices)
def test_inverse_transform_undoes_transform(X):
    s = Standardizer.fit(X)
    back = s.inverse_transform(s.transform(X))
    # (x - m) / s * s + m: four roundings, each at most eps relative to |x - m| or |x|;
    # 8 eps (|x| + |m|) bounds them with room to spare.
    tol = 8 * EPS * (np.abs(X) + np.abs(s.mean))
    assert (np.abs(back - X) <= tol).all()


@settings(deadline=None, max_examples=200)
@given(
    matrices.flatmap(
        lambda X: st.tuples(
            st.just(X),
            hnp.arrays(np.float64, X.shape[1], elements=magnitudes(10.0)),
            magnitudes(10.0),
        )
    )
)
def test_unstandardized_params_predict_the_same(case):
    X, w, b = case
    s = Standardizer.fit(X)
    p_s = LinearParams(w, np.array(b))
    p = unstandardize_params(p_s, s)
    original = predict(p, X)
    standardized = predict(p_s, s.transform(X))
    # Both sides sum d + 1 terms of size up to |w_j| (|x_j| + |m_j|) / s_j; forward error of
    # such a sum is below (d + 2) eps times the sum of magnitudes; 16x for the extra roundings.
    d = X.shape[1]
    size = np.abs(b) + (np.abs(w) * (np.abs(X) + np.abs(s.mean)) / s.scale).sum(axis=1)
    assert (np.abs(original - standardized) <= 16 * (d + 2) * EPS * size).all()
    # standardize_params is the inverse map (same error scale, relative to the weights).
    round_trip = standardize_params(p, s)
    np.testing.assert_allclose(round_trip.weight, w, rtol=4 * EPS)
    bias_size = np.abs(b) + (np.abs(w) * np.abs(s.mean) / s.scale).sum()
    assert abs(round_trip.bias - b) <= 16 * (d + 2) * EPS * bias_size


def test_docstring_examples_run():
    result = doctest.testmod(jaxgd.data.scaling)
    assert result.attempted > 0 and result.failed == 0
