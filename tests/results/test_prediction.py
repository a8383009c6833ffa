"""``result.predict(X)``: ``fit``'s predictions and every run's of ``sweep`` and
``grid_sweep``, in the units of the data, under ``jit``, and the checks on ``X``."""

import jax
import numpy as np
import pytest

import jaxgd
from tests.conftest import well_conditioned


@pytest.fixture
def data():
    X, y = well_conditioned(0, n=64, d=3)
    X_new = np.random.default_rng(1).standard_normal((5, 3)) * 3.0  # rows never trained on
    return X, y, X_new


def exact(params, X):
    """``X @ weight + bias`` of every run, in float64 on the host."""
    weight = np.asarray(params.weight, np.float64)
    bias = np.asarray(params.bias, np.float64)
    return np.einsum("nd,...d->...n", X, weight) + bias[..., None]


def bound(params, X):
    """Rounding bound of one prediction in the parameters' dtype: X rounded to it (one unit
    roundoff u per entry), a d-term dot product (γ_d ≤ d·u of Σ|x_i·w_i|) and the bias's
    addition (u): at most (d + 2)·u·(|X|·|w| + |b|); (d + 2)·eps is twice that."""
    eps = np.finfo(np.asarray(params.weight).dtype).eps
    weight = np.abs(np.asarray(params.weight, np.float64))
    size = np.einsum("nd,...d->...n", np.abs(X), weight) + np.abs(
        np.asarray(params.bias, np.float64))[..., None]
    return (X.shape[1] + 2) * eps * size


def test_fit_predicts_x_at_weight_plus_bias(x64, data):
    X, y, X_new = data
    result = jaxgd.fit(X, y, learning_rate=0.3, num_steps=50)
    predictions = result.predict(X_new)
    assert predictions.shape == (5,)
    assert predictions.dtype == (np.float64 if x64 else np.float32)
    error = np.abs(np.asarray(predictions, np.float64) - exact(result.params, X_new))
    assert (error <= bound(result.params, X_new)).all()


def test_sweep_predicts_one_row_per_run(x64, data):
    X, y, X_new = data
    result = jaxgd.sweep(X, y, learning_rates=[0.01, 0.3], seeds=[0, 1], num_steps=20)
    predictions = result.predict(X_new)
    assert predictions.shape == (2, 2, 5)
    error = np.abs(np.asarray(predictions, np.float64) - exact(result.params, X_new))
    assert (error <= bound(result.params, X_new)).all()
    for index in np.ndindex(2, 2):  # row i, j is run (i, j)'s own prediction
        one = result.run(index)
        np.testing.assert_allclose(predictions[index], one.predict(X_new), rtol=0,
                                   atol=bound(one.params, X_new).max())
    # Learning rate 0.01 is far from the optimum after 20 steps: runs predict differently.
    assert np.abs(predictions[0] - predictions[1]).min() > 1e-2


def test_grid_sweep_predicts_along_every_axis(x64, data):
    X, y, X_new = data
    result = jaxgd.grid_sweep(X, y, grid={"l2": [0.0, 1.0], "learning_rate": [0.1, 0.3, 0.4]},
                              num_steps=20)
    predictions = result.predict(X_new)
    assert predictions.shape == (2, 3, 5)
    error = np.abs(np.asarray(predictions, np.float64) - exact(result.params, X_new))
    assert (error <= bound(result.params, X_new)).all()


def test_predictions_are_in_the_units_of_the_data(data):
    # Trained on standardized features, given the Standardizer: predicts from raw rows.
    X, y, X_new = data
    raw, raw_new = (a * np.array([1.0, 100.0, 0.01]) + np.array([5.0, -300.0, 2.0])
                    for a in (X, X_new))
    scaler = jaxgd.Standardizer.fit(raw)
    result = jaxgd.fit(scaler.transform(raw), y, learning_rate=0.3, num_steps=100)
    predictions = result.predict(raw_new, standardizer=scaler)
    np.testing.assert_array_equal(predictions, result.predict(scaler.transform(raw_new)))
    design = np.column_stack([raw, np.ones(len(raw))])
    optimum = np.linalg.lstsq(design, y, rcond=None)[0]
    # 100 steps at 0.3 leave no optimization error on these standardized features (see
    # tests/package/test_sklearn.py): what is left is float32 rounding, here of inputs that
    # reach |x|·|w| ≈ 10 after standardizing: 64 ulps of 10.
    atol = 64 * np.finfo(np.float32).eps * 10.0
    np.testing.assert_allclose(predictions, raw_new @ optimum[:-1] + optimum[-1], rtol=0,
                               atol=atol)


def test_predict_works_under_jit_and_from_a_loaded_result(data, tmp_path):
    X, y, X_new = data
    result = jaxgd.fit(X, y, learning_rate=0.3, num_steps=20)
    eager = result.predict(X_new)
    atol = bound(result.params, X_new).max()
    np.testing.assert_allclose(jax.jit(lambda r, X: r.predict(X))(result, X_new), eager,
                               rtol=0, atol=atol)
    np.testing.assert_allclose(jax.jit(result.predict)(X_new), eager, rtol=0, atol=atol)
    with pytest.raises(ValueError, match="X has 2 features"):  # at trace time
        jax.jit(result.predict)(X_new[:, :2])
    loaded = jaxgd.load(result.save(tmp_path / "run"))
    np.testing.assert_array_equal(loaded.predict(X_new), eager)


def test_bad_x_is_refused_by_name(data):
    X, y, _ = data
    result = jaxgd.sweep(X, y, learning_rates=[0.1, 0.3], num_steps=5)
    with pytest.raises(ValueError, match=r"X has 4 features \(columns\), but the model was "
                                         r"fitted on 3: give the same features"):
        result.predict(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"X must be 2-D .* got shape \(3,\): one sample "
                                         r"is X.reshape\(1, -1\)"):
        result.predict(np.ones(3))
    with pytest.raises(ValueError, match="X has NaN or infinite values in rows 1"):
        result.predict(np.array([[1.0, 2.0, 3.0], [np.nan, 0.0, 0.0]]))
    with pytest.raises(TypeError, match="X must hold numbers"):
        result.predict(np.array([["a", "b", "c"]]))


def test_tables_must_have_the_fitted_columns(data):
    pd = pytest.importorskip("pandas")
    X, y, X_new = data
    names = ["weight", "power", "year"]
    result = jaxgd.fit(pd.DataFrame(X, columns=names), y, learning_rate=0.3, num_steps=20)
    frame = pd.DataFrame(X_new, columns=names)
    np.testing.assert_array_equal(result.predict(frame), result.predict(X_new))
    with pytest.raises(ValueError, match=r"X has columns \('power', 'weight', 'year'\), the "
                                         r"model was fitted on \('weight', 'power', 'year'\)"):
        result.predict(frame[["power", "weight", "year"]])
    with pytest.raises(ValueError, match=r"X has columns \('weight', 'power'\), the model"):
        result.predict(frame[["weight", "power"]])
    with pytest.raises(ValueError, match=r"X has 2 features \(columns\), but the model was "
                                         r"fitted on 3 \('weight', 'power', 'year'\)"):
        result.predict(X_new[:, :2])  # an array has no names: its width is checked
