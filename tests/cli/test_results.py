import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from jaxgd import cli
from jaxgd.cli import results


def test_staging_moves_a_complete_folder_into_place(tmp_path):
    out = tmp_path / "run"
    with results.staging(out, overwrite=False) as folder:
        (folder / "a.txt").write_text("a")
        assert not out.exists()  # nothing visible until the block is done
    assert (out / "a.txt").read_text() == "a"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    mode = stat.S_IMODE(os.stat(out / "a.txt").st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_a_failure_leaves_nothing_behind(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError), results.staging(out, overwrite=False) as folder:
        (folder / "a.txt").write_text("half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_existing_results_need_overwrite(tmp_path):
    out = tmp_path / "run"
    with results.staging(out, overwrite=False) as folder:
        (folder / "summary.json").write_text("old")
    assert (out / results.MARKER).is_file()  # every results folder is marked as jaxgd's
    with pytest.raises(results.ResultsExistError, match="pass --overwrite"), \
            results.staging(out, overwrite=False):
        pass
    assert (out / "summary.json").read_text() == "old"
    with results.staging(out, overwrite=True) as folder:
        (folder / "losses.csv").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == [results.MARKER, "losses.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_json_has_no_nan():
    text = results.to_json({"a": float("nan"), "b": [np.float32(1.5), float("inf")]})
    assert json.loads(text) == {"a": None, "b": [1.5, None]}


def test_csv_subsampling_keeps_the_ends_and_fits_the_limit():
    steps = results.csv_steps(1000, 8192, max_rows=1_000_000)
    assert steps[0] == 0 and steps[-1] == 999
    assert steps.size * 8192 <= 1_000_000
    assert np.array_equal(results.csv_steps(100, 10), np.arange(100))


def test_history_round_trip_without_pickle(tmp_path):
    history = {"losses": np.arange(6.0).reshape(1, 2, 3), "learning_rates": np.array([0.1]),
               "seeds": np.array([0, 1])}
    results.write_folder(tmp_path, history, {"x": 1})
    results.write_losses_csv(tmp_path, history)
    loaded, summary = results.read(tmp_path)
    assert np.array_equal(loaded["losses"], history["losses"]) and summary == {"x": 1}
    lines = (tmp_path / "losses.csv").read_text().splitlines()
    assert lines[0] == "learning_rate,seed,step,loss" and lines[4] == "0.1,1,0,3"
    with pytest.raises(FileNotFoundError, match="not a jaxgd results folder"):
        results.read(tmp_path / "elsewhere")


# ------------------------------------------------------------------ what --out may replace

QUICK = ["--quiet", "--set", "train.num_steps=20", "--set", "output.figures=[]"]


def run(*args, config="mlcc_cars"):
    return cli.main(["run", str(config), *map(str, args), *QUICK])


def tree(root):
    """Every path under ``root`` with its bytes (files) or target (links); links not followed."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            key = path.relative_to(root).as_posix()
            found[key] = (os.readlink(path) if path.is_symlink() else
                          path.read_bytes() if path.is_file() else None)
    return found


def refused(status, err, *messages):
    assert status == 2, err
    assert "Traceback" not in err and err.startswith("jaxgd: error: "), err
    for message in messages:
        assert message in err, err


def test_jaxgd_load_opens_a_run_folder_with_the_runs_numbers(tmp_path, capsys):
    """One folder format: the library reads back what ``jaxgd run`` wrote, as the
    ``GridResult`` of the whole run, with the numbers of its history.npz and summary.json."""
    import jaxgd

    out = tmp_path / "run"
    assert run("--out", out, "--chunk-size", 2, "--set", "data.standardize=true",
               "--set", "optimizer.grid={ l2 = [0.0, 0.5] }") == 0, capsys.readouterr().err
    history, summary = results.read(out)
    loaded = jaxgd.load(out)
    assert type(loaded).__name__ == "GridResult"
    assert loaded.axes == ("learning_rate", "l2", "seed") and loaded.losses.shape[:3] == (3, 2, 1)
    for name in ("losses", "final_loss", "converged_step", "diverged", "diverged_step"):
        assert np.array_equal(getattr(loaded, name), history[name], equal_nan=True), name
    assert np.array_equal(loaded.values["learning_rate"], history["learning_rates"])
    assert loaded.best() == tuple(history["best_index"])
    assert loaded.point(loaded.best())["learning_rate"] == summary["best_run"]["learning_rate"]
    assert loaded.feature_names == tuple(summary["data"]["features"])
    # The snapshots come back in the units the runs trained in (standardized here), beside
    # the command line's own in original units: the two differ, both are kept.
    assert not np.array_equal(loaded.snapshots.weight, history["snapshot_weight"])
    assert np.shape(loaded.snapshots.weight) == np.shape(history["snapshot_weight"])


def test_overwrite_replaces_only_folders_jaxgd_wrote(tmp_path, capsys):
    project = tmp_path / "p"
    (project / "src").mkdir(parents=True)
    (project / ".git").mkdir()
    (project / "src" / "main.py").write_text("x")
    before = tree(tmp_path)
    refused(run("--out", project, "--overwrite"), capsys.readouterr().err,
            "was not written by jaxgd", ".git, src are not files jaxgd writes")
    assert tree(tmp_path) == before
    out = tmp_path / "out"
    assert run("--out", out) == 0
    (out / "notes.txt").write_text("mine")  # a results folder with a file of yours in it
    refused(run("--out", out, "--overwrite"), capsys.readouterr().err,
            "notes.txt is not a file jaxgd writes")
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    assert run("--out", out, "--overwrite") == 0
    assert (out / results.MARKER).is_file() and (out / "summary.json").is_file()


def test_results_of_a_jaxgd_without_the_marker_are_still_replaced(tmp_path, capsys):
    out = tmp_path / "out"
    assert run("--out", out) == 0
    (out / results.MARKER).unlink()  # as an older jaxgd wrote them: summary and history
    assert run("--out", out, "--overwrite", "--set", "model.seed=3") == 0
    assert json.loads((out / "summary.json").read_text())["config"]["model"]["seed"] == 3
    (out / results.MARKER).unlink()
    (out / "history.npz").unlink()  # a summary.json alone proves nothing
    refused(run("--out", out, "--overwrite"), capsys.readouterr().err,
            "no .jaxgd-results marker in it")
    assert (out / "summary.json").is_file()


def test_overwrite_never_deletes_the_inputs_of_the_run(tmp_path, capsys):
    out = tmp_path / "out"
    assert run("--out", out) == 0
    config = tmp_path / "c.toml"  # reads the losses.csv of the results it would replace
    config.write_text("[data]\ndataset = 'csv'\npath = 'out/losses.csv'\nfeatures = ['step']\n"
                      "target = 'loss'\n[optimizer]\nlearning_rate = 1e-6\n")
    before = tree(tmp_path)
    refused(run("--out", out, "--overwrite", config=config), capsys.readouterr().err,
            "losses.csv is an input of this run and lies inside --out")
    inside = out / "c.toml"  # a config kept in the results folder
    inside.write_text("[data]\ndataset = 'mlcc_cars'\n[optimizer]\nlearning_rate = 0.03\n")
    refused(run("--out", out, "--overwrite", config=inside), capsys.readouterr().err,
            "c.toml is an input of this run")
    inside.unlink()
    assert tree(tmp_path) == before


@pytest.mark.parametrize("where", [".", "..", "sub/..", "sub/../.."])
def test_out_is_never_the_current_folder_or_one_of_its_parents(tmp_path, monkeypatch, capsys,
                                                                where):
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "keep.txt").write_text("mine")
    monkeypatch.chdir(work)
    before = tree(tmp_path)
    for flags in ([], ["--overwrite"], ["--resume"]):
        refused(run("--out", where, *flags), capsys.readouterr().err,
                "is the current folder or one of its parents")
    assert tree(tmp_path) == before


def test_a_symlinked_out_is_refused_and_nothing_is_left_behind(tmp_path, capsys):
    target, empty = tmp_path / "target", tmp_path / "empty"
    assert run("--out", target) == 0
    empty.mkdir()
    (tmp_path / "link").symlink_to(target)
    (tmp_path / "link-to-empty").symlink_to(empty)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    before = tree(tmp_path)
    for link in ("link", "link-to-empty", "dangling", "link/"):
        for flags in ([], ["--overwrite"], ["--resume"]):
            refused(run("--out", f"{tmp_path}/{link}", *flags), capsys.readouterr().err,
                    "is a symbolic link", "pass the folder it points to")
    assert tree(tmp_path) == before


def test_stale_temporary_folders_of_the_out_are_swept(tmp_path, capsys):
    out = tmp_path / "out"
    assert run("--out", out) == 0
    # As a SIGKILL leaves them: while writing (with a half-written file), just after the
    # swap (holding the replaced folder), while replacing by two renames.
    shutil.copytree(out, tmp_path / ".out.tmp-abcd1234")
    (tmp_path / ".out.tmp-abcd1234" / ".summary.json.k2j4h5").write_text("{")
    (tmp_path / ".out.tmp-0000_000").mkdir()
    shutil.copytree(out, tmp_path / ".out.old-efgh5678" / "out")
    # Not provably jaxgd's, or not this --out's: left alone.
    (tmp_path / ".out.tmp-zzzzzzzz").mkdir()
    (tmp_path / ".out.tmp-zzzzzzzz" / "notes.txt").write_text("mine")
    shutil.copytree(out, tmp_path / ".other.tmp-abcd1234")
    shutil.copytree(out, tmp_path / ".out.tmp-abcd1234-mine")
    (tmp_path / ".out.tmp-linklink").symlink_to(out)
    assert run("--out", out, "--overwrite") == 0
    err = capsys.readouterr().err
    assert err.count("left by a stopped run") == 3, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".other.tmp-abcd1234", ".out.tmp-abcd1234-mine", ".out.tmp-linklink",
        ".out.tmp-zzzzzzzz", "out"]
    assert (tmp_path / ".out.tmp-zzzzzzzz" / "notes.txt").read_text() == "mine"


SYNTHETIC_KEYS = ("n_samples", "n_features", "noise", "seed")


def test_summary_records_only_the_data_keys_of_its_dataset(tmp_path, capsys):
    """n_samples, n_features, noise and seed shape synthetic data only: summary.json listed
    them for every dataset (issue #22). Folders written before, which have them, still
    plot."""
    out, synthetic = tmp_path / "cars", tmp_path / "synthetic"
    assert run("--out", out) == 0 and run("--out", synthetic, config="synthetic") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert not set(SYNTHETIC_KEYS) & set(summary["config"]["data"]), summary["config"]["data"]
    data = json.loads((synthetic / "summary.json").read_text())["config"]["data"]
    assert all(key in data for key in SYNTHETIC_KEYS), data
    older = dict(zip(SYNTHETIC_KEYS, (200, 1, 0.5, 0), strict=True))
    summary["config"]["data"].update(older)  # as written before
    summary["config"]["output"]["figures"] = ["loss_curve"]
    (out / "summary.json").write_text(json.dumps(summary))
    capsys.readouterr()
    assert cli.main(["plot", str(out)]) == 0, capsys.readouterr().err
    assert (out / "loss_curve.png").is_file()
