"""Held-out data in the CLI: config keys, the best run by validation loss with its RMSE,
summary.json and history.npz fields, k folds, and the shipped ridge_holdout config."""

import json

import numpy as np
import pytest

import jaxgd
from jaxgd import cli, grid_sweep
from jaxgd.cli import execute
from jaxgd.cli.config import ConfigError, parse
from jaxgd.cli.shipped import load_config
from jaxgd.pipeline.holdout import split

SMALL = """
[data]
dataset = "synthetic"
n_samples = 30
n_features = 3
{holdout}
[optimizer]
learning_rates = [0.01, 0.1]
grid = {{l2 = [0.0, 0.5]}}
[train]
num_steps = 60
[output]
figures = []
"""


@pytest.mark.parametrize(("holdout", "message"), [
    ("validation_fraction = 1.5",
     r"data.validation_fraction must be a number in \(0, 1\), got 1.5"),
    ("validation_fraction = 0.0", r"data.validation_fraction must be a number in \(0, 1\)"),
    ("k_folds = 1", "data.k_folds must be >= 2, got 1"),
    ("k_folds = 2.5", "data.k_folds must be an integer"),
    ("validation_fraction = 0.2\nk_folds = 3", "one of data.validation_fraction and "
                                               "data.k_folds"),
    ("validation_fraction = 0.2\nvalidation_seed = -1", "data.validation_seed must be >= 0"),
    ("validation_seed = 3", "data.validation_seed seeds the draw of "
                            "data.validation_fraction or data.k_folds"),
    # Written out, 0 is refused too: it seeds nothing without held-out rows.
    ("validation_seed = 0", "data.validation_seed seeds the draw of "
                            "data.validation_fraction or data.k_folds"),
    ("validation_fractoin = 0.2", "Did you mean 'validation_fraction'"),
])
def test_bad_held_out_keys_are_named(holdout, message):
    with pytest.raises(ConfigError, match=message):
        parse(SMALL.format(holdout=holdout))


def test_held_out_rows_that_cannot_be_drawn_are_config_errors():
    with pytest.raises(ConfigError, match="k_folds is for full-batch runs"):
        parse(SMALL.format(holdout="k_folds = 3").replace("num_steps = 60",
                                                          "batch_size = 5\nepochs = 2"))
    with pytest.raises(ConfigError, match="streamed data keep no rows"):
        parse("[data]\ndataset = 'npy'\npath = 'x.npy'\nvalidation_fraction = 0.2\n"
              "[optimizer]\nlearning_rate = 0.1\n")
    config = parse(SMALL.format(holdout="k_folds = 20"))
    with pytest.raises(ConfigError, match="each fold needs at least 2"):
        execute.prepare(config)


def _run(tmp_path, text: str, *flags: str):
    """``jaxgd run`` on the config ``text``: its history.npz and summary.json."""
    config = tmp_path / "c.toml"
    config.write_text(text)
    out = tmp_path / "out"
    assert cli.main(["run", str(config), "--out", str(out), *flags]) == 0
    return (np.load(out / "history.npz", allow_pickle=False),
            json.loads((out / "summary.json").read_text()))


def test_run_picks_the_best_by_validation_loss_and_reports_rmse(tmp_path, capsys):
    text = SMALL.format(holdout="validation_fraction = 0.3\nvalidation_seed = 4")
    history, summary = _run(tmp_path, text)
    printed = capsys.readouterr().out
    held = history["final_validation_loss"]
    assert history["validation_losses"].shape == history["losses"].shape
    best = tuple(history["best_index"])
    assert held[best] == np.nanmin(np.where(history["diverged"], np.nan, held))
    assert summary["best_run"]["selected_by"] == "validation"
    assert summary["validation"] == {"fraction": 0.3, "k_folds": None, "seed": 4,
                                     "selected_by": "validation loss"}
    run = summary["best_run"]
    assert np.isclose(run["validation_rmse"], np.sqrt(run["final_validation_loss"]),
                      rtol=1e-5)
    assert f"RMSE {run['validation_rmse']:.6g}" in printed
    assert "selected by validation loss" in printed and "val RMSE" in printed
    # The split is jaxgd.pipeline.holdout.split's, with validation_seed: the API's numbers.
    plan = execute.prepare(parse(text))
    X_tr, y_tr, X_val, y_val = split(plan.X, plan.y, 0.3, seed=4)
    api = grid_sweep(X_tr, y_tr, grid={"learning_rate": [0.01, 0.1], "l2": [0.0, 0.5],
                                       "seed": [0]}, num_steps=60, validation=(X_val, y_val))
    np.testing.assert_allclose(held, api.final_validation_loss, rtol=1e-5)
    # The reference is the training rows' optimum (the runs never see the held-out rows).
    assert abs(run["gap_to_optimum"]) < 1e-3


def test_k_folds_add_a_fold_axis_and_pick_by_the_mean(tmp_path, capsys):
    history, summary = _run(tmp_path, SMALL.format(holdout="k_folds = 3"))
    printed = capsys.readouterr().out
    assert history["grid_axes"].tolist() == ["learning_rate", "l2", "seed", "fold"]
    assert history["losses"].shape[:4] == (2, 2, 1, 3)
    mean = np.where(history["diverged"].any(-1), np.inf,
                    history["final_validation_loss"].mean(-1))
    best = tuple(history["best_index"])
    assert best[-1] == 0 and mean[best[:-1]] == mean.min()
    assert np.isclose(summary["best_run"]["mean_final_validation_loss"], mean.min(),
                      rtol=1e-6)
    assert "mean over 3 folds" in printed
    # jaxgd.load gives the folder back as the library's result, with the same pick.
    import jaxgd

    loaded = jaxgd.load(tmp_path / "out")
    assert loaded.axes == ("learning_rate", "l2", "seed", "fold") and loaded.best() == best[:-1]
    np.testing.assert_array_equal(loaded.errors["validation"]["rmse"],
                                  history["validation_rmse"])


def test_without_held_out_data_nothing_changes(tmp_path):
    history, summary = _run(tmp_path, SMALL.format(holdout=""), "--quiet")
    assert "validation_losses" not in history
    assert summary["validation"] is None and summary["best_run"]["selected_by"] == "training"


@pytest.mark.filterwarnings("ignore:the features are linearly dependent")
def test_the_shipped_ridge_holdout_config_picks_another_run_than_training_loss():
    config, _ = load_config("ridge_holdout", [])
    plan = execute.prepare(config)
    record = execute.run(config)
    history = record.history
    best = tuple(history["best_index"])
    by_training = np.unravel_index(np.argmin(np.where(history["diverged"], np.inf,
                                                      history["final_loss"])),
                                   history["final_loss"].shape)
    assert by_training != best
    l2 = plan.grid["l2"]
    assert l2[by_training[1]] == 0.0 and l2[best[1]] > 0  # a penalty generalizes better
    held = history["final_validation_loss"]
    assert held[best] < 0.8 * held[by_training]  # by a clear margin, not by rounding


def test_the_figures_draw_the_held_out_loss_beside_the_training_loss():
    from jaxgd import figures

    record = execute.run(parse(SMALL.format(holdout="validation_fraction = 0.3")))
    labels = {}
    for name in ("loss_curve", "sweep_curves", "sweep_summary"):
        fig = figures.draw(name, record.history, record.meta)
        legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
        labels[name] = " | ".join(t.get_text() for legend in legends
                                  for t in legend.get_texts())
    best = tuple(record.history["best_index"])
    held = record.history["final_validation_loss"][best]
    assert f"held-out loss (final MSE {figures.base.fmt(held)})" in labels["loss_curve"]
    assert f"its held-out loss (MSE {figures.base.fmt(held)})" in labels["sweep_curves"]
    assert "held-out loss (left)" in labels["sweep_summary"]
    assert "best run (by held-out loss)" in labels["sweep_summary"]


def test_with_folds_the_limit_drawn_is_labelled_the_smallest_folds():
    """With k folds the line drawn is the smallest fold's limit, not one of all the rows:
    its label said only "2/λmax" (issue #22); also as jaxgd plot reads it back."""
    from jaxgd import figures
    from jaxgd.cli import results

    record = execute.run(parse(SMALL.format(holdout="k_folds = 3")))
    summary = json.loads(results.to_json(record.summary))
    for meta in (record.meta, cli._meta(summary)):
        fig = figures.draw("sweep_summary", record.history, meta)
        labels = " | ".join(t.get_text() for legend in fig.legends for t in legend.get_texts())
        assert "2/λmax (smallest of 3 folds) = " in labels, labels
    record = execute.run(parse(SMALL.format(holdout="validation_fraction = 0.3")))
    assert record.meta["limit_label"] == "2/λmax"  # one set of training rows: its own


def test_drawn_points_and_halving_with_held_out_data(tmp_path, capsys):
    """The merged features together: optimizer.sample, train.pruning and a held-out split.
    Halving ranks by the held-out loss, and the record keeps both sides' fields."""
    history, summary = _run(tmp_path, SMALL.format(holdout="validation_fraction = 0.3").replace(
        "learning_rates = [0.01, 0.1]\ngrid = {l2 = [0.0, 0.5]}",
        "sample = {learning_rate = ['log', 1e-3, 0.3]}\nnum_samples = 8").replace(
        "num_steps = 60", "num_steps = 90\npruning = 'halving'\nmin_steps = 10"))
    printed = capsys.readouterr().out
    assert history["validation_losses"].shape == history["losses"].shape == (8, 1, 90)
    pruned = history["pruned_step"].reshape(-1)
    assert (pruned == 10).sum() == 5  # rung 10: 8 runs -> the best 3 go on
    held = history["validation_losses"].reshape(8, 90)[:, 10]  # of the parameters at 10
    assert set(np.flatnonzero(pruned != 10)) == set(np.argsort(held)[:3])
    assert summary["best_run"]["selected_by"] == "validation"
    assert summary["training"]["run_steps_executed"] < summary["training"]["run_steps_scheduled"]
    assert "run-steps:" in printed and "selected by validation loss" in printed
    assert len(summary["sample"]["values"]["learning_rate"]) == 8


def test_validation_seed_reaches_the_library_only_with_rows_to_draw(tmp_path):
    # The library refuses validation_seed without validation_fraction or k_folds (it would
    # seed nothing): the config's default seed must not be passed to a run without them.
    from jaxgd.cli.plan import holdout_options

    assert holdout_options(parse(SMALL.format(holdout=""))) == {}
    assert holdout_options(parse(SMALL.format(holdout="k_folds = 3\nvalidation_seed = 2"))) \
        == {"k_folds": 3, "validation_seed": 2}
    assert _run(tmp_path, SMALL.format(holdout=""))[1]["validation"] is None


# Every number the command line reports about training comes from the rows the runs train
# on, checked against the library called directly on those rows (on main these came from
# all rows, held-out ones included).

CARS = """
[data]
dataset = "mlcc_cars"
{holdout}
[optimizer]
learning_rates = [0.05, 0.065, 0.072]
[train]
num_steps = 300
[output]
figures = []
"""


def _cars():
    from jaxgd import datasets

    data = datasets.mlcc_cars()
    return np.asarray(data.X, np.float64), np.asarray(data.y, np.float64)


def test_a_split_reports_and_explains_by_the_training_rows_limit(tmp_path, capsys):
    from jaxgd import stability, sweep

    X, y = _cars()
    X_tr, y_tr, X_val, y_val = split(X, y, 0.5, seed=0)
    limit = stability(X_tr).max_learning_rate
    # 0.065 lies between the training rows' limit and that of all 7 rows: it must diverge,
    # and be explained as above the limit, not as float32 rounding below it.
    assert limit < 0.065 < stability(X).max_learning_rate
    history, summary = _run(tmp_path, CARS.format(holdout="validation_fraction = 0.5"))
    printed = capsys.readouterr().out
    assert summary["stability"]["max_learning_rate"] == pytest.approx(limit, rel=1e-12)
    assert summary["stability"]["rows"] == "training"
    assert f"2/λmax = {limit:.4g} (of the training rows)" in printed
    api = sweep(X_tr, y_tr, learning_rates=[0.05, 0.065, 0.072], num_steps=300,
                validation=(X_val, y_val))
    assert history["diverged"].reshape(-1).tolist() == np.asarray(api.diverged).reshape(
        -1).tolist() == [False, True, True]
    said = [run.get("explanation") for run in summary["runs"]]
    assert said == [None, f"η = 0.065 > 2/λmax = {limit:.4g}: diverged",
                    f"η = 0.072 > 2/λmax = {limit:.4g}: diverged"]
    # The limit the figures mark (the record's meta, and jaxgd plot's from summary.json).
    record = execute.run(parse(CARS.format(holdout="validation_fraction = 0.5")))
    assert record.meta["max_learning_rate"] == pytest.approx(limit, rel=1e-12)
    assert cli._meta(summary)["max_learning_rate"] == pytest.approx(limit, rel=1e-12)
    # The figures draw the best run beside the rows it trained on, and its snapshots' loss.
    np.testing.assert_array_equal(history["X"], X_tr)
    np.testing.assert_array_equal(history["y"], y_tr)
    np.testing.assert_allclose(history["snapshot_loss"], _mse(history, X_tr, y_tr),
                               rtol=1e-9)


def _mse(history, X, y, fold=None):
    """Each snapshot's MSE on (X, y), by hand (the snapshots of ``fold`` only, if given)."""
    weight, bias = history["snapshot_weight"], history["snapshot_bias"]
    if fold is not None:
        weight, bias = weight[..., fold, :, :], bias[..., fold, :]
    with np.errstate(all="ignore"):
        return np.mean((weight @ X.T + bias[..., None] - y) ** 2, axis=-1)


def test_k_folds_explain_each_run_by_its_own_folds_limit_and_report_the_smallest(
        tmp_path, capsys):
    from jaxgd import stability
    from jaxgd.pipeline import holdout
    X, y = _cars()
    ids = holdout.fold_ids(len(y), 3, seed=0)
    limits = [stability(X[ids != fold]).max_learning_rate for fold in range(3)]
    history, summary = _run(tmp_path, CARS.format(holdout="k_folds = 3"))
    printed = capsys.readouterr().out
    block = summary["stability"]
    assert [f["max_learning_rate"] for f in block["per_fold"]] == pytest.approx(limits,
                                                                                 rel=1e-12)
    assert block["fold"] == int(np.argmin(limits))
    assert block["max_learning_rate"] == pytest.approx(min(limits), rel=1e-12)
    assert f"2/λmax = {min(limits):.4g} (the smallest of the 3 folds' training rows" in printed
    api = grid_sweep(X, y, grid={"learning_rate": [0.05, 0.065, 0.072], "seed": [0]},
                     num_steps=300, validation=jaxgd.KFolds(3))
    np.testing.assert_array_equal(history["diverged"], api.diverged)
    explained = 0
    for run in summary["runs"]:
        own = limits[run["fold"]]
        assert run["diverged"] == (run["learning_rate"] > own)  # exact: no run near a limit
        if run["diverged"]:
            assert run["explanation"] == (f"η = {run['learning_rate']:.4g} > 2/λmax = "
                                          f"{own:.4g} on fold {run['fold']}'s training rows: "
                                          "diverged")
            explained += 1
    # Some fold keeps a rate that another fold's limit rules out: one limit could not
    # explain every run.
    assert 0 < explained < len(summary["runs"]) - 3
    for fold in range(3):  # each run's snapshots' loss on its own fold's training rows
        np.testing.assert_allclose(history["snapshot_loss"][..., fold, :],
                                   _mse(history, X[ids != fold], y[ids != fold], fold),
                                   rtol=1e-9)


def test_standardize_is_fitted_on_the_training_rows_only():
    from jaxgd import Standardizer, stability

    text = SMALL.format(holdout="validation_fraction = 0.3\nvalidation_seed = 4\n"
                                "standardize = true")
    plan = execute.prepare(parse(text))
    X, y = np.asarray(plan.dataset.X), np.asarray(plan.dataset.y)  # original units
    X_tr, y_tr, X_val, y_val = split(X, y, 0.3, seed=4)
    scaler = Standardizer.fit(X_tr)
    np.testing.assert_allclose(plan.scaler.mean, scaler.mean, rtol=1e-12)
    np.testing.assert_allclose(plan.scaler.scale, scaler.scale, rtol=1e-12)
    assert not np.allclose(plan.scaler.mean, X.mean(axis=0))  # all rows' would differ
    assert plan.limits.max_learning_rate == pytest.approx(
        stability(scaler.transform(X_tr), l2=0.5).max_learning_rate, rel=1e-12)
    # The runs: the library on the training rows standardized by their own statistics,
    # the held-out rows mapped with the same mean and scale.
    record = execute.run(parse(text))
    api = grid_sweep(scaler.transform(X_tr), y_tr, grid={"learning_rate": [0.01, 0.1],
                                                         "l2": [0.0, 0.5], "seed": [0]},
                     num_steps=60, validation=(scaler.transform(X_val), y_val))
    np.testing.assert_allclose(record.history["final_validation_loss"],
                               api.final_validation_loss, rtol=1e-5)
    np.testing.assert_allclose(record.history["final_loss"], api.final_loss, rtol=1e-5)


def test_standardize_with_k_folds_is_refused_naming_both_keys():
    config = parse(SMALL.format(holdout="k_folds = 3\nstandardize = true"))
    with pytest.raises(ConfigError, match=r"data\.standardize with data\.k_folds: each "
                                          r"fold trains on other rows"):
        execute.prepare(config)


def test_fewer_training_rows_than_parameters_are_warned_about_as_such():
    # 10 rows of 6 features, half held out: 5 training rows for 7 parameters (all 10
    # rows would be enough: the warning is about the rows the runs train on).
    text = SMALL.format(holdout="validation_fraction = 0.5").replace(
        "n_samples = 30\nn_features = 3", "n_samples = 10\nn_features = 6")
    warnings = execute.prepare(parse(text)).warnings
    assert len(warnings) == 1 and warnings[0].startswith(
        "the runs train on 5 rows, fewer than the 7 parameters")
    assert execute.prepare(parse(text.replace("validation_fraction = 0.5", ""))).warnings \
        == ()


def test_lr_range_trains_on_the_training_rows_and_refuses_k_folds(tmp_path, capsys):
    from jaxgd import stability

    X, y = _cars()
    X_tr, *_ = split(X, y, 0.5, seed=0)
    out = tmp_path / "lr"
    assert cli.main(["lr-range", "mlcc_cars", "--set", "data.validation_fraction=0.5",
                     "--set", "train.num_steps=50", "--num-rates", "4", "--out",
                     str(out)]) == 0
    record = json.loads((out / "lr_range.json").read_text())
    assert record["max_stable"] == pytest.approx(stability(X_tr).max_learning_rate,
                                                 rel=1e-12)
    assert "trained on the 3 training rows of 7" in capsys.readouterr().out
    assert (record["training_rows"], record["rows"]) == (3, 7)
    assert cli.main(["lr-range", "mlcc_cars", "--set", "data.k_folds=3"]) == 2
    assert "lr-range: data.k_folds trains each fold on other rows" in capsys.readouterr().err
