"""Held-out data with the rest of the library: early exit (segments and halving), drawn
points and refinement, the fused engines, saving and tables."""

import jax
import numpy as np
import pytest

import jaxgd
from jaxgd.api.settings import group
from jaxgd.engines import engine as engines
from jaxgd.pipeline.holdout import split
from jaxgd.results.tables import tidy_columns
from jaxgd.tuning import refinement
from tests.ulps import assert_close_ulps

pytestmark = pytest.mark.filterwarnings("ignore:the features are linearly dependent")

# Crawling (never converges in 256 steps) over fast to diverging (plain GD's stability limit
# on these data is about 0.45).
RATES = [1e-3, 0.05, 0.1, 0.2, 0.3, 1.5]
#: Segments and halving run other programs than the plain scan (segment scans, batches
#: re-packed to other sizes), which XLA may compile to sums in another order, by what the
#: CPU at hand vectorizes (seen: 41 of 1,536 eigen losses 1 to 3 ulps apart, held-out
#: losses up to 4, on CPUs with AVX2 and AVX-512). A difference made at every step piles
#: up along a history: a 1-ulp change of the learning rate (such a bias at every step)
#: moves these 256-step histories by up to 102 ulps. Hence 128 ulps, as test_segments
#: (at most 1.5e-5 relative in float32).
ULPS = 128


def _data(n=40, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.array([1.0, 2.0, 0.5])[:d]
    return X, X @ np.arange(1.0, d + 1) + 0.5 + 0.1 * rng.normal(size=n)


def _few_rows_many_features():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 16))
    return X, X @ (rng.normal(size=16) * 0.3) + rng.normal(size=24)


def _same(a, b, name):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, name
    assert_close_ulps(a, b, ULPS, err_msg=name)


@pytest.mark.parametrize("engine", ["eigen", "gram", "direct"])
def test_segments_carry_and_pad_the_held_out_history(engine):
    X, y = _data()
    run = lambda steps: jaxgd.sweep(X, y, learning_rates=RATES, num_steps=256,  # noqa: E731
                                    stopping=jaxgd.Stopping(early_exit=True, segment_steps=steps),
                                    validation=jaxgd.Holdout(0.25), engine=engine)
    segmented, plain = run(32), run(256)
    # As test_segments: within ULPS, the eigen engine's training losses too (bit for bit
    # on some CPUs only). The convergence steps exactly: no run's loss here flattens out
    # near the tolerance at the step where it is judged, so an ulp cannot move a verdict.
    for name in ("losses", "final_loss", "validation_losses", "final_validation_loss"):
        _same(getattr(segmented, name), getattr(plain, name), name)
    np.testing.assert_array_equal(segmented.converged_step, plain.converged_step)
    steps = np.asarray(segmented.steps_run)
    assert steps.min() < 256 == steps.max()  # some runs left early: their history was padded
    left = (steps < 256) & ~np.asarray(segmented.diverged)
    assert left.any()
    held = np.asarray(segmented.validation_losses)
    assert np.isnan(held[np.asarray(segmented.diverged), -1]).all()


def test_k_folds_run_in_segments_as_in_the_plain_scan():
    X, y = _data()
    run = lambda steps: jaxgd.sweep(X, y, learning_rates=RATES, num_steps=256,  # noqa: E731
                                    stopping=jaxgd.Stopping(early_exit=True, segment_steps=steps),
                                    validation=jaxgd.KFolds(3), engine="eigen")
    segmented, plain = run(32), run(256)
    assert segmented.losses.shape == (6, 3, 256)
    for name in ("losses", "validation_losses", "final_validation_loss"):
        _same(getattr(segmented, name), getattr(plain, name), name)
    assert segmented.run_steps_executed < segmented.run_steps_scheduled
    assert segmented.best() == plain.best()


def test_successive_halving_ranks_by_the_held_out_loss():
    X, y = _few_rows_many_features()
    l2 = [0.0, 0.03, 0.1, 0.3, 1.0, 3.0]
    options = {"grid": {"l2": l2}, "learning_rate": 0.1, "num_steps": 300,
               "validation": jaxgd.Holdout(0.4)}
    plain = jaxgd.grid_sweep(X, y, **options)
    halved = jaxgd.grid_sweep(X, y,
                              stopping=jaxgd.Stopping(pruning=jaxgd.Halving(min_steps=100),
                                                      segment_steps=100),
                              **options)
    # One rung, at step 100, ranked by the held-out loss of the parameters there (the plain
    # history's entry at step 100, what a run pruned there reports): 6 runs -> the best 2.
    at_rung = np.asarray(plain.validation_losses)[:, 100]
    kept = set(np.argsort(at_rung)[:2].tolist())
    assert set(np.flatnonzero(np.asarray(halved.pruned_step) < 0).tolist()) == kept
    # The training loss would keep others (no penalty fits the training rows best): this
    # test tells the two apart.
    assert set(np.argsort(np.asarray(plain.losses)[:, 99])[:2].tolist()) != kept
    # A pruned run's held-out history is the plain one up to the rung (within ULPS: halving
    # runs segment programs on a batch of another size), then its final value (a copy made
    # on the host: exactly).
    for r in np.flatnonzero(np.asarray(halved.pruned_step) >= 0):
        _same(halved.validation_losses[r, :100], plain.validation_losses[r, :100], f"run {r}")
        assert (halved.validation_losses[r, 100:] == halved.final_validation_loss[r]).all()
    for r in kept:
        _same(halved.validation_losses[r], plain.validation_losses[r], f"run {r}")


def test_halving_with_k_folds_prunes_whole_points_by_their_fold_mean():
    # Each fold's run used to be ranked alone, so a point's folds ran different numbers of
    # steps and best() compared fold means of unequal runs. Now the points are ranked by
    # the mean over their folds of the held-out loss at the rung, and pruned whole.
    X, y = _data(n=30)
    rates = np.geomspace(1e-3, 0.3, 6)  # slow to fast, all stable
    options = {"grid": {"learning_rate": rates}, "num_steps": 90, "engine": "gram",
               "validation": jaxgd.KFolds(3)}
    plain = jaxgd.grid_sweep(X, y, **options)
    halved = jaxgd.grid_sweep(X, y, stopping=jaxgd.Stopping(pruning=jaxgd.Halving(min_steps=10)),
                              **options)
    pruned = np.asarray(halved.pruned_step)
    assert pruned.shape == (6, 3) and (pruned == pruned[:, :1]).all()  # folds together
    mean_at = lambda step: np.asarray(plain.validation_losses)[:, :, step].mean(-1)  # noqa: E731
    # Rungs 10 and 30 (90 is the end): 6 points -> the best 2 -> the best 1.
    kept = np.argsort(mean_at(10))[:2]
    assert set(np.flatnonzero(pruned[:, 0] != 10).tolist()) == set(kept.tolist())
    winner = kept[np.argmin(mean_at(30)[kept])]
    assert np.flatnonzero(pruned[:, 0] == -1).tolist() == [winner]
    assert halved.best() == (winner,)
    np.testing.assert_array_equal(halved.steps_run,
                                  np.where(pruned >= 0, pruned, 90))


def test_run_of_best_with_folds_asks_for_the_fold():
    X, y = _data()
    result = jaxgd.sweep(X, y, learning_rates=[0.05, 0.2], num_steps=20, validation=jaxgd.KFolds(3))
    for index in (result.best(), int(result.best()[0])):  # the README idiom, and run(i)
        with pytest.raises(ValueError, match=r"axes \('learning_rate', 'fold'\).*with "
                                             r"k_folds.*add the fold \(0 to 2\)"):
            result.run(index)
    one = result.run((*result.best(), 2))
    assert float(one.final_validation_loss) == result.final_validation_loss[
        (*result.best(), 2)]


def test_refinement_lowers_the_held_out_loss():
    X, y = _data(n=60)
    X_train, y_train, X_val, y_val = split(X, y, 0.3, seed=1)
    result = jaxgd.grid_sweep(X_train, y_train,
                              sample=jaxgd.Sample({"learning_rate": ("log", 1e-3, 0.3)}, 8),
                              num_steps=10, validation=(X_val, y_val),
                              refine={"top": 2, "steps": 3})
    refined = result.refined
    held = np.asarray(result.final_validation_loss)
    # The start points are the best by held-out loss, and the objective is that loss.
    np.testing.assert_array_equal(np.sort(held)[:2], held[refined.start[:, 0]])
    np.testing.assert_allclose(refined.objective[:, 0], held[refined.start[:, 0]], rtol=1e-5)
    np.testing.assert_allclose(refined.runs.final_validation_loss, refined.objective[:, -1],
                               rtol=1e-6)
    assert not np.allclose(refined.objective[:, 0], result.final_loss[refined.start[:, 0]])
    assert np.all(np.diff(refined.objective, axis=1) <= 0)
    np.testing.assert_array_equal(refinement.objective(result), result.final_validation_loss)
    # refine= with k_folds= refines on the mean over folds: tests/api/test_fold_gradients.py


def test_drawn_points_with_k_folds():
    X, y = _data(n=30)
    r = jaxgd.grid_sweep(X, y, sample=jaxgd.Sample({"learning_rate": ("log", 1e-2, 0.3)}, 4),
                         validation=jaxgd.KFolds(3), num_steps=50, engine="direct")
    assert r.axes == ("sample", "fold") and r.validation_losses.shape == (4, 3, 50)
    mean = np.asarray(r.final_validation_loss).mean(axis=1)
    assert r.best() == (int(np.argmin(mean)),)
    assert set(r.point(r.best())) == {"learning_rate"}
    # One (point, fold) run is the fit on that fold's explicit split.
    ids = jaxgd.pipeline.holdout.fold_ids(30, 3)
    rate = float(r.values["learning_rate"][2])
    one = jaxgd.fit(X[ids != 1], y[ids != 1], learning_rate=rate, num_steps=50,
                    validation=(X[ids == 1], y[ids == 1]), engine="direct")
    np.testing.assert_allclose(r.validation_losses[2, 1], one.validation_losses, rtol=1e-5)


def test_fused_engines_keep_the_held_out_loss_in_their_kernel(monkeypatch):
    # Where "auto" fuses (faked here: the kernel is interpreted on this CPU), held-out data
    # no longer send it back to the scan path, and a fused engine asked for by name takes
    # them (they were refused): the same held-out history as the scan engine's. Within
    # ULPS at a floor of 1.0: the kernel sums the held-out quadratic term by term, which
    # rounds at the parameters' scale, not the falling loss's (tests/engines/test_fused.py).
    X, y = _data(n=20, d=2)
    monkeypatch.setattr(engines, "on_accelerator", lambda: True)
    options = {"learning_rates": [0.1, 0.5], "num_steps": 6, "validation": jaxgd.Holdout(0.3)}
    auto = jaxgd.sweep(X, y, **options)
    assert auto.engine == "eigen-fused"
    assert_close_ulps(auto.validation_losses,
                      jaxgd.sweep(X, y, engine="eigen", **options).validation_losses,
                      8, floor=1.0)
    given = dict(learning_rate=0.1, num_steps=3, validation=(X[:4], y[:4]))
    fused = jaxgd.fit(X, y, engine="gram-fused", **given)
    assert fused.engine == "gram-fused"
    assert_close_ulps(fused.validation_losses,
                      jaxgd.fit(X, y, engine="gram", **given).validation_losses, 8, floor=1.0)


@pytest.mark.parametrize("held", [{"validation_fraction": 0.3}, {"k_folds": 3}])
def test_held_out_fields_are_saved_loaded_and_tabled(tmp_path, held):
    X, y = _data(n=30)
    r = jaxgd.sweep(X, y, learning_rates=[0.05, 0.2], num_steps=5, **group(held))
    back = jaxgd.load(r.save(tmp_path / "r"))
    for name in ("validation_losses", "final_validation_loss", "folds"):
        value = getattr(r, name)
        if value is not None:
            np.testing.assert_array_equal(getattr(back, name), value, err_msg=name)
    assert (back.folds is None) == ("k_folds" not in held)
    for side in ("training", "validation"):
        for metric in ("mse", "rmse", "mae"):
            np.testing.assert_array_equal(back.errors[side][metric], r.errors[side][metric])
    assert back.best() == r.best()
    columns = tidy_columns(r)
    np.testing.assert_array_equal(columns["validation_loss"],
                                  np.asarray(r.validation_losses).reshape(-1))
    np.testing.assert_array_equal(columns["loss"], np.asarray(r.losses).reshape(-1))
    assert ("fold" in columns) == ("k_folds" in held)
    assert columns["final_validation_loss"].size == columns["loss"].size


def test_without_held_out_data_nothing_is_added():
    X, y = _data(n=30)
    r = jaxgd.sweep(X, y, learning_rates=[0.05, 0.2], num_steps=5)
    assert r.validation_losses is None and r.final_validation_loss is None
    columns = tidy_columns(r)
    assert "validation_loss" not in columns and "final_validation_loss" not in columns
    # The held-out loss leaves the training history as it was, also in segments: the same
    # steps, compiled into a program that computes the held-out loss too, whose fusions XLA
    # may arrange otherwise: within ULPS (steps and verdicts exactly). The held-out run is
    # test_segments_carry_and_pad_the_held_out_history's eigen one (the same shapes and
    # options: its programs, not compiled again), its rows held out by hand.
    same = {"learning_rates": RATES, "num_steps": 256, "engine": "eigen",
            "stopping": jaxgd.Stopping(early_exit=True, segment_steps=32)}
    X_train, y_train, X_val, y_val = split(*_data(), 0.25)
    with_held = jaxgd.sweep(X_train, y_train, validation=(X_val, y_val), **same)
    without = jaxgd.sweep(X_train, y_train, **same)
    for name in ("losses", "final_loss", "converged_step", "steps_run"):
        _same(getattr(with_held, name), getattr(without, name), name)
    jax.tree_util.tree_map(lambda a, b: _same(a, b, "params"), with_held.params,
                           without.params)
