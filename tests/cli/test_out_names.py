"""An --out whose names do not fit the filesystem is refused before any work, with exit 2 and
a message; the lock file's own errors are messages too. Otherwise a run computes, cannot
write its results, and fails the same way on every --resume."""

import pytest

from jaxgd import cli
from jaxgd.cli import lock, results

SHORT = ["--set", "train.num_steps=30", "--quiet"]
NAME_MAX = 255  # of the filesystem the tests write on (asserted below)


@pytest.fixture
def no_compute(monkeypatch):
    from jaxgd.cli import plan

    def never(*args, **kwargs):
        raise AssertionError("the run computed before --out was checked")

    monkeypatch.setattr(plan, "prepare", never)


@pytest.fixture(autouse=True)
def usual_filesystem(tmp_path):
    import os

    if os.pathconf(tmp_path, "PC_NAME_MAX") != NAME_MAX:
        pytest.skip("the lengths below are those of a filesystem with 255-character names")


@pytest.mark.parametrize("length", [242, 244, 250])
def test_a_name_that_leaves_no_room_for_the_temporary_ones_is_refused(tmp_path, capsys,
                                                                      no_compute, length):
    out = tmp_path / ("x" * length)
    assert cli.main(["run", "mlcc_cars", "--out", str(out), *SHORT]) == 2
    err = capsys.readouterr().err
    assert f"its name has {length} characters" in err and "at most 241" in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_the_longest_name_allowed_is_written(tmp_path, capsys):
    out = tmp_path / ("x" * (NAME_MAX - results.TEMPORARY_EXTRA))
    assert cli.main(["run", "mlcc_cars", "--out", str(out), *SHORT]) == 0
    assert (out / results.SUMMARY).is_file()
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_a_folder_name_beyond_the_limit_is_refused(tmp_path, capsys, no_compute):
    out = tmp_path / ("y" * 256) / "run"
    assert cli.main(["run", "mlcc_cars", "--out", str(out), *SHORT]) == 2
    err = capsys.readouterr().err
    assert "a folder name in it has 256 characters" in err and "Traceback" not in err
    assert cli.main(["run", "mlcc_cars", "--out", str(out), "--resume", *SHORT]) == 2
    assert "has 256 characters" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_path_beyond_the_limit_is_refused(tmp_path, capsys, no_compute):
    out = tmp_path.joinpath(*["z" * 200] * 20)  # every name fits, the whole path does not
    assert cli.main(["lr-range", "mlcc_cars", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"its path has {len(str(out))} characters" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_lock_file_that_cannot_be_made_is_a_message(tmp_path, capsys, monkeypatch,
                                                      no_compute):
    out = tmp_path / "sub" / ("x" * 250)  # .NAME.lock: 256 characters
    with pytest.raises(results.DestinationError, match="cannot make the lock file"):
        lock.OutputLock(out).acquire()
    assert list(tmp_path.iterdir()) == []  # the folder made for it is removed
    monkeypatch.setattr(results, "check_name_lengths", lambda out_dir: None)
    assert cli.main(["run", "mlcc_cars", "--out", str(out), *SHORT]) == 2
    err = capsys.readouterr().err
    assert "cannot make the lock file" in err and "File name too long" in err
    assert "Traceback" not in err


def test_a_relative_out_in_a_deleted_folder_is_a_message(tmp_path, capsys, monkeypatch,
                                                         no_compute):
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert cli.main(["run", "mlcc_cars", "--out", "rel", *SHORT]) == 2
    assert "the current folder is gone" in capsys.readouterr().err
