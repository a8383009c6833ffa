"""``jaxgd.sklearn.GDRegressor``: scikit-learn's own estimator checks, agreement with
``LinearRegression`` and ``Ridge``, a ``Pipeline`` and ``GridSearchCV``; and scikit-learn
staying an optional extra that ``import jaxgd`` never loads."""

import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest

from tests.conftest import well_conditioned

sklearn = pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LinearRegression, Ridge  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from jaxgd.sklearn import GDRegressor  # noqa: E402

ROOT = Path(__file__).parents[2]

# Every check scikit-learn generates for this estimator runs, and none is marked as an
# expected failure. Those that do not apply are not generated (the sample_weight checks:
# fit takes none) or skip themselves (check_array_api_input, unless SCIPY_ARRAY_API=1).
# 100 steps keep the ~50 fits quick; check_regressors_train (R² > 0.5 on standardized data)
# passes with them.
@parametrize_with_checks([GDRegressor(num_steps=100)])
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the checks' tiny data sets
        warnings.simplefilter("ignore", RuntimeWarning)  # and their rank-deficient ones
        check(estimator)


@pytest.fixture
def standardized():
    X, y = well_conditioned(0, n=64, d=3)
    return StandardScaler().fit_transform(X), y


def tolerance(y) -> float:
    """How far gradient descent's predictions may be from the least-squares ones here.

    On standardized features the MSE Hessian 2·cov(X) has eigenvalues in [1.7, 2.4] (2 for
    the bias), so with learning rate 0.3 every step shrinks the distance to the optimum by a
    factor max|1 − 0.3·λ| < 0.5, and 100 steps leave less than 1e-30 of it: what is left is
    the rounding of the float iteration's fixed point, a few ulps (condition number 1.4). 16
    ulps of the largest target: 6e-6 in float32, 1.2e-14 in float64 (measured: 1.5e-7 and
    1.3e-15).
    """
    return 16 * float(np.finfo(jax.numpy.result_type(float)).eps) * float(np.abs(y).max())


def test_predictions_agree_with_linear_regression(x64, standardized):
    X, y = standardized
    model = GDRegressor(learning_rate=0.3, num_steps=100).fit(X, y)
    exact = LinearRegression().fit(X, y)
    assert model.coef_.dtype == (np.float64 if x64 else np.float32)
    assert model.converged_ and not model.diverged_ and model.n_iter_ == 100
    np.testing.assert_allclose(model.predict(X), exact.predict(X), rtol=0, atol=tolerance(y))
    assert model.score(X, y) == pytest.approx(exact.score(X, y), abs=1e-5 if not x64 else 1e-12)


def test_l2_is_ridge_with_alpha_n_times_l2(x64, standardized):
    # jaxgd's loss is mean(r²) + l2·‖w‖², Ridge's Σ r² + alpha·‖w‖²: n times the former.
    X, y = standardized
    model = GDRegressor(learning_rate=0.3, num_steps=100, l2=0.1).fit(X, y)
    exact = Ridge(alpha=len(y) * 0.1).fit(X, y)
    np.testing.assert_allclose(model.predict(X), exact.predict(X), rtol=0, atol=tolerance(y))
    assert not np.allclose(model.coef_, LinearRegression().fit(X, y).coef_, atol=1e-3)


def test_predict_is_the_fit_results_predict(x64, standardized):
    X, y = standardized
    model = GDRegressor(learning_rate=0.3, num_steps=100).fit(X, y)
    # NumPy on the host against JAX at full precision: the same products, rounded apart.
    np.testing.assert_allclose(model.predict(X), np.asarray(model.result_.predict(X)),
                               rtol=0, atol=tolerance(y))
    assert model.intercept_ == float(model.result_.params.bias)
    assert model.loss_curve_.shape == (100,)


@pytest.mark.filterwarnings("ignore:the features are badly conditioned:RuntimeWarning")
def test_pipeline_with_standard_scaler_on_raw_features(standardized):
    X, y = standardized
    raw = X * np.array([1.0, 100.0, 0.01]) + np.array([5.0, -300.0, 2.0])
    pipeline = make_pipeline(StandardScaler(), GDRegressor(learning_rate=0.3, num_steps=100))
    pipeline.fit(raw, y)
    exact = LinearRegression().fit(raw, y)
    # StandardScaler undoes the scales up to float64 rounding: the same problem as above.
    np.testing.assert_allclose(pipeline.predict(raw), exact.predict(raw), rtol=0,
                               atol=tolerance(y))
    # Without the scaler the 100² scale makes learning rate 0.3 unstable: said, not hidden.
    with pytest.warns(ConvergenceWarning, match="diverged at step .* standardize"):
        alone = GDRegressor(learning_rate=0.3, num_steps=100).fit(raw, y)
    assert alone.diverged_ and not alone.converged_


def test_grid_search_over_the_learning_rate(standardized):
    X, y = standardized
    search = GridSearchCV(GDRegressor(num_steps=100),
                          {"learning_rate": [0.003, 0.3, 2.0]}, cv=KFold(3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search.fit(X, y)
    # 0.003 is too slow for 100 steps, 2.0 past the stability limit 2/λmax ≈ 0.84.
    said = " ".join(str(w.message) for w in caught if w.category is ConvergenceWarning)
    assert "did not converge in 100 steps (learning_rate=0.003)" in said
    assert "diverged at step" in said and "learning_rate=2.0" in said
    assert search.best_params_ == {"learning_rate": 0.3}
    scores = search.cv_results_["mean_test_score"]
    assert scores[1] > 0.9 and scores[1] > scores[0]
    assert not scores[2] > scores[1]  # a diverged run's R² is hugely negative, or NaN
    np.testing.assert_allclose(search.predict(X), LinearRegression().fit(X, y).predict(X),
                               rtol=0, atol=tolerance(y))


def test_not_converging_is_a_convergence_warning(standardized):
    X, y = standardized
    with pytest.warns(ConvergenceWarning, match="did not converge in 5 steps"):
        model = GDRegressor(learning_rate=0.01, num_steps=5).fit(X, y)
    assert not model.converged_ and not model.diverged_


def test_a_stalled_run_says_so_and_how_to_fix_it():
    # Raw Unix timestamps as targets (~1.7e9 s, float32 holds them to 128 s): float32 descent
    # freezes above the optimum in every engine (tests/core/test_verdicts.py). More steps or a
    # larger rate would not help, so the warning must not advise them.
    rng = np.random.default_rng(0)
    distance = rng.uniform(0, 2, 200)
    X, y = distance[:, None], 1.7e9 + 3600 * distance + 60 * rng.standard_normal(200)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = GDRegressor(learning_rate=0.3, num_steps=400, init_scale=0.0).fit(X, y)
    said = " ".join(str(w.message) for w in caught if w.category is ConvergenceWarning)
    assert bool(model.result_.stalled) and not model.converged_
    assert "stalled after 400 steps" in said and "centre the targets" in said
    assert "raise num_steps" not in said


def test_dataframes_keep_their_names(standardized):
    pd = pytest.importorskip("pandas")
    X, y = standardized
    frame = pd.DataFrame(X, columns=["weight", "power", "year"])
    model = GDRegressor(learning_rate=0.3, num_steps=100).fit(frame, pd.Series(y, name="mpg"))
    assert model.feature_names_in_.tolist() == ["weight", "power", "year"]
    assert model.result_.feature_names == ("weight", "power", "year")
    # A frame's columns reach BLAS in column-major order: float64 sums in another order.
    np.testing.assert_allclose(model.predict(frame), X @ model.coef_ + model.intercept_,
                               rtol=1e-13)
    with pytest.raises(ValueError, match="feature names"):
        model.predict(frame[["power", "weight", "year"]])


def test_fitted_estimator_pickles_and_predicts_the_same(standardized):
    X, y = standardized
    model = GDRegressor(learning_rate=0.3, num_steps=100).fit(X, y)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    assert again.result_.final_loss == model.result_.final_loss


def test_mini_batch_sgd_takes_its_steps_from_epochs(standardized):
    X, y = standardized
    model = GDRegressor(learning_rate=0.05, batch_size=16, epochs=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    assert model.n_iter_ == 3 * 4  # epochs × ceil(64 / 16)


def test_scikit_learn_is_optional():
    # import jaxgd loads no scikit-learn; without it, jaxgd.sklearn names the extra.
    script = "\n".join([
        "import sys, jaxgd",
        "assert not [m for m in sys.modules if m.split('.')[0] == 'sklearn'], 'loaded'",
        "sys.modules['sklearn'] = None  # as if it were not installed",
        "try:",
        "    import jaxgd.sklearn",
        "except ImportError as error:",
        "    print(error)",
    ])
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "optional 'sklearn' extra" in done.stdout
    assert 'pip install "jaxgd[sklearn]"' in done.stdout
