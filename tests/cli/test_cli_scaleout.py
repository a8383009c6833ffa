"""`jaxgd run` with the scale-out settings: optimizer grids, mini-batch SGD, ridge, log_every
and streamed data, from the shipped example configs to the results folder."""

import contextlib
import csv
import io
import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import jaxgd
from jaxgd import cli
from jaxgd.cli import checkpoint, execute, results
from jaxgd.cli import plan as plans

ROOT = Path(__file__).parents[2]
SHIPPED = ("optimizer_grid", "minibatch", "ridge", "streamed", "streamed_minibatch")


def in_process(*args, cwd: Path) -> SimpleNamespace:
    """``jaxgd ARGS`` as ``jaxgd.cli.main`` runs it in this process, from ``cwd``, with what
    it prints caught: a user's run but for the subprocess, whose JAX import would only add
    seconds (tests/cli/test_cli.py runs ``python -m jaxgd`` in subprocesses)."""
    out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = cli.main([str(a) for a in args])
    finally:
        os.chdir(here)
    return SimpleNamespace(returncode=status, stdout=out.getvalue(), stderr=err.getvalue())


def main(*args):
    return cli.main(["run", *map(str, args)])


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """Each new shipped config, run by name as a user runs it, from an empty folder."""
    root = tmp_path_factory.mktemp("scaleout")
    runs = {}
    for name in SHIPPED:
        done = in_process("run", name, "--out", root / name, cwd=root)
        runs[name] = (done, root / name)
    return runs


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_config_runs_and_writes_its_folder(shipped, name):
    done, out = shipped[name]
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and f"results: {out}" in done.stdout
    history, summary = results.read(out)
    assert summary["best_run"] is not None and not summary["best_run"]["diverged"]
    assert summary["best_run"]["gap_to_optimum"] < 1e-3 * summary["best_run"]["final_loss"]
    assert (ROOT / "configs" / f"{name}.toml").resolve() == (
        ROOT / "jaxgd" / "configs" / f"{name}.toml")
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert "loss_curve.png" in pngs and "sweep_curves.png" in pngs
    assert done.stdout.count("figure: ") == len(pngs)
    assert history["losses"].shape[-1] == summary["training"]["history_length"]


def test_a_grid_run_names_every_run_by_its_hyperparameters(shipped):
    _, out = shipped["optimizer_grid"]
    history, summary = results.read(out)
    assert list(history["grid_axes"]) == ["learning_rate", "b1", "b2", "seed"]
    assert summary["grid"] == {"axes": ["learning_rate", "b1", "b2", "seed"],
                               "shape": [4, 2, 2, 1]}
    assert history["losses"].shape == (4, 2, 2, 1, 2000)
    assert history["final_loss"].shape == history["diverged"].shape == (4, 2, 2, 1)
    assert history["snapshot_weight"].shape[:4] == (4, 2, 2, 1)
    np.testing.assert_array_equal(history["grid_values_b2"], [0.99, 0.999])
    runs = summary["runs"]
    assert len(runs) == 16
    assert {(r["learning_rate"], r["b1"], r["b2"], r["seed"]) for r in runs} == {
        (lr, b1, b2, 0) for lr in (0.003, 0.01, 0.03, 0.1) for b1 in (0.5, 0.9)
        for b2 in (0.99, 0.999)}
    for run, final in zip(runs, history["final_loss"].reshape(-1), strict=True):  # row-major
        assert run["final_loss"] == pytest.approx(float(final))
    best = tuple(history["best_index"])
    assert summary["best_run"]["b1"] == history["grid_values_b1"][best[1]]
    with open(out / "losses.csv") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["learning_rate", "b1", "b2", "seed", "step", "loss"]
    assert len(rows) == 1 + 16 * 2000 and rows[2][:5] == ["0.003", "0.5", "0.99", "0", "1"]


def test_a_grid_folder_is_redrawn_by_jaxgd_plot(shipped, tmp_path, capsys):
    _, out = shipped["optimizer_grid"]
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in out.iterdir():
        if path.suffix != ".png":
            (copy / path.name).write_bytes(path.read_bytes())
    assert cli.main(["plot", str(copy)]) == 0, capsys.readouterr().err
    for png in out.glob("*.png"):
        assert (copy / png.name).read_bytes() == png.read_bytes()


def test_a_minibatch_run_saves_batch_and_epoch_losses(shipped):
    _, out = shipped["minibatch"]
    history, summary = results.read(out)
    steps = 30 * 8  # epochs × ceil(398 / 50)
    assert history["losses"].shape == (5, 2, steps) and int(history["num_steps"]) == steps
    assert history["epoch_losses"].shape == (5, 2, 31)
    assert summary["training"] == {"num_steps": steps, "batch_size": 50, "epochs": 30,
                                   "steps_per_epoch": 8, "log_every": 1,
                                   "history_length": steps, "engine": "direct",
                                   # no early exit: every run takes every step
                                   "run_steps_executed": 5 * 2 * steps,
                                   "run_steps_scheduled": 5 * 2 * steps}
    # The final loss is the loss on all the data after the last update: the last epoch loss.
    np.testing.assert_allclose(history["final_loss"], history["epoch_losses"][..., -1],
                               rtol=1e-6)
    converged = history["converged_step"][history["converged_step"] >= 0]
    assert converged.size and np.all(converged % 8 == 0)  # judged per epoch


def test_a_ridge_run_reports_the_ridge_optimum_of_each_l2(shipped):
    _, out = shipped["ridge"]
    history, summary = results.read(out)
    assert history["losses"].shape == (2, 4, 1, 3000)
    data = jaxgd.datasets.auto_mpg()
    scaler = jaxgd.Standardizer.fit(data.X)
    optima = summary["least_squares"]
    assert [o["l2"] for o in optima] == [0.0, 0.01, 0.1, 1.0]
    for optimum in optima:
        ridge = jaxgd.solve(scaler.transform(data.X), data.y, l2=optimum["l2"])
        weight = jaxgd.unstandardize_params(ridge.params, scaler)
        assert optimum["loss"] == pytest.approx(ridge.loss, rel=1e-12)
        np.testing.assert_allclose([optimum["weight"][n] for n in data.feature_names],
                                   weight.weight, rtol=1e-9)
    np.testing.assert_allclose(history["optimal_losses"], [o["loss"] for o in optima])
    # Each l2's runs end at their own optimum; larger l2 costs more loss.
    final = history["final_loss"][1, :, 0]  # learning rate 0.1
    np.testing.assert_allclose(final, history["optimal_losses"], rtol=1e-4)
    assert np.all(np.diff(history["optimal_losses"]) > 0)
    best = summary["best_run"]
    assert best["l2"] == 0.0 and abs(best["gap_to_optimum"]) < 1e-3


def test_a_streamed_run_equals_the_same_run_in_memory(shipped, tmp_path):
    _, out = shipped["streamed"]
    streamed, summary = results.read(out)
    assert summary["data"]["streamed"] and summary["data"]["rows"] == 398
    assert summary["training"]["engine"] == "gram" and streamed["X"].shape == (0, 1)
    assert sorted(p.name for p in out.glob("*.png")) == [
        "loss_curve.png", "loss_surface.png", "sweep_curves.png", "sweep_summary.png"]
    assert main("streamed", "--out", tmp_path / "memory", "--quiet", "--set",
                "data.stream=false", "--set", "output.figures=[]") == 0
    memory, in_memory = results.read(tmp_path / "memory")
    assert not in_memory["data"]["streamed"] and in_memory["training"]["engine"] == "gram"
    for key in ("losses", "final_loss", "snapshot_weight", "snapshot_bias", "snapshot_loss",
                "optimum_weight", "optimum_bias", "optimal_loss", "path_weight"):
        np.testing.assert_allclose(streamed[key], memory[key], rtol=1e-5, equal_nan=True,
                                   err_msg=key)
    for key in ("converged_step", "diverged", "best_index"):
        np.testing.assert_array_equal(streamed[key], memory[key], err_msg=key)


def test_a_npy_file_streams_with_numbered_columns(tmp_path):
    data = jaxgd.datasets.auto_mpg(["weight", "horsepower"])
    np.save(tmp_path / "cars.npy", np.column_stack([data.y, data.X]))  # target first
    config = tmp_path / "npy.toml"
    config.write_text("[data]\ndataset = 'npy'\npath = 'cars.npy'\ntarget_column = 0\n"
                      "scale = { x1 = 0.001 }\n[optimizer]\nlearning_rates = [0.01, 0.05]\n"
                      "[train]\nnum_steps = 40\n[output]\nfigures = []\n")
    assert main(config, "--out", tmp_path / "out", "--quiet") == 0
    history, summary = results.read(tmp_path / "out")
    assert summary["data"]["features"] == ["x1 ×0.001", "x2"] and summary["data"]["rows"] == 392
    X = data.X * [0.001, 1.0]
    expected = jaxgd.sweep(X, data.y, learning_rates=[0.01, 0.05], num_steps=40, seeds=[0],
                           engine="gram", stopping=jaxgd.Stopping(reference=False))
    np.testing.assert_allclose(history["losses"], expected.losses, rtol=1e-5)
    optimum = jaxgd.solve(X, data.y)
    np.testing.assert_allclose(history["optimum_weight"], optimum.params.weight, rtol=1e-9)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "data.standardize=true"], "data.standardize = true needs the rows"),
        (["--set", "train.batch_size=10", "--set", "train.epochs=2"],
         "train.engine='gram': mini-batch SGD needs train.engine='direct'"),
        (["--set", "train.batch_size=10", "--set", "train.epochs=2", "--set",
          "train.engine=auto", "--set", "optimizer.grid.batch_seed=[1, 2]"],
         "optimizer.grid.batch_seed: rows streamed from a file are read in one"),
        (["--set", "train.batch_size=1000", "--set", "train.epochs=2", "--set",
          "train.engine=auto"], "train.batch_size must be <= the number of rows (398)"),
        (["--set", "train.engine=direct"], "train.engine='direct' computes the loss"),
        (["--set", "data.features=['wieght']"], "data: unknown column 'wieght'"),
    ],
)
def test_what_streamed_data_cannot_do_is_refused(tmp_path, capsys, args, message):
    assert main("streamed", "--out", tmp_path / "out", *args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_streamed_minibatch_run_reads_its_batches_from_the_file(shipped, tmp_path):
    _, out = shipped["streamed_minibatch"]
    history, summary = results.read(out)
    steps = 300 * 7  # epochs × ceil(398 / 64)
    assert summary["data"]["streamed"] and summary["data"]["rows"] == 398
    assert summary["training"] == {"num_steps": steps, "batch_size": 64, "epochs": 300,
                                   "steps_per_epoch": 7, "log_every": 1,
                                   "history_length": steps, "engine": "direct",
                                   "run_steps_executed": 4 * steps,
                                   "run_steps_scheduled": 4 * steps}
    assert history["losses"].shape == (4, 1, steps)
    assert history["epoch_losses"].shape == (4, 1, 301) and history["X"].shape == (0, 1)
    # The same runs through the library, streamed from the same file in the same order.
    source = jaxgd.datasets.csv_rows(ROOT / "jaxgd" / "datasets" / "data" / "auto_mpg.csv",
                                     "weight", "mpg", block_rows=64).rescaled([0.001])
    expected = jaxgd.sweep(source, None, learning_rates=[0.01, 0.03, 0.06, 0.09], seeds=[0],
                           stopping=jaxgd.Stopping(tol=1e-3, patience=3, reference=False),
                           batches=jaxgd.MiniBatches(batch_size=64, epochs=300),
                           optimizer=jaxgd.Optimizer(schedule="cosine_decay"))
    np.testing.assert_allclose(history["losses"], expected.losses, rtol=1e-5)
    np.testing.assert_allclose(history["epoch_losses"], expected.epoch_losses, rtol=1e-5)
    np.testing.assert_array_equal(history["converged_step"], expected.converged_step)
    # Chunks reopen the file and read the same batches: a chunked run gives the same results.
    assert main("streamed_minibatch", "--out", tmp_path / "chunked", "--quiet",
                "--chunk-size", "3", "--set", "output.figures=[]") == 0
    chunked, chunked_summary = results.read(tmp_path / "chunked")
    assert chunked_summary["chunks"]["count"] == 2
    np.testing.assert_allclose(chunked["losses"], history["losses"], rtol=1e-5)
    np.testing.assert_array_equal(chunked["best_index"], history["best_index"])


def test_minibatch_settings_the_data_cannot_take_are_refused(tmp_path, capsys):
    assert main("minibatch", "--out", tmp_path / "out", "--set", "train.batch_size=1000") == 2
    assert "train.batch_size must be <= the number of rows (398)" in capsys.readouterr().err
    assert main("minibatch", "--out", tmp_path / "out", "--set",
                "train.snapshot_steps=[0, 500]") == 2
    assert "train.snapshot_steps must lie in [0, num_steps=240]" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_log_every_keeps_true_steps_in_the_history_and_the_csv(tmp_path):
    assert main("mlcc_cars", "--out", tmp_path / "out", "--quiet", "--set",
                "train.num_steps=4000", "--set", "train.log_every=100",
                "--set", "output.figures=['loss_curve', "
                "'sweep_curves', 'sweep_summary']") == 0
    history, summary = results.read(tmp_path / "out")
    assert history["losses"].shape == (3, 1, 40) and int(history["num_steps"]) == 4000
    np.testing.assert_array_equal(history["loss_steps"], np.arange(0, 4000, 100))
    with open(tmp_path / "out" / "losses.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows[:3]] == [0, 100, 200] and len(rows) == 3 * 40
    assert summary["runs"][1]["converged_step"] > 0  # a true step, not a history index
    assert len(list((tmp_path / "out").glob("*.png"))) == 3


def test_set_adds_an_optimizer_grid_axis(tmp_path):
    assert main("auto_mpg", "--out", tmp_path / "out", "--quiet", "--set",
                "optimizer.name=adam", "--set", "optimizer.grid.b1=[0.5,0.9]",
                "--set", "train.num_steps=30", "--set", "output.figures=[]") == 0
    history, summary = results.read(tmp_path / "out")
    assert history["losses"].shape == (7, 2, 1, 30)
    assert [(r["learning_rate"], r["b1"]) for r in summary["runs"][:2]] == [
        (0.001, 0.5), (0.001, 0.9)]
    assert summary["config"]["optimizer"]["grid"] == {"b1": [0.5, 0.9]}


def test_a_grid_run_resumes_to_the_uninterrupted_results(tmp_path, capsys):
    overrides = ["train.num_steps=50", "output.figures=[]"]
    config, _ = cli.load_config("optimizer_grid", overrides)
    plan = plans.prepare(config, chunk_size=3)
    assert plan.num_chunks == 2 and plan.grid_shape(3) == (3, 2, 2, 1)
    out = tmp_path / "out"
    saved = checkpoint.Checkpoint.start(out, plan.fingerprint())
    saved.save(1, execute.run_chunk(plan, 1))  # the padded last chunk, as if the first failed
    assert saved.load(1)["losses"].shape == (1, 2, 2, 1, 50)
    sets = [arg for o in overrides for arg in ("--set", o)]
    assert main("optimizer_grid", "--out", out, "--resume", *sets) == 0
    assert "1 of 2 chunks were done" in capsys.readouterr().err
    whole = tmp_path / "whole"
    assert main("optimizer_grid", "--out", whole, "--quiet", "--chunk-size", "3", *sets) == 0
    resumed, summary = results.read(out)
    reference, whole_summary = results.read(whole)
    assert sorted(resumed) == sorted(reference)
    for key, array in reference.items():
        assert np.array_equal(array, resumed[key], equal_nan=array.dtype.kind == "f"), key
    drop = ("timing_seconds",)
    assert {k: v for k, v in summary.items() if k not in drop} == {
        k: v for k, v in whole_summary.items() if k not in drop}
    assert (out / "losses.csv").read_bytes() == (whole / "losses.csv").read_bytes()
    # Another grid is another run: refused, naming the key.
    other = tmp_path / "other"
    other_plan = plans.prepare(config, chunk_size=3)
    checkpoint.Checkpoint.start(other, other_plan.fingerprint()).save(
        0, execute.run_chunk(other_plan, 0))
    assert main("optimizer_grid", "--out", other, "--resume", *sets,
                "--set", "optimizer.grid.b1=[0.5]") == 2
    assert "optimizer.grid.b1: [0.5, 0.9] → [0.5]" in capsys.readouterr().err


def test_a_shipped_config_reads_its_data_path_from_the_package():
    by_name, _ = cli.load_config("streamed", [])
    by_link, _ = cli.load_config(str(ROOT / "configs" / "streamed.toml"), [])
    packaged = (ROOT / "jaxgd" / "datasets" / "data" / "auto_mpg.csv").resolve()
    assert Path(by_name.data.path).resolve() == packaged
    assert Path(by_link.data.path).resolve() == packaged
    assert json.loads(results.to_json(by_name.to_dict()))["data"]["stream"] is True
