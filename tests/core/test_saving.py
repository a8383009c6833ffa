"""Tests for jaxgd.saving: result.save(path) and jaxgd.load(path), no pickle."""

import dataclasses
import json

import jax
import numpy as np
import pandas as pd
import pytest

import jaxgd
from jaxgd import saving
from jaxgd.files import ResultsError

X = np.array([[-1.0, 0.5], [0.0, -0.5], [1.0, 1.0], [2.0, 0.0]])
Y = np.array([1.0, 3.0, 5.5, 7.0])


def assert_same(saved, loaded):
    """Equal leaf by leaf (values, dtypes and shapes) with the same static metadata."""
    leaves, treedef = jax.tree_util.tree_flatten(saved)
    back, back_treedef = jax.tree_util.tree_flatten(loaded)
    assert type(loaded) is type(saved)
    assert back_treedef == treedef  # the structure, None fields and every static field
    for a, b in zip(leaves, back, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        assert (a.dtype, a.shape) == (b.dtype, b.shape)
        np.testing.assert_array_equal(a, b)
    for field in ("engine", "reference", "feature_names", "target_name"):
        assert getattr(loaded, field) == getattr(saved, field)


def round_trip(result, tmp_path):
    return jaxgd.load(result.save(tmp_path / "saved"))


def test_fit_round_trip_with_names(tmp_path):
    frame = pd.DataFrame(X, columns=["size", "age"])
    result = jaxgd.fit(frame, pd.Series(Y, name="price"), learning_rate=0.1, num_steps=30)
    loaded = round_trip(result, tmp_path)
    assert_same(result, loaded)
    assert loaded.feature_names == ("size", "age") and loaded.target_name == "price"
    assert loaded.optimal_loss == result.optimal_loss and float(loaded.gap) == float(result.gap)
    assert isinstance(loaded.params, jaxgd.LinearParams)


def test_float64_round_trip(tmp_path):
    with jax.enable_x64(True):
        result = jaxgd.fit(X, Y, learning_rate=0.1, num_steps=20)
        assert result.losses.dtype == np.float64
        assert_same(result, round_trip(result, tmp_path))


def test_sweep_round_trip_with_seeds_and_a_diverged_run(tmp_path):
    result = jaxgd.sweep(X, Y, learning_rates=[0.05, 3.0], seeds=[4, 7], num_steps=12)
    assert bool(result.diverged[1].all())  # NaN losses travel too
    loaded = round_trip(result, tmp_path)
    assert_same(result, loaded)
    assert loaded.best() == result.best()
    np.testing.assert_array_equal(loaded.run((0, 1)).losses, result.run((0, 1)).losses)


def test_grid_round_trip_with_an_l2_axis_and_fixed_values(tmp_path):
    result = jaxgd.grid_sweep(X, Y, grid={"l2": [0.0, 0.1], "momentum": [0.0, 0.5]},
                              learning_rate=0.05, optimizer="momentum", num_steps=5)
    assert np.ndim(result.optimal_loss) == 2  # one optimum per l2: an array reference
    loaded = round_trip(result, tmp_path)
    assert_same(result, loaded)
    assert loaded.axes == ("l2", "momentum") and loaded.fixed == result.fixed
    assert type(loaded.fixed["learning_rate"]) is float


def test_none_fields_and_mini_batch_fields_round_trip(tmp_path):
    plain = jaxgd.fit(X, Y, learning_rate=0.1, num_steps=5, reference=False)
    assert plain.reference is None and plain.epoch_losses is None and plain.aux is None
    assert_same(plain, round_trip(plain, tmp_path / "a"))
    batches = jaxgd.sweep(X, Y, learning_rates=[0.05, 0.1], batch_size=2, epochs=3)
    assert batches.epoch_losses is not None
    assert_same(batches, round_trip(batches, tmp_path / "b"))


def test_a_refined_search_round_trips_with_its_refinement(tmp_path):
    # A drawn l2 gives the refined runs a reference per run (an array, not a float); held-out
    # data add the validation fields to both the search and its refined runs.
    result = jaxgd.grid_sweep(
        X, Y, num_steps=20, num_samples=4, refine={"top": 2, "steps": 1, "backtracks": 1},
        sample={"learning_rate": ("log", 1e-3, 0.3), "l2": ("uniform", 0.0, 0.1)},
        validation=(X[:2] + 0.5, Y[:2]))
    assert result.refined.runs.final_validation_loss is not None
    loaded = round_trip(result, tmp_path)
    assert_same(result, loaded)  # the refinement's leaves and the refined runs' metadata too
    assert type(loaded.refined).__name__ == "Refinement"
    assert_same(result.refined.runs, loaded.refined.runs)
    assert np.ndim(loaded.refined.runs.optimal_loss) == 1
    assert loaded.refined.runs.point(loaded.refined.runs.best()) == result.refined.runs.point(
        result.refined.runs.best())
    names = set(np.load(tmp_path / "saved" / "history.npz"))
    assert {"refined_path_learning_rate", "refined_runs_losses", "refined_runs_weight",
            "refined_runs_optimal_loss", "losses", "weight"} <= names


def test_the_files_use_the_results_folders_names(tmp_path):
    result = jaxgd.sweep(X, Y, learning_rates=[0.05, 0.1], seeds=[0, 1], num_steps=5)
    folder = result.save(tmp_path / "run")
    assert sorted(p.name for p in folder.iterdir()) == ["history.npz", "summary.json"]
    with np.load(folder / "history.npz", allow_pickle=False) as npz:
        names = set(npz.files)
        assert npz["losses"].shape == (2, 2, 5)
    assert {"losses", "loss_steps", "final_loss", "converged_step", "diverged",
            "diverged_step", "snapshot_steps", "snapshot_weight", "snapshot_bias",
            "learning_rates", "seeds", "optimal_loss", "weight", "bias"} <= names
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["format"] == "jaxgd.result" and summary["kind"] == "SweepResult"


def test_an_existing_path_is_replaced_only_when_asked_and_only_if_saved(tmp_path):
    first = jaxgd.fit(X, Y, learning_rate=0.1, num_steps=5)
    second = jaxgd.fit(X, Y, learning_rate=0.2, num_steps=5)
    folder = first.save(tmp_path / "run")
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        second.save(folder)
    assert float(jaxgd.load(folder).learning_rate) == pytest.approx(0.1)
    second.save(folder, overwrite=True)
    assert float(jaxgd.load(folder).learning_rate) == pytest.approx(0.2)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match=r"notes.txt"):
        second.save(mine, overwrite=True)
    assert (mine / "notes.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        second.save(tmp_path / "file", overwrite=True)
    (tmp_path / "link").symlink_to(folder)
    with pytest.raises(FileExistsError, match="symbolic link"):
        second.save(tmp_path / "link", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "link", "mine", "run"]


def test_an_interrupted_save_leaves_nothing(tmp_path, monkeypatch):
    result = jaxgd.fit(X, Y, learning_rate=0.1, num_steps=5)

    def fail(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(saving, "write_atomic", fail)  # after history.npz, before the JSON
    with pytest.raises(KeyboardInterrupt):
        result.save(tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


def test_load_refuses_pickles_damage_and_missing_arrays(tmp_path):
    folder = jaxgd.fit(X, Y, learning_rate=0.1, num_steps=5).save(tmp_path / "run")
    history = folder / "history.npz"
    arrays = dict(np.load(history))
    np.savez(history, **{**arrays, "losses": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError, match="never unpickles"):
        jaxgd.load(folder)
    np.savez(history, **{k: v for k, v in arrays.items() if k != "final_loss"})
    with pytest.raises(ResultsError, match="no array 'final_loss'"):
        jaxgd.load(folder)
    (folder / "summary.json").write_text("{not json")
    with pytest.raises(ValueError, match="damaged or not JSON"):
        jaxgd.load(folder)
    (folder / "summary.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a saved jaxgd result"):
        jaxgd.load(folder)
    with pytest.raises(FileNotFoundError, match=r"no summary\.json"):
        jaxgd.load(tmp_path / "nowhere")


def test_save_refuses_what_it_cannot_write_back(tmp_path):
    result = jaxgd.fit(X, Y, learning_rate=0.1, num_steps=5)
    with pytest.raises(TypeError, match="cannot save aux: a tuple"):
        dataclasses.replace(result, aux=(np.ones(5), np.ones(5))).save(tmp_path / "a")
    with pytest.raises(TypeError, match="traced"):
        jax.jit(lambda a: jaxgd.fit(a, Y, learning_rate=0.1, num_steps=2).save(
            tmp_path / "b"))(X)
    assert list(tmp_path.iterdir()) == []
