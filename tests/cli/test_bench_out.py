"""``jaxgd bench --out`` follows the rules of ``jaxgd run --out``: a folder of its own, marked
as jaxgd's, refused when it holds your files, replaced whole and only with --overwrite. The
harness does not measure here: it returns a saved bench.json (``measured``)."""

import json
from pathlib import Path

import pytest

from jaxgd import cli
from jaxgd.cli import results

SAVED = Path(__file__).parents[2] / "benchmarks" / "gpu" / "bench_h100.json"
WRITTEN = [results.MARKER, "bench.json", "report.md", "scaling.png"]


@pytest.fixture
def measured(monkeypatch):
    """``jaxgd bench`` without measuring; ``measured.count`` says how often it "measured"."""
    import jaxgd._bench

    saved = json.loads(SAVED.read_text())
    calls = []

    def run_benchmarks(config):
        calls.append(config)
        return saved

    monkeypatch.setattr(jaxgd._bench, "run_benchmarks", run_benchmarks)
    return calls


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_folder_of_yours_is_refused_before_measuring_even_with_overwrite(tmp_path, capsys,
                                                                           measured):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "report.md").write_text("my notes")
    (project / "bench.json").write_text("{}")
    assert cli.main(["bench", "--out", str(project)]) == 2
    assert "exists already: pass --overwrite" in capsys.readouterr().err
    assert cli.main(["bench", "--out", str(project), "--overwrite"]) == 2
    assert "was not written by jaxgd" in capsys.readouterr().err
    assert not measured
    assert (project / "report.md").read_text() == "my notes"
    assert names(tmp_path) == ["proj"] and names(project) == ["bench.json", "report.md"]


@pytest.mark.parametrize("out", [".", ".."])
def test_out_is_never_the_current_folder_or_a_parent(tmp_path, capsys, monkeypatch, measured,
                                                     out):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert cli.main(["bench", "--out", out]) == 2
    assert "is the current folder or one of its parents" in capsys.readouterr().err
    assert not measured and names(tmp_path) == ["here"] and names(here) == []


def test_overwrite_replaces_the_whole_folder_no_older_file_stays(tmp_path, capsys, measured,
                                                                 monkeypatch):
    out = tmp_path / "bench"
    assert cli.main(["bench", "--out", str(out)]) == 0
    assert names(out) == WRITTEN
    assert cli.main(["bench", "--out", str(out)]) == 2
    assert "exists already" in capsys.readouterr().err
    import jaxgd._bench.report

    monkeypatch.setattr(jaxgd._bench.report, "plot_scaling", lambda *args: False)
    assert cli.main(["bench", "--out", str(out), "--overwrite"]) == 0
    assert names(out) == WRITTEN[:3]  # the scaling.png of the run before is gone with it
    assert "scaling.png" not in (out / "report.md").read_text()
    assert names(tmp_path) == ["bench"]  # no lock file, no temporary folder left


def test_a_report_of_yours_in_a_run_folder_is_yours(tmp_path, capsys, measured):
    # bench.json and report.md are jaxgd's only in a folder whose marker lists them.
    out = tmp_path / "run"
    with results.staging(out, overwrite=False) as folder:
        (folder / "summary.json").write_text("{}")
    (out / "report.md").write_text("my notes")
    assert cli.main(["bench", "--out", str(out), "--overwrite"]) == 2
    assert "report.md is not a file jaxgd writes" in capsys.readouterr().err
    assert (out / "report.md").read_text() == "my notes" and not measured


def test_a_file_of_yours_added_to_a_bench_folder_is_kept(tmp_path, capsys, measured):
    out = tmp_path / "bench"
    assert cli.main(["bench", "--out", str(out)]) == 0
    (out / "notes.txt").write_text("mine")
    assert cli.main(["bench", "--out", str(out), "--overwrite"]) == 2
    assert "notes.txt is not a file jaxgd writes" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"


def test_a_name_too_long_is_refused_before_measuring(tmp_path, capsys, measured):
    assert cli.main(["bench", "--out", str(tmp_path / ("b" * 250))]) == 2
    assert "its name has 250 characters" in capsys.readouterr().err
    assert not measured and names(tmp_path) == []


def test_a_killed_bench_leaves_temporary_folders_the_next_run_sweeps(tmp_path):
    out = tmp_path / "bench"
    stale = tmp_path / ".bench.tmp-abcd1234"  # as staging left it, killed while writing
    stale.mkdir()
    (stale / results.MARKER).write_text(json.dumps({"format": 1, "files": ["report.md"]}))
    (stale / ".report.md.x1y2z3w4").write_text("half")
    assert results.sweep_staging(out) == [stale.name]
    assert names(tmp_path) == []
