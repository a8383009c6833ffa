"""A clear message, not a traceback or silence: empty --out, figures that do not apply, write
errors, and bench's --out checked before any measuring."""

import errno

import pytest

from jaxgd import cli
from jaxgd.cli import results

SHORT = ["--set", "train.num_steps=30", "--quiet"]


def test_an_empty_out_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "mlcc_cars", "--out", "", *SHORT]) == 2
    assert "--out is empty" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_a_figure_that_does_not_apply_is_named_with_its_reason(tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(["run", "auto_mpg_all_features", "--out", str(out), *SHORT,
                     "--set", "output.figures=['loss_surface', 'loss_curve']"])
    assert code == 0
    err = capsys.readouterr().err
    assert "figure loss_surface not drawn:" in err and "feature" in err
    assert (out / "loss_curve.png").exists() and not (out / "loss_surface.png").exists()


def test_a_full_disk_while_writing_is_a_message_and_the_chunks_are_kept(tmp_path, capsys,
                                                                         monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(results, "write_folder", full)
    out = tmp_path / "out"
    assert cli.main(["run", "mlcc_cars", "--out", str(out), *SHORT]) == 2
    err = capsys.readouterr().err
    assert "cannot write the results" in err and "No space left on device" in err
    assert "--resume" in err and "Traceback" not in err
    monkeypatch.undo()
    assert cli.main(["run", "mlcc_cars", "--out", str(out), "--resume", *SHORT]) == 0
    assert (out / "history.npz").exists()


def test_plot_into_a_folder_it_cannot_write_is_a_message(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert cli.main(["run", "mlcc_cars", "--out", str(out), *SHORT]) == 0
    from jaxgd import figures

    def read_only(*args, **kwargs):  # root ignores permissions: stand in for the OS
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(figures, "save_figure", read_only)
    assert cli.main(["plot", str(out)]) == 2
    assert "cannot write the figures" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["file", "empty"])
def test_bench_checks_its_out_before_measuring(tmp_path, capsys, monkeypatch, kind):
    import jaxgd._bench

    def never(*args, **kwargs):
        raise AssertionError("the benchmark ran before --out was checked")

    monkeypatch.setattr(jaxgd._bench, "run_benchmarks", never)
    target = tmp_path / "report.txt"
    target.write_text("mine")
    assert cli.main(["bench", "--out", str(target) if kind == "file" else ""]) == 2
    assert "must be a folder" in capsys.readouterr().err
    assert target.read_text() == "mine"


@pytest.mark.parametrize(("keywords", "key"), [
    ({"num_steps": 0}, "train.num_steps"),
    ({"num_steps": 5, "log_every": 0}, "train.log_every"),
    ({"num_steps": 5, "l2": -1.0}, "train.l2"),
])
def test_the_librarys_refusal_names_the_config_key(keywords, key):
    """The library checks the numbers and names its argument; the command line says which
    config key that is (``settings.reworded``), the rest of the library's message kept."""
    import numpy as np

    import jaxgd
    from jaxgd.api.settings import group
    from jaxgd.cli.settings import reworded

    X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
    with pytest.raises(ValueError) as refused:
        jaxgd.grid_sweep(X, y, grid={"learning_rate": [0.1]}, **group(keywords))
    message = str(reworded(refused.value))
    assert message.startswith(key) and message.endswith(str(refused.value).split(" ", 1)[1])
