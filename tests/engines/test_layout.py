import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxgd import LinearParams, sweep
from jaxgd.data.statistics import sufficient_statistics
from jaxgd.engines import engine as engines
from jaxgd.engines.gram import gram_loss, quadratic
from jaxgd.engines.layout import flatten, from_scalars, to_scalars, unflatten, use_scalars
from tests.conftest import well_conditioned


def test_scalars_round_trip_with_leading_axes():
    theta = jnp.arange(24.0).reshape(2, 3, 4)  # e.g. runs × snapshots × (d + 1)
    scalars = to_scalars(theta)
    assert len(scalars) == 4 and scalars[0].shape == (2, 3)
    np.testing.assert_array_equal(from_scalars(scalars), theta)
    p = unflatten(theta)
    assert p.weight.shape == (2, 3, 3) and p.bias.shape == (2, 3)
    np.testing.assert_array_equal(flatten(p), theta)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), d=st.integers(1, 9))
def test_gram_loss_written_out_equals_the_matrix_form(seed, d):
    # float64: the same sums in another order, rtol 1e-10.
    X, y = well_conditioned(seed % 1000, n=30, d=d)
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal(d + 1)
    with jax.enable_x64(True):
        q = jax.tree_util.tree_map(jnp.asarray, quadratic(sufficient_statistics(X, y)))
        matrix = gram_loss(unflatten(jnp.asarray(theta)), q)
        written = gram_loss(to_scalars(jnp.asarray(theta)), q)
        np.testing.assert_allclose(float(written), float(matrix), rtol=1e-10)


def test_narrow_models_descend_as_scalars_and_wide_ones_as_arrays():
    params = lambda d: LinearParams(jnp.zeros(d), jnp.zeros(()))  # noqa: E731
    for engine in ("gram", "eigen"):
        for d, scalars in ((7, True), (15, True), (16, False)):
            X, y = well_conditioned(0, n=40, d=d)
            data = engines.prepare(engine, X, y)
            coords = engines.BY_NAME[engine].to_coordinates(data, params(d))
            assert use_scalars(d) == scalars
            assert (isinstance(coords, tuple) and not isinstance(coords, LinearParams)
                    and len(coords) == d + 1) == scalars


def test_both_layouts_give_the_direct_engines_histories():
    # float32 against the direct engine, as in test_engine: rtol 1e-5 (no absolute allowance:
    # the gram form adds squares to L*, so it is exact to the rounding of the loss itself).
    for d in (5, 24):
        X, y = well_conditioned(4, n=200, d=d)
        runs = {e: sweep(X, y, learning_rates=[0.05, 0.2], num_steps=300, optimizer="adam"
                         if e == "gram" else None, engine=e) for e in ("gram", "eigen")}
        for engine, run in runs.items():
            direct = sweep(X, y, learning_rates=[0.05, 0.2], num_steps=300,
                           optimizer="adam" if engine == "gram" else None, engine="direct")
            np.testing.assert_allclose(run.losses, direct.losses, rtol=1e-5)
