"""End to end through a subprocess, as a user runs it; usage and config errors, which
stop before any computation, in this process (``jaxgd_here``): a subprocess would only add
the seconds of importing JAX to each."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import as_in_a_terminal

ROOT = Path(__file__).parents[2]
PNG = b"\x89PNG\r\n\x1a\n"


def jaxgd(*args, cwd=None, timeout=240):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    return subprocess.run([sys.executable, "-m", "jaxgd", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def jaxgd_here(capsys, monkeypatch):
    """``jaxgd ARGS`` run by ``jaxgd.cli.main`` in this process (in ``cwd`` if given);
    returns (exit status, stdout, stderr)."""
    from jaxgd import cli

    def run(*args, cwd=None):
        if cwd is not None:
            monkeypatch.chdir(cwd)
        try:
            status = cli.main([str(a) for a in args])
        except SystemExit as done:  # argparse: --help (0) and usage errors (2)
            status = done.code
        out, err = capsys.readouterr()
        return status, out, err
    return run


@pytest.fixture(scope="module")
def course_run(tmp_path_factory):
    """The course exercise's config, run once for the tests that read its folder."""
    out = tmp_path_factory.mktemp("cli") / "cars"
    done = jaxgd("run", ROOT / "configs" / "mlcc_cars.toml", "--out", out)
    return done, out


def test_run_prints_the_table_and_writes_the_folder(course_run):
    done, out = course_run
    assert done.returncode == 0, done.stderr
    assert "learning rate" in done.stdout and "converged at" in done.stdout
    assert f"results: {out}" in done.stdout and done.stdout.count("figure: ") == 5
    names = sorted(p.name for p in out.iterdir())
    assert names == [".jaxgd-results", "history.npz", "loss_curve.png", "loss_surface.png",
                     "losses.csv", "snapshots.png", "summary.json", "sweep_curves.png",
                     "sweep_summary.png"]
    for png in out.glob("*.png"):
        data = png.read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000


def test_course_exercise_converges_crawls_and_diverges(course_run):
    _, out = course_run
    summary = json.loads((out / "summary.json").read_text())
    runs = {run["learning_rate"]: run for run in summary["runs"]}
    assert runs[0.03]["converged_step"] > 0 and not runs[0.03]["diverged"]
    assert runs[1.1e-05]["converged_step"] == -1 and not runs[1.1e-05]["diverged"]
    assert runs[1.0]["diverged"] and runs[1.0]["diverged_step"] < 10
    assert summary["best_run"]["learning_rate"] == 0.03
    assert summary["best_run"]["gap_to_optimum"] < 0.01
    for key in ("config", "versions", "device", "data", "least_squares", "stability",
                "timing_seconds"):
        assert key in summary
    assert summary["data"]["rows"] == 7 and summary["versions"]["jax"]
    assert summary["stability"]["max_learning_rate"] == pytest.approx(0.0698, rel=1e-3)
    assert set(summary["timing_seconds"]) == {"total", "compile", "run"}


def test_plot_redraws_the_same_figures(course_run, tmp_path):
    _, out = course_run
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in out.iterdir():
        if path.suffix != ".png":
            (copy / path.name).write_bytes(path.read_bytes())
    done = jaxgd("plot", copy)
    assert done.returncode == 0, done.stderr
    for png in out.glob("*.png"):
        assert (copy / png.name).read_bytes() == png.read_bytes()


def test_default_run_works_from_any_folder(tmp_path):
    done = jaxgd("run", "--quiet", "--set", "train.num_steps=200", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and (tmp_path / "runs" / "auto_mpg" / "summary.json").is_file()
    again = jaxgd("run", "--set", "train.num_steps=200", cwd=tmp_path)
    assert again.returncode == 2 and "pass --overwrite" in again.stderr
    replaced = jaxgd("run", "--quiet", "--overwrite", "--set", "output.figures=[]",
                     "--set", "train.num_steps=100", cwd=tmp_path)
    assert replaced.returncode == 0, replaced.stderr
    assert not list((tmp_path / "runs" / "auto_mpg").glob("*.png"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "train.num_stepz=3"], "unknown key 'train.num_stepz'"),
        (["--set", "optimizer.learning_rates=[0.1, -1]"],
         "optimizer.learning_rates must be finite and positive"),
        (["nowhere.toml"], "config file not found: nowhere.toml"),
        (["--set", "data.features=['wieght']"], "data: unknown"),
        (["--set", "data.dataset=csv", "--set", "data.path=missing.csv",
          "--set", "data.features=['a']", "--set", "data.target=b"], "missing.csv"),
    ],
)
def test_bad_configs_exit_2_with_a_message_and_no_folder(tmp_path, jaxgd_here, args, message):
    status, _, err = jaxgd_here("run", *args, "--out", tmp_path / "out", cwd=tmp_path)
    assert status == 2
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()


def test_usage_errors_and_help(jaxgd_here):
    assert jaxgd_here("frobnicate")[0] == 2
    for command in ("run", "plot", "info", "bench"):
        status, out, _ = jaxgd_here(command, "--help")
        assert status == 0 and "usage: jaxgd " + command in out
    status, _, err = jaxgd_here("plot", "/nonexistent/run")
    assert status == 2 and "not a jaxgd results folder" in err


def test_info_names_versions_and_devices():
    done = jaxgd("info")
    assert done.returncode == 0
    for word in ("jaxgd", "jax", "jaxlib", "optax", "backend", "cpu"):
        assert word in done.stdout


def test_ctrl_c_stops_cleanly_and_writes_nothing(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    args = [sys.executable, "-m", "jaxgd", "run", "--out", tmp_path / "out", "--progress",
            "--set", "train.num_steps=10000000", "--set", "output.figures=[]"]
    process = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, preexec_fn=as_in_a_terminal)
    seen = b""
    while b"steps/s" not in seen:  # wait until the compiled loop is running and reporting
        chunk = os.read(process.stderr.fileno(), 4096)
        assert chunk, f"the run ended early: {seen!r}"
        seen += chunk
    sent = time.perf_counter()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert time.perf_counter() - sent < 10  # the whole run would take ~30 s
    assert b"interrupted; nothing was written" in stderr
    assert list(tmp_path.iterdir()) == []


def test_a_second_run_on_the_same_out_is_refused_while_the_first_runs(tmp_path, capsys):
    from jaxgd import cli

    env = {**os.environ, "PYTHONPATH": str(ROOT), "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    out, lock = tmp_path / "out", tmp_path / ".out.lock"
    first = subprocess.Popen(
        [sys.executable, "-m", "jaxgd", "run", "mlcc_cars", "--out", out, "--quiet",
         "--set", "train.num_steps=100000000", "--set", "output.figures=[]"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (lock.is_file() and lock.read_text().strip() == str(first.pid)):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run took no lock"
            time.sleep(0.01)
        second = jaxgd("run", "synthetic", "--out", out, "--set", "train.num_steps=50")
        assert second.returncode == 2, second.stderr
        assert f"being written by another jaxgd run (process {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        for flag in ("--overwrite", "--resume"):
            assert cli.main(["run", "synthetic", "--out", str(out), flag]) == 2
            assert f"(process {first.pid}" in capsys.readouterr().err
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        _, stderr = first.communicate(timeout=60)
    assert first.returncode == 143, stderr
    assert list(tmp_path.iterdir()) == []  # nothing was saved, and the lock file is gone
    done = jaxgd("run", "mlcc_cars", "--out", out, "--quiet", "--set", "train.num_steps=50",
                 "--set", "output.figures=[]")
    assert done.returncode == 0, done.stderr  # the lock died with its holder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_gap_below_the_optimum_by_float32_rounding_is_reported_as_zero(tmp_path):
    # float32 ends this run 8e-11 below the float64 optimum 0.0126 (as jaxgd.fit does,
    # tests/api/test_fit.py): summary.json and the table say 0, not a negative gap.
    from tests.conftest import well_conditioned
    X, y = well_conditioned(2)
    (tmp_path / "d.csv").write_text("a,b,c,t\n" + "".join(
        ",".join(repr(float(v)) for v in (*row, target)) + "\n"
        for row, target in zip(X, y, strict=True)))
    (tmp_path / "c.toml").write_text(
        "[data]\ndataset = 'csv'\npath = 'd.csv'\nfeatures = ['a', 'b', 'c']\n"
        "target = 't'\n[optimizer]\nlearning_rate = 0.3\n[train]\nnum_steps = 3000\n"
        "[output]\nfigures = []\n")
    done = jaxgd("run", "c.toml", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    best = json.loads((tmp_path / "out" / "summary.json").read_text())["best_run"]
    assert best["final_loss"] < json.loads(
        (tmp_path / "out" / "summary.json").read_text())["least_squares"]["loss"]
    assert best["gap_to_optimum"] == 0.0 and "(gap 0);" in done.stdout
