"""Held-out data: the validation loss in the loop, splits, k folds, selection and errors."""

import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import jaxgd
from jaxgd import LinearParams, fit, grid_sweep, stability, sweep
from jaxgd.api.settings import group
from jaxgd.data.statistics import remove, sufficient_statistics
from jaxgd.pipeline.holdout import (
    errors,
    fold_ids,
    held_out,
    split,
    validation_loss,
)
from tests.conftest import well_conditioned
from tests.ulps import assert_close_ulps

ENGINES = ("direct", "gram", "eigen")


def _mse64(weight, bias, X, y):
    residual = X @ np.asarray(weight, np.float64) + float(bias) - y
    return float(np.mean(residual * residual))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("x64", [False, True])
def test_logged_validation_losses_are_the_held_out_mse_of_the_logged_params(engine, x64):
    # Oracle: the float64 MSE on the held-out rows of the snapshot parameters, which are the
    # parameters before update t, as the history's entry at step t is.
    X, y = well_conditioned(1, n=48, d=4)
    X_val, y_val = well_conditioned(2, n=20, d=4)
    steps = (0, 6, 30)
    record = jaxgd.Record(log_every=3, snapshot_steps=steps)
    with jax.enable_x64(x64):
        r = fit(X, y, learning_rate=0.1, num_steps=30, engine=engine, record=record,
                validation=(X_val, y_val))
        assert r.validation_losses.dtype == (np.float64 if x64 else np.float32)
    assert r.validation_losses.shape == r.losses.shape
    got = np.asarray(r.validation_losses, np.float64)[[s // 3 for s in steps[:-1]]]
    want = [_mse64(r.snapshots.weight[i], r.snapshots.bias[i], X_val, y_val)
            for i in range(len(steps) - 1)]
    # float32: a few ulps of a loss of order 1 (the moment form adds d² products);
    # float64: the same, at float64's resolution.
    rtol = 1e-12 if x64 else 2e-6
    np.testing.assert_allclose(got, want, rtol=rtol)
    final = _mse64(r.params.weight, r.params.bias, X_val, y_val)
    np.testing.assert_allclose(float(r.final_validation_loss), final, rtol=rtol)
    if not x64:  # float32, where a change of program shows most
        _validation_does_not_change_the_training_history(r, X, y, engine, record)


def _validation_does_not_change_the_training_history(held, X, y, engine, record):
    plain = fit(X, y, learning_rate=0.1, num_steps=30, engine=engine, record=record)
    # The same steps in a program that computes the held-out loss too, which XLA may fuse
    # otherwise (bit for bit on some CPUs): compared in ulps of the first loss (the scale of
    # the terms whose rounding the loss carries), where a 1-ulp change of the learning rate
    # (a bias at every step) moves these 10 logged losses by at most 0.75 ulp (seen:
    # 0.25 direct and gram, 0.75 eigen; the two programs 0 apart): within 4.
    assert_close_ulps(held.losses, plain.losses, 4, floor=plain.losses[0])
    assert plain.validation_losses is None and plain.final_validation_loss is None
    assert held.validation_losses is not None


def test_validation_loss_is_differentiable_and_matches_finite_differences():
    X_val, y_val = well_conditioned(7, n=15, d=3)
    p = LinearParams(jnp.array([0.3, -0.2, 0.5]), jnp.array(0.1))
    with jax.enable_x64(True):
        for engine in ("direct", "gram"):
            held = held_out(X_val, y_val, engine, jnp.float64)
            p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), p)
            grad = jax.grad(validation_loss)(p64, held)
            eps = 1e-6
            for i in range(3):
                bump = np.zeros(3)
                bump[i] = eps
                up = validation_loss(p64._replace(weight=p64.weight + bump), held)
                down = validation_loss(p64._replace(weight=p64.weight - bump), held)
                np.testing.assert_allclose(grad.weight[i], (up - down) / (2 * eps), rtol=1e-6)


def test_a_learning_rate_s_hypergradient_on_the_validation_loss():
    # The validation loss of a run is differentiable in its learning rate (jit and grad).
    X, y = well_conditioned(8, n=30)
    val = well_conditioned(9, n=10)

    def held_loss(rate):
        return fit(X, y, learning_rate=rate, num_steps=5, engine="direct", validation=val,
                   stopping=jaxgd.Stopping(reference=False)).final_validation_loss

    grad = jax.grad(held_loss)(0.05)
    fd = (held_loss(0.05 + 1e-3) - held_loss(0.05 - 1e-3)) / 2e-3
    np.testing.assert_allclose(grad, fd, rtol=1e-2)  # float32 central difference


def test_split_is_seeded_and_disjoint():
    X, y = np.arange(40.0).reshape(20, 2), np.arange(20.0)
    a, b = split(X, y, 0.25, seed=3), split(X, y, 0.25, seed=3)
    for left, right in zip(a, b, strict=True):
        np.testing.assert_array_equal(left, right)
    assert a[2].shape == (5, 2) and a[0].shape == (15, 2)
    assert sorted(np.concatenate([a[1], a[3]]).tolist()) == y.tolist()
    assert not np.array_equal(split(X, y, 0.25, seed=4)[3], a[3])


@pytest.mark.parametrize("fraction, match", [
    (0.0, r"Holdout\.fraction must be a number in \(0, 1\)"),
    (1.0, r"Holdout\.fraction must be a number in \(0, 1\)"),
    (0.05, "each side needs at least 2"),
    (0.95, "each side needs at least 2"),
    ("a", r"Holdout\.fraction must be a number"),
])
def test_bad_fractions_are_refused_by_name(fraction, match):
    X, y = well_conditioned(0, n=20)
    with pytest.raises((ValueError, TypeError), match=match):
        fit(X, y, learning_rate=0.1, num_steps=3, validation=jaxgd.Holdout(fraction))


def test_bad_held_out_options_are_refused():
    X, y = well_conditioned(0, n=20)
    with pytest.raises(ValueError, match="X_val has 2 feature columns, X has 3"):
        fit(X, y, learning_rate=0.1, num_steps=3, validation=(np.ones((4, 2)), np.ones(4)))
    with pytest.raises(ValueError, match="validation: X_val has NaN"):
        fit(X, y, learning_rate=0.1, num_steps=3,
            validation=(np.full((4, 3), np.nan), np.ones(4)))
    with pytest.raises(ValueError, match="fit takes no KFolds"):  # one run per fold: a sweep's
        fit(X, y, learning_rate=0.1, num_steps=3, validation=jaxgd.KFolds(3))
    with pytest.raises(ValueError, match="each fold needs at least 2"):
        sweep(X, y, learning_rates=[0.1], num_steps=3, validation=jaxgd.KFolds(11))
    with pytest.raises(ValueError, match=r"KFolds\.k must be"):
        sweep(X, y, learning_rates=[0.1], num_steps=3, validation=jaxgd.KFolds(1))
    with pytest.raises(ValueError, match=r"made by validation=jaxgd\.KFolds\(k\)"):
        grid_sweep(X, y, grid={"fold": [0, 1]}, learning_rate=0.1, num_steps=3)


def test_fraction_equals_the_explicit_split():
    X, y = well_conditioned(10, n=30)
    X_tr, y_tr, X_val, y_val = split(X, y, 0.3, seed=5)
    a = fit(X, y, learning_rate=0.1, num_steps=20, validation=jaxgd.Holdout(0.3, seed=5))
    b = fit(X_tr, y_tr, learning_rate=0.1, num_steps=20, validation=(X_val, y_val))
    np.testing.assert_array_equal(a.losses, b.losses)
    np.testing.assert_array_equal(a.validation_losses, b.validation_losses)


def test_removing_a_block_gives_the_moments_of_the_rest():
    X, y = well_conditioned(11, n=25, d=4)
    keep = np.arange(25) % 5 != 2
    rest = remove(sufficient_statistics(X, y), sufficient_statistics(X[~keep], y[~keep]))
    want = sufficient_statistics(X[keep], y[keep])
    for got, expected in zip(rest, want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-13)


def test_folds_are_seeded_and_balanced():
    ids = fold_ids(23, 4, seed=1)
    assert np.bincount(ids).tolist() == [6, 6, 6, 5]
    np.testing.assert_array_equal(ids, fold_ids(23, 4, seed=1))
    assert not np.array_equal(ids, fold_ids(23, 4, seed=2))


@pytest.mark.parametrize("engine", ENGINES)
def test_each_fold_equals_a_fit_on_its_explicit_split(engine):
    X, y = well_conditioned(12, n=41, d=3)
    k = 4
    r = sweep(X, y, learning_rates=[0.05, 0.3], num_steps=400, validation=jaxgd.KFolds(k, seed=7),
              engine=engine)
    assert r.losses.shape == (2, k, 400) and r.folds.tolist() == list(range(k))
    ids = fold_ids(41, k, seed=7)
    for fold in range(k):
        train, held = ids != fold, ids == fold
        single = fit(X[train], y[train], learning_rate=0.3, num_steps=400, engine=engine,
                     validation=(X[held], y[held]))
        # Same program, other data layout (moments by removal, or weighted rows): float32
        # rounding of losses of order 0.01-1.
        np.testing.assert_allclose(r.losses[1, fold], single.losses, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(r.validation_losses[1, fold], single.validation_losses,
                                   rtol=1e-4, atol=1e-6)
        # Oracle: float64 least squares on the fold's training rows (converged runs).
        A = np.c_[X[train], np.ones(train.sum())]
        theta = np.linalg.lstsq(A, y[train], rcond=None)[0]
        np.testing.assert_allclose(r.params.weight[1, fold], theta[:-1], atol=2e-4)
        held_mse = _mse64(theta[:-1], theta[-1], X[held], y[held])
        np.testing.assert_allclose(float(r.final_validation_loss[1, fold]), held_mse,
                                   rtol=1e-4)
        assert np.isclose(r.optimal_loss[0, fold],
                          _mse64(theta[:-1], theta[-1], X[train], y[train]), rtol=1e-9)


def _fold_zero_holds_the_small_rows(n=30, k=3, l2=0.3):
    """One feature whose small values are dealt to fold 0: fold 0's training rows (all but
    those) have the largest curvature, so its limit lies below the full data's and the other
    folds'. Returns X, y, the fold ids, and the limits (full data, each fold's)."""
    ids = fold_ids(n, k)
    rng = np.random.default_rng(0)
    x = np.where(ids == 0, 0.2, 2.0) * rng.choice([-1.0, 1.0], n) \
        + 0.05 * rng.standard_normal(n)
    X, y = x[:, None], 3.0 * x + 1.0 + 0.1 * rng.standard_normal(n)
    limits = [stability(X[ids != f], l2=l2).max_learning_rate for f in range(k)]
    return X, y, ids, stability(X, l2=l2).max_learning_rate, limits


@pytest.mark.parametrize("engine", ENGINES)
def test_a_diverged_fold_s_held_out_numbers_are_nan(engine):
    # A rate below the full data's limit but above fold 0's (as on the diabetes data, issue
    # #22: 0.223 between 0.221 and 0.231): fold 0's run diverges. Its held-out numbers,
    # from parameters frozen at the blow-up, used to look valid and to average with the
    # other folds' into a plausible mean (7,249 against scikit-learn's 3,015).
    X, y, ids, full, limits = _fold_zero_holds_the_small_rows()
    assert limits[0] < full and limits[0] < min(limits[1:])
    rate = 1.01 * limits[0]
    assert rate < full
    r = sweep(X, y, learning_rates=[0.5 * rate, rate], num_steps=100, validation=jaxgd.KFolds(3),
              l2=0.3,
              engine=engine)
    # Above fold 0's own limit, its run is flagged as a fit on those rows is (the verdict
    # the full data would give a rate above theirs), the other folds not.
    train = ids != 0
    alone = fit(X[train], y[train], learning_rate=rate, num_steps=100, l2=0.3,
                engine=engine, validation=(X[~train], y[~train]))
    assert bool(alone.diverged)
    # The logged held-out losses are NaN after the divergence, finite before.
    after = np.asarray(alone.loss_steps) > int(alone.diverged_step)
    assert after.any() and np.isnan(alone.validation_losses[after]).all()
    assert np.isfinite(alone.validation_losses[0])
    assert r.diverged.tolist() == [[False] * 3, [True, False, False]]
    assert int(r.diverged_step[1, 0]) == int(alone.diverged_step)
    # Its held-out numbers say diverged: NaN, as its held-out history is after the blow-up.
    held = np.asarray(r.final_validation_loss)
    assert np.isnan(held[1, 0]) and np.isfinite(held[0]).all() and np.isfinite(held[1, 1:]).all()
    for metric in ("mse", "rmse", "mae"):
        value = r.errors["validation"][metric]
        assert np.isnan(value[1, 0]) and np.isfinite(np.delete(value.ravel(), 3)).all(), metric
        assert np.isnan(alone.errors["validation"][metric]), metric
        assert np.isnan(r.run((1, 0)).errors["validation"][metric]), metric
    np.testing.assert_allclose(r.errors["validation"]["mse"][0], held[0], rtol=1e-5)
    assert np.isnan(alone.final_validation_loss)
    assert np.isnan(held.mean(axis=1)[1])  # the mean over folds says so too
    assert r.best() == (0,)  # and the point stays out of the running


@pytest.mark.parametrize("early_exit", [{}, {"stop_at_convergence": True,
                                             "segment_steps": 10}])
def test_a_diverged_run_s_held_out_numbers_are_nan_with_a_split(early_exit):
    X, y = well_conditioned(5, n=30)
    r = sweep(X, y, learning_rates=[0.1, 5.0], num_steps=40, validation=jaxgd.Holdout(0.3),
              **group(early_exit))  # the old flat spellings, grouped here
    assert r.diverged.tolist() == [False, True]
    held = np.asarray(r.final_validation_loss)
    assert np.isfinite(held[0]) and np.isnan(held[1])
    for metric in ("mse", "rmse", "mae"):
        value = r.errors["validation"][metric]
        assert np.isfinite(value[0]) and np.isnan(value[1]), metric
        assert np.isfinite(r.errors["training"][metric]).all(), metric  # its own rows: kept
    one = fit(X, y, learning_rate=5.0, num_steps=40,
              stopping=jaxgd.Stopping(early_exit=bool(early_exit)),
              validation=jaxgd.Holdout(0.3))
    assert bool(one.diverged) and np.isnan(one.final_validation_loss)
    assert np.isnan(one.errors["validation"]["rmse"])
    assert r.best() == (0,)


def _few_rows_many_features():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 16))
    y = X @ (rng.normal(size=16) * 0.3) + rng.normal(size=24)
    return X, y


@pytest.mark.filterwarnings("ignore:the features are linearly dependent")
def test_best_by_validation_differs_from_best_by_training_on_a_ridge_grid():
    X, y = _few_rows_many_features()
    l2 = [0.0, 0.03, 0.1, 0.3, 1.0, 3.0]
    r = grid_sweep(X, y, grid={"l2": l2}, learning_rate=0.1, num_steps=2000,
                   validation=jaxgd.Holdout(0.4, seed=0))
    by_training, by_validation = r.best("training"), r.best()
    assert by_validation == r.best("validation")
    assert by_training == (0,)  # no penalty fits the training rows best
    assert by_validation != by_training  # a penalty generalizes better
    held = np.asarray(r.final_validation_loss)
    assert held[by_validation] == held.min()


@pytest.mark.filterwarnings("ignore:the features are linearly dependent")
def test_best_with_folds_is_by_the_mean_over_folds():
    X, y = _few_rows_many_features()
    r = grid_sweep(X, y, grid={"l2": [0.0, 0.3, 3.0]}, learning_rate=0.1, num_steps=500,
                   validation=jaxgd.KFolds(3))
    assert r.axes == ("l2", "fold")
    mean = np.asarray(r.final_validation_loss).mean(axis=1)
    assert r.best() == (int(np.argmin(mean)),)
    assert set(r.point(r.best())) == {"l2"}
    with pytest.raises(ValueError, match="by='validation' needs held-out data"):
        grid_sweep(X, y, grid={"l2": [0.0]}, learning_rate=0.1, num_steps=3).best(
            "validation")


def test_errors_report_rmse_and_mae_in_float64():
    X, y = well_conditioned(13, n=30)
    X_val, y_val = well_conditioned(14, n=12)
    r = sweep(X, y, learning_rates=[0.05, 0.2], num_steps=50, validation=(X_val, y_val))
    for side, (rows, targets) in {"training": (X, y), "validation": (X_val, y_val)}.items():
        e = r.errors[side]
        for i in range(2):
            residual = rows @ np.asarray(r.params.weight[i], np.float64) \
                + float(r.params.bias[i]) - targets
            assert np.isclose(e["mae"][i], np.abs(residual).mean(), rtol=1e-12)
            assert np.isclose(e["rmse"][i], np.sqrt((residual ** 2).mean()), rtol=1e-12)
    np.testing.assert_allclose(r.errors["validation"]["mse"], r.final_validation_loss,
                               rtol=1e-5)
    one = r.run(1)
    assert one.errors["validation"]["mae"] == r.errors["validation"]["mae"][1]
    e = errors(LinearParams(np.array([1.0]), np.array(0.0)), np.array([[1.0], [2.0]]),
               np.array([2.0, 4.0]))
    assert (float(e["mse"]), float(e["rmse"]), float(e["mae"])) == (2.5, np.sqrt(2.5), 1.5)


def test_errors_are_computed_when_first_read_from_the_data_as_given(monkeypatch):
    # A sweep must not wait for its program to compute errors nobody reads; reading them
    # later must still see the data of the call, not what the caller changed since.
    from jaxgd.pipeline import holdout
    calls = []
    real = holdout.errors
    monkeypatch.setattr(holdout, "errors", lambda *a, **k: calls.append(1) or real(*a, **k))
    X, y = well_conditioned(17, n=30)
    X_val, y_val = well_conditioned(18, n=12)
    r = sweep(X, y, learning_rates=[0.05, 0.2], num_steps=50, validation=(X_val, y_val))
    assert calls == []
    expected = [real(r.params, X, y)["mae"], real(r.params, X_val, y_val)["mae"]]
    X[:] = 0.0
    X_val[:] = 0.0
    np.testing.assert_array_equal(r.errors["training"]["mae"], expected[0])
    np.testing.assert_array_equal(r.errors["validation"]["mae"], expected[1])
    assert len(calls) == 2
    r.errors["training"]  # computed once
    assert len(calls) == 2
    # A pytree still: tree_map maps the computed values; pickling keeps them.
    halved = jax.tree_util.tree_map(lambda a: np.asarray(a) / 2, r)
    np.testing.assert_array_equal(halved.errors["training"]["mae"], expected[0] / 2)
    back = pickle.loads(pickle.dumps(r.errors))
    np.testing.assert_array_equal(back["validation"]["mae"], expected[1])


@pytest.mark.parametrize("run", [
    lambda X, y, held: fit(X, y, learning_rate=0.1, num_steps=30, validation=held),
    lambda X, y, held: sweep(X, y, learning_rates=[0.05, 0.1], num_steps=30, validation=held),
], ids=["fit", "sweep"])
def test_errors_do_not_follow_later_changes_to_the_caller_s_dataframes(run):
    # pandas hands out read-only views of a frame's own memory: a view is not a copy, and
    # the errors, read later (or saved), must be those of the data at the call.
    X, y = well_conditioned(28, n=30)
    X_val, y_val = well_conditioned(29, n=12)
    df, dv = _table(X), _table(X_val)
    ys, yv = pd.Series(y, name="t"), pd.Series(y_val, name="t")
    r = run(df, ys, (dv, yv))
    expected = {"training": errors(r.params, X, y), "validation": errors(r.params, X_val, y_val)}
    for frame in (df, dv):
        frame.iloc[:, :] = 0.0
    for series in (ys, yv):
        series.iloc[:] = 0.0
    assert float(np.abs(df.to_numpy()).max()) == float(np.abs(yv.to_numpy()).max()) == 0.0
    for side, metrics in expected.items():
        for metric, value in metrics.items():
            np.testing.assert_allclose(r.errors[side][metric], value, rtol=1e-12,
                                       err_msg=side)  # a frame's columns: X in F order


def test_errors_of_large_data_are_computed_in_the_call_without_a_copy(monkeypatch):
    # Past memo.MAX_BYTES a copy of X kept in every unread result would grow memory by the
    # data's size per result; there the errors are computed at once instead.
    from jaxgd.data import memo
    from jaxgd.pipeline import holdout
    calls = []
    real = holdout.errors
    monkeypatch.setattr(holdout, "errors", lambda *a, **k: calls.append(1) or real(*a, **k))
    n = memo.MAX_BYTES // (8 * 4) + 1  # 4 float64 columns (3 features and y) past the limit
    X, y = well_conditioned(19, n=n, d=3)
    r = fit(X, y, learning_rate=0.1, num_steps=5)
    assert len(calls) == 1
    np.testing.assert_allclose(r.errors["training"]["mse"], _mse64(r.params.weight,
                               r.params.bias, X, y), rtol=1e-12)


def test_mini_batch_runs_record_the_held_out_loss_of_their_params():
    X, y = well_conditioned(15, n=24)
    X_val, y_val = well_conditioned(16, n=10)
    r = fit(X, y, learning_rate=0.05, batches=jaxgd.MiniBatches(batch_size=8, epochs=3),
            record=jaxgd.Record(snapshot_steps=(0, 3, 9)), validation=(X_val, y_val))
    assert r.validation_losses.shape == r.losses.shape == (9,)
    for i, step in enumerate((0, 3)):  # the parameters before update `step`
        want = _mse64(r.snapshots.weight[i], r.snapshots.bias[i], X_val, y_val)
        np.testing.assert_allclose(float(r.validation_losses[step]), want, rtol=2e-6)
    final = _mse64(r.params.weight, r.params.bias, X_val, y_val)
    np.testing.assert_allclose(float(r.final_validation_loss), final, rtol=2e-6)


def _table(X, names=("a", "b", "c")):
    return pd.DataFrame(X, columns=list(names))


def test_validation_tables_must_have_x_s_columns_in_x_s_order():
    # Matched by position, X_val's columns in another order would be other features: the
    # hostile reproducer got a validation loss of 0.48 instead of ~0 on noiseless data.
    X, y = well_conditioned(20, n=40, noise=0.0)
    df = _table(X)
    train = (df[:30], y[:30])
    kw = dict(learning_rate=0.1, num_steps=30)
    with pytest.raises(ValueError, match=r"validation: X_val has columns \('c', 'b', 'a'\), "
                                         r"X has \('a', 'b', 'c'\)"):
        fit(*train, **kw, validation=(df[["c", "b", "a"]][30:], y[30:]))
    with pytest.raises(ValueError, match=r"X_val has columns \('x', 'y', 'z'\), X has"):
        fit(*train, **kw, validation=(df[30:].set_axis(["x", "y", "z"], axis=1), y[30:]))
    with pytest.raises(ValueError, match="X_val has columns"):  # sweeps share the check
        sweep(*train, learning_rates=[0.1], num_steps=3,
              validation=(df[["b", "a", "c"]][30:], y[30:]))
    # The same columns in order, or an unnamed array (positions are all there is): the
    # same numbers as plain arrays.
    plain = fit(X[:30], y[:30], **kw, validation=(X[30:], y[30:]))
    for X_val in (df[30:], X[30:]):
        named = fit(*train, **kw, validation=(X_val, y[30:]))
        np.testing.assert_array_equal(named.validation_losses, plain.validation_losses)


def test_standardizer_refuses_reordered_columns_with_the_same_message():
    from jaxgd import Standardizer

    df = _table(well_conditioned(21, n=6)[0])
    with pytest.raises(ValueError, match=r"X has columns \('c', 'b', 'a'\), the Standardizer "
                                         r"was fitted on \('a', 'b', 'c'\): select those"):
        Standardizer.fit(df).transform(df[["c", "b", "a"]])


def test_drawn_held_out_rows_take_lists_like_arrays():
    X, y = well_conditioned(22, n=30)
    kw = {"learning_rate": 0.1, "num_steps": 20, "validation": jaxgd.Holdout(0.3)}
    arrays, lists = fit(X, y, **kw), fit(X.tolist(), y.tolist(), **kw)
    np.testing.assert_array_equal(lists.validation_losses, arrays.validation_losses)
    np.testing.assert_array_equal(lists.errors["validation"]["mae"],
                                  arrays.errors["validation"]["mae"])
    folds = {"learning_rates": [0.1], "num_steps": 10, "validation": jaxgd.KFolds(3)}
    np.testing.assert_array_equal(sweep(X.tolist(), y.tolist(), **folds).final_validation_loss,
                                  sweep(X, y, **folds).final_validation_loss)


@pytest.mark.parametrize("held", [dict(k_folds=3), dict(validation_fraction=0.3)])
def test_drawn_held_out_rows_under_jit_name_tracing_as_the_cause(held):
    X, y = well_conditioned(23, n=30)
    run = jax.jit(lambda a, b: sweep(a, b, learning_rates=[0.1], num_steps=5,
                                     **group(held)).final_loss)
    with pytest.raises(ValueError, match=f"{next(iter(held))} draws its held-out rows on the "
                                         "host.*traced"):
        run(X, y)


@pytest.mark.parametrize("X_val, y_val, match", [
    (np.ones((5, 3)), np.ones(4), "validation: X_val has 5 rows but y_val has 4"),
    (np.ones(5), np.ones(5), r"validation: X_val must be 2-D .* with X_val\[:, None\]"),
    (np.ones((5, 3)), np.ones((5, 1)), "validation: y_val must be 1-D"),
    (np.ones((5, 3)), [1.0, 2.0, np.nan, 4.0, 5.0],
     "validation: y_val has NaN or infinite values in rows 2"),
    (np.ones((0, 3)), np.ones(0), "validation: the data are empty: X_val and y_val"),
    (np.ones((5, 3)), None, "validation: y_val is required"),
    (np.ones((5, 3)), ["a"] * 5, "validation: y_val must hold numbers"),
])
def test_bad_validation_pairs_name_x_val_and_y_val(X_val, y_val, match):
    X, y = well_conditioned(24, n=20)
    with pytest.raises((ValueError, TypeError), match=match):
        fit(X, y, learning_rate=0.1, num_steps=3, validation=(X_val, y_val))


def test_validation_of_another_width_is_refused_when_x_is_a_list():
    X, y = well_conditioned(25, n=20)
    with pytest.raises(ValueError, match="X_val has 2 feature columns, X has 3"):
        fit(X.tolist(), y.tolist(), learning_rate=0.1, num_steps=3,
            validation=(np.ones((4, 2)), np.ones(4)))


def _metric_types(errors):
    return {(side, metric): (type(value), np.ndim(value), np.asarray(value).dtype)
            for side, metrics in errors.items() if metrics is not None
            for metric, value in metrics.items()}


def test_every_error_metric_of_one_run_is_a_0d_float64_array(monkeypatch):
    from jaxgd.pipeline import holdout
    X, y = well_conditioned(27, n=30)
    held = (X[:6], y[:6])
    one = (np.ndarray, 0, np.dtype(np.float64))
    r = fit(X, y, learning_rate=0.1, num_steps=10, validation=held)
    assert set(_metric_types(r.errors).values()) == {one}
    assert len(_metric_types(r.errors)) == 6
    assert set(_metric_types(fit(X, y, learning_rate=0.1, num_steps=10).errors).values()) \
        == {one}
    s = sweep(X, y, learning_rates=[0.05, 0.1], num_steps=10, validation=held)
    assert set(_metric_types(s.errors).values()) == {(np.ndarray, 1, np.dtype(np.float64))}
    # One run of a sweep (or of its folds) is a run like fit's; still read when first read.
    calls = []
    real = holdout.errors
    monkeypatch.setattr(holdout, "errors", lambda *a, **k: calls.append(1) or real(*a, **k))
    lazy = sweep(X, y, learning_rates=[0.05, 0.1], num_steps=10, validation=held).run(1)
    assert calls == []
    assert set(_metric_types(lazy.errors).values()) == {one}
    assert float(lazy.errors["validation"]["rmse"]) == float(s.errors["validation"]["rmse"][1])
    folds = sweep(X, y, learning_rates=[0.1], num_steps=10, validation=jaxgd.KFolds(3)).run((0, 2))
    assert set(_metric_types(folds.errors).values()) == {one}
