import json
import os
import stat

import numpy as np
import pytest

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
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(results.ResultsExistError, match="pass --overwrite"), \
            results.staging(out, overwrite=False):
        pass
    assert (out / "mine.txt").read_text() == "keep"
    with results.staging(out, overwrite=True) as folder:
        (folder / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
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
    results.write_history(tmp_path, history)
    results.write_summary(tmp_path, {"x": 1})
    results.write_losses_csv(tmp_path, history)
    loaded, summary = results.read(tmp_path)
    assert np.array_equal(loaded["losses"], history["losses"]) and summary == {"x": 1}
    lines = (tmp_path / "losses.csv").read_text().splitlines()
    assert lines[0] == "learning_rate,seed,step,loss" and lines[4] == "0.1,1,0,3"
    with pytest.raises(FileNotFoundError, match="not a jaxgd results folder"):
        results.read(tmp_path / "elsewhere")
