"""Tests for jaxgd.results.saving: result.save(path) and jaxgd.load(path), no pickle."""

import dataclasses
import json

import jax
import numpy as np
import pandas as pd
import pytest

import jaxgd
from jaxgd.results import saving
from jaxgd.results.files import ResultsError

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
    # The fixed values are leaves like any other, so arrays (issue #23): they come back as
    # 0-d arrays of their dtype (assert_same compared them leaf by leaf).
    assert set(loaded.fixed) == {"learning_rate", "seed"}
    for name, value in loaded.fixed.items():
        assert isinstance(value, np.ndarray) and value.shape == (), name
        assert value.dtype == result.fixed[name].dtype
    assert float(loaded.fixed["learning_rate"]) == 0.05 and int(loaded.fixed["seed"]) == 0
    jax.tree_util.tree_map(lambda a: a.mean(), loaded)  # every leaf an array


def test_none_fields_and_mini_batch_fields_round_trip(tmp_path):
    plain = jaxgd.fit(X, Y, learning_rate=0.1, num_steps=5,
                      stopping=jaxgd.Stopping(reference=False))
    assert plain.reference is None and plain.epoch_losses is None and plain.aux is None
    assert_same(plain, round_trip(plain, tmp_path / "a"))
    batches = jaxgd.sweep(X, Y, learning_rates=[0.05, 0.1],
                          batches=jaxgd.MiniBatches(batch_size=2, epochs=3))
    assert batches.epoch_losses is not None
    assert_same(batches, round_trip(batches, tmp_path / "b"))


def test_a_refined_search_round_trips_with_its_refinement(tmp_path):
    # A drawn l2 gives the refined runs a reference per run (an array, not a float); held-out
    # data add the validation fields to both the search and its refined runs.
    result = jaxgd.grid_sweep(
        X, Y, num_steps=20,
        sample=jaxgd.Sample({"learning_rate": ("log", 1e-3, 0.3), "l2": ("uniform", 0.0, 0.1)},
                            4),
        refine={"top": 2, "steps": 1, "backtracks": 1},
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


def _saved_sweep(tmp_path):
    """A sweep with seeds and held-out data, saved: every kind of field is in its files."""
    result = jaxgd.sweep(X, Y, learning_rates=[0.05, 0.1], seeds=[0, 1], num_steps=5,
                         validation=(X[:2], Y[:2]))
    return result.save(tmp_path / "run")


def _errors_entry(summary):
    return summary["fields"]["errors"]["dict"]["training"]["field"]["dict"]


@pytest.mark.parametrize("damage, match", [
    (lambda s: s.update(format_version="2"), r'"format_version" must be a whole number, '
                                             r"got '2'"),
    (lambda s: s.update(format_version=True), '"format_version" must be a whole number'),
    (lambda s: s.update(kind=["SweepResult"]), r"unknown kind of result \['SweepResult'\]"),
    (lambda s: s.update(meta=3), r'"meta" must be a JSON object, got 3'),
    (lambda s: s.update(fields=["losses"]), r'"fields" must be a JSON object'),
    (lambda s: s["meta"].update(engine=5), r'"meta": engine must be a string, got 5'),
    (lambda s: s["meta"].update(feature_names=[1, 2]), r'"meta": feature_names must be a '
                                                       r"list of strings or null, got \[1, 2\]"),
    (lambda s: s["meta"].update(num_steps="5"), '"meta": num_steps must be a whole number or '
                                                "null, got '5'"),
    (lambda s: s.update(reference="sometimes"), r'"reference" must be "scalar", "array" or '
                                                r"null, got 'sometimes'"),
    (lambda s: _errors_entry(s).update(mse={}), r"field errors\['training'\]: entry 'mse' "
                                                'needs one of "json", "field", "array"'),
    (lambda s: _errors_entry(s).update(mse={"array": 3}), r"field errors\['training'\]: entry "
                                                          "'mse': \"array\" must name an array"),
    (lambda s: _errors_entry(s).update(mse=[1]), r"field errors\['training'\]: entry 'mse' "
                                                 r"must be a JSON object, got \[1\]"),
    (lambda s: s["fields"].update(params={"params": 3}), "field params: \"params\" must be a "
                                                         "prefix"),
    (lambda s: s["fields"].update(errors={"dict": 3}), "field errors: \"dict\" must be a "
                                                       "JSON object"),
    (lambda s: s["fields"].update(losses={"params": ""}), r'field losses must be stored as '
                                                          r'"array", not as \{"params": '),
])
def test_load_refuses_a_damaged_summary_naming_the_file(tmp_path, damage, match):
    folder = _saved_sweep(tmp_path)
    path = folder / "summary.json"
    summary = json.loads(path.read_text())
    damage(summary)
    path.write_text(json.dumps(summary))
    with pytest.raises(ResultsError, match=r"summary\.json: " + match):
        jaxgd.load(folder)


@pytest.mark.parametrize("name, shape, match", [
    ("losses", (2, 2, 4), r"losses has shape \(2, 2, 4\), not \(2, 2, 5\)"),
    ("validation_losses", (2, 5), r"validation_losses has shape \(2, 5\), not \(2, 2, 5\)"),
    ("final_loss", (3, 2), r"final_loss has shape \(3, 2\), not \(2, 2\)"),
    ("diverged", (), r"diverged has shape \(\), not \(2, 2\)"),
    ("weight", (2, 2, 3), r"params.weight has shape \(2, 2, 3\), not \(2, 2, 2\)"),
    ("snapshot_bias", (2, 2, 4), r"snapshots.bias has shape \(2, 2, 4\), not \(2, 2, 3\)"),
    ("errors_validation_mae", (2,), r"errors\['validation'\]\['mae'\] has shape \(2,\), "
                                    r"not \(2, 2\)"),
    ("learning_rates", (2, 1), r"learning_rates has shape \(2, 1\): a grid axis's values "
                               "must be 1-D"),
    ("loss_steps", (5, 1), r"loss_steps has shape \(5, 1\): the steps must be 1-D"),
    ("optimal_loss", (3,), r"optimal_loss has shape \(3,\), which does not broadcast "
                           r"against the grid's \(2, 2\)"),
])
def test_load_refuses_arrays_whose_shapes_disagree(tmp_path, name, shape, match):
    folder = _saved_sweep(tmp_path)
    history = folder / "history.npz"
    arrays = dict(np.load(history))
    summary = json.loads((folder / "summary.json").read_text())
    if name == "optimal_loss":  # stored as an array, not as a scalar
        summary["reference"] = "array"
        (folder / "summary.json").write_text(json.dumps(summary))
    np.savez(history, **{**arrays, name: np.zeros(shape, arrays[name].dtype)})
    with pytest.raises(ResultsError, match=r"history\.npz: " + match):
        jaxgd.load(folder)


def test_load_refuses_disagreeing_shapes_of_grids_fits_and_refinements(tmp_path):
    def damaged(result, name, shape, where):
        folder = result.save(tmp_path / where)
        arrays = dict(np.load(folder / "history.npz"))
        np.savez(folder / "history.npz", **{**arrays, name: np.zeros(shape)})
        return folder

    fit = jaxgd.fit(pd.DataFrame(X, columns=["a", "b"]), Y, learning_rate=0.1, num_steps=5)
    with pytest.raises(ResultsError, match=r"history\.npz: learning_rate has shape \(2,\), "
                                           r"not \(\)"):
        jaxgd.load(damaged(fit, "learning_rate", (2,), "fit"))
    with pytest.raises(ResultsError, match=r"history\.npz: params.weight has shape \(3,\), "
                                           r"not \(2,\): .* and 2 features"):
        jaxgd.load(damaged(fit, "weight", (3,), "width"))
    grid = jaxgd.grid_sweep(X, Y, grid={"l2": [0.0, 0.1], "momentum": [0.0, 0.5, 0.9]},
                            learning_rate=0.05, optimizer="momentum", num_steps=5)
    with pytest.raises(ResultsError, match=r"history\.npz: final_loss has shape \(2, 2\), "
                                           r"not \(2, 3\)"):
        jaxgd.load(damaged(grid, "final_loss", (2, 2), "grid"))
    refined = jaxgd.grid_sweep(
        X, Y, num_steps=20, sample=jaxgd.Sample({"learning_rate": ("log", 1e-3, 0.3)}, 4),
                               refine={"top": 2, "steps": 1, "backtracks": 1})
    with pytest.raises(ResultsError, match=r"history\.npz: refined_runs_losses has shape "
                                           r"\(3, 20\), not \(2, 20\)"):
        jaxgd.load(damaged(refined, "refined_runs_losses", (3, 20), "runs"))
    with pytest.raises(ResultsError, match=r"history\.npz: refined.start has shape \(2, 2\), "
                                           r"not \(2, 1\)"):
        jaxgd.load(damaged(refined, "refined_start", (2, 2), "start"))
    with pytest.raises(ResultsError, match=r"history\.npz: grid_values_learning_rate has "
                                           r"shape \(3,\), not \(4,\)"):
        jaxgd.load(damaged(refined, "grid_values_learning_rate", (3,), "sampled"))


@pytest.mark.parametrize("text, match", [
    ("[" * 100_000 + "]" * 100_000, "is damaged or not JSON: too deeply nested"),
    ('{"format": "jaxgd.result", "meta": ' + '{"a": ' * 100_000 + "}" * 100_000 + "}",
     "is damaged or not JSON: too deeply nested"),
    # Within the parser's reach, beyond what reading the entries may recurse.
    ('{"format": "jaxgd.result", "kind": "FitResult", "meta": {"feature_names": '
     + "[" * 600 + "]" * 600 + "}}", "is nested too deeply to read"),
], ids=["arrays", "a-value", "within-the-parser"])
def test_load_refuses_json_nested_too_deeply_naming_the_file(tmp_path, text, match):
    # Python's JSON parser recurses once a level: past its limit a RecursionError, which
    # must be a damaged file like any other.
    folder = jaxgd.fit(X, Y, learning_rate=0.1, num_steps=5).save(tmp_path / "run")
    (folder / "summary.json").write_text(text)
    with pytest.raises(ResultsError, match=r"summary\.json " + match):
        jaxgd.load(folder)
    if "not JSON" in match:  # nor taken for a saved result that overwrite may replace
        with pytest.raises(FileExistsError, match="not a saved jaxgd result"):
            jaxgd.fit(X, Y, learning_rate=0.1, num_steps=5).save(folder, overwrite=True)


def test_a_folder_of_format_1_still_loads(tmp_path):
    # Format 1 (before every leaf was an array) wrote a grid's fixed values as JSON numbers
    # under the same tag; format 2 writes them as arrays. A format-1 folder reads as before,
    # its numbers as 0-d arrays.
    X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
    grid = jaxgd.grid_sweep(X, y, grid={"learning_rate": [0.1, 0.3]}, num_steps=20)
    folder = grid.save(tmp_path / "grid")
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["format"], summary["format_version"]) == ("jaxgd.result", 2)
    fixed = summary["fields"]["fixed"]["dict"]
    assert fixed["seed"] == {"array": "fixed_seed"}
    summary["format_version"] = 1
    summary["fields"]["fixed"]["dict"] = {"l2": {"json": 0.0}, "seed": {"json": 0}}
    (folder / "summary.json").write_text(json.dumps(summary))
    back = jaxgd.load(folder)
    assert back.fixed["seed"].shape == () and int(back.fixed["seed"]) == 0
    np.testing.assert_array_equal(back.losses, grid.losses)
