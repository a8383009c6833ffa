"""A long sweep killed mid-run resumes from its saved chunks, with bit-identical results."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxgd import cli
from jaxgd.cli import checkpoint, results

ROOT = Path(__file__).parents[2]
# Eight learning rates, one per chunk, two seeds each: converging, crawling, diverging runs.
# Enough steps that each chunk takes a good fraction of a second after compiling (a GPU
# takes ~100 µs a step for this tiny loop, a CPU ~1 µs).
STEPS = 500_000 if jax.default_backend() == "cpu" else 20_000
CONFIG = """\
[data]
dataset = "synthetic"
n_samples = 64
n_features = 2

[model]
seeds = [0, 1]

[optimizer]
learning_rates = [1e-5, 0.01, 0.1, 0.3, 0.6, 0.9, 1.5, 1e6]

[train]
num_steps = {steps}

[output]
figures = []
"""
CHUNKS = 8


def start(config, out, *extra):
    # On a GPU this test process holds most of its memory: the runs take theirs as needed.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    return subprocess.Popen(
        [sys.executable, "-m", "jaxgd", "run", str(config), "--out", str(out),
         "--chunk-size", "1", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def chunk_files(out):
    return sorted(p.name for p in (out / results.PARTIAL).glob("chunk-*.npz"))


def stop_after_first_chunk(process, out, signum, timeout=120):
    """Waits until a chunk file exists, then sends ``signum``; returns (status, stderr)."""
    deadline = time.monotonic() + timeout
    while not chunk_files(out):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no chunk was saved in time"
        time.sleep(0.005)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr


def without_timing(summary):
    return {key: value for key, value in summary.items() if key != "timing_seconds"}


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("resume") / "long.toml"
    path.write_text(CONFIG.format(steps=STEPS))
    return path


def test_sigkill_then_resume_gives_the_uninterrupted_results(config_file, tmp_path):
    reference = start(config_file, tmp_path / "whole", "--quiet")  # alongside the killed one
    out = tmp_path / "killed"
    status, _ = stop_after_first_chunk(start(config_file, out, "--quiet"), out,
                                       signal.SIGKILL)
    assert status == -signal.SIGKILL
    saved = chunk_files(out)
    assert 1 <= len(saved) < CHUNKS, saved  # killed mid-run, with work left to do
    for name in saved:  # whole files only
        assert np.load(out / results.PARTIAL / name, allow_pickle=False)["losses"].size
    assert not (out / results.SUMMARY).exists()

    resumed = start(config_file, out, "--resume")
    _, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr
    assert f"{len(saved)} of {CHUNKS} chunks were done" in stderr
    _, stderr = reference.communicate(timeout=120)
    assert reference.returncode == 0, stderr

    assert sorted(p.name for p in out.iterdir()) == sorted(
        p.name for p in (tmp_path / "whole").iterdir()) == [
        results.MARKER, "history.npz", "losses.csv", "summary.json"]  # no .partial left
    history, summary = results.read(out)
    whole_history, whole_summary = results.read(tmp_path / "whole")
    assert sorted(history) == sorted(whole_history)
    for key, array in whole_history.items():
        assert array.dtype == history[key].dtype, key
        assert np.array_equal(array, history[key], equal_nan=array.dtype.kind == "f"), key
    assert without_timing(summary) == without_timing(whole_summary)
    assert summary["chunks"] == {"learning_rates_per_chunk": 1, "count": CHUNKS}
    assert (out / "losses.csv").read_bytes() == (tmp_path / "whole" / "losses.csv").read_bytes()
    assert history["diverged"][-1].all() and summary["best_run"]["diverged"] is False


def test_sigterm_keeps_whole_chunks_and_says_how_to_resume(config_file, tmp_path):
    out = tmp_path / "out"
    status, stderr = stop_after_first_chunk(start(config_file, out, "--quiet"), out,
                                            signal.SIGTERM)
    assert status == 128 + signal.SIGTERM, stderr
    assert "stopped;" in stderr and "--resume" in stderr and "Traceback" not in stderr
    assert sorted(p.name for p in out.iterdir()) == [results.PARTIAL]
    saved = checkpoint.Checkpoint.open(out)
    assert saved.done() and saved.num_chunks == CHUNKS
    for index in saved.done():
        assert saved.load(index)["losses"].shape == (1, 2, STEPS)
    leftovers = [p.name for p in saved.folder.iterdir()
                 if p.name != checkpoint.MANIFEST and not p.name.startswith("chunk-")]
    assert all(".tmp-" in name for name in leftovers)  # at worst a hidden half-written file


def main(*args):
    return cli.main(["run", *map(str, args)])


def partial_run(config_file, out, replaces=False):
    """A stopped run, made in-process: the first chunk of the config, saved (``replaces``:
    as by --overwrite over the results in ``out``)."""
    from jaxgd.cli import execute
    from jaxgd.cli import plan as plans

    config, _ = cli.load_config(str(config_file), ["train.num_steps=50"])
    plan = plans.prepare(config, chunk_size=4)
    saved = checkpoint.Checkpoint.start(out, plan.fingerprint(), replaces=replaces)
    saved.save(0, execute.run_chunk(plan, 0))
    return saved


def test_resuming_with_another_config_is_refused(config_file, tmp_path, capsys):
    out = tmp_path / "out"
    partial_run(config_file, out)
    before = sorted(p.name for p in (out / results.PARTIAL).iterdir())
    status = main(config_file, "--out", out, "--resume", "--set", "train.num_steps=60",
                  "--set", "model.seeds=[0]", "--chunk-size", "4")
    message = capsys.readouterr().err
    assert status == 2
    assert "cannot resume" in message and "the config differs" in message
    assert "train.num_steps: 50 → 60" in message and "model.seeds: [0, 1] → [0]" in message
    assert sorted(p.name for p in (out / results.PARTIAL).iterdir()) == before
    assert main(config_file, "--out", out, "--resume", "--set", "train.num_steps=50",
                "--chunk-size", "2") == 2
    assert "was started with --chunk-size 4, not 2" in capsys.readouterr().err


def test_resume_takes_output_changes_and_writes_with_them(config_file, tmp_path, capsys):
    """[output] changes no number of the runs (issue #22): a resume takes its new values
    and writes with them; any other change is still refused, named without [output]'s."""
    out = tmp_path / "out"
    partial_run(config_file, out)
    status = main(config_file, "--out", out, "--resume", "--set", "train.num_steps=60",
                  "--set", "output.dpi=150", "--chunk-size", "4")
    err = capsys.readouterr().err
    assert status == 2 and "train.num_steps: 50 → 60" in err and "output.dpi" not in err, err
    status = main(config_file, "--out", out, "--resume", "--quiet", "--set",
                  "train.num_steps=50", "--set", "output.dpi=150", "--set",
                  "output.figures=['loss_curve']", "--set", "output.log_scale=false")
    err = capsys.readouterr().err
    assert status == 0, err
    output = json.loads((out / "summary.json").read_text())["config"]["output"]
    assert output["dpi"] == 150 and output["figures"] == ["loss_curve"], output
    assert output["log_scale"] is False
    assert (out / "loss_curve.png").is_file()


def test_resume_needs_an_unfinished_run(config_file, tmp_path, capsys):
    assert main(config_file, "--out", tmp_path / "none", "--resume") == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()
    (tmp_path / "empty").mkdir()
    assert main(config_file, "--out", tmp_path / "empty", "--resume") == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_a_stopped_run_is_not_overwritten_by_accident(config_file, tmp_path, capsys):
    out = tmp_path / "out"
    partial_run(config_file, out)
    assert main(config_file, "--out", out, "--set", "train.num_steps=50") == 2
    assert "holds an unfinished run: pass --resume" in capsys.readouterr().err
    status = main(config_file, "--out", out, "--quiet", "--overwrite",
                  "--set", "train.num_steps=50", "--set", "optimizer.learning_rates=[0.1]")
    assert status == 0, capsys.readouterr().err
    history, _ = results.read(out)
    assert history["losses"].shape == (1, 2, 50) and not (out / results.PARTIAL).exists()
    assert main(config_file, "--out", out, "--resume") == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_an_interrupted_overwrite_is_refused_naming_resume(config_file, tmp_path, capsys):
    """An --overwrite stopped mid-run leaves the old results and its .partial: the next
    plain run's refusal used to say only --overwrite (issue #22); --resume finishes it."""
    out = tmp_path / "out"
    assert main(config_file, "--out", out, "--quiet", "--set", "train.num_steps=50",
                "--set", "optimizer.learning_rates=[0.1]") == 0
    partial_run(config_file, out, replaces=True)
    assert main(config_file, "--out", out, "--set", "train.num_steps=50") == 2
    err = capsys.readouterr().err
    assert "holds an unfinished run" in err and "pass --resume to finish it" in err, err
    assert "--overwrite to start again" in err, err
    assert main(config_file, "--out", out, "--resume", "--quiet",
                "--set", "train.num_steps=50") == 0, capsys.readouterr().err
    assert results.read(out)[0]["losses"].shape == (8, 2, 50)


def test_resume_finishes_in_process_and_cleans_half_written_files(config_file, tmp_path,
                                                                   capsys):
    out = tmp_path / "out"
    saved = partial_run(config_file, out)
    (saved.folder / ".chunk-00001.npz.tmp-abc").write_bytes(b"half")
    (tmp_path / ".out.tmp-abcd1234").mkdir()  # a staging folder left by a SIGKILL
    (tmp_path / ".out.tmp-abcd1234" / "summary.json").write_text("{}")
    status = main(config_file, "--out", out, "--resume", "--set", "train.num_steps=50")
    err = capsys.readouterr().err
    assert status == 0, err
    assert "removed .chunk-00001.npz.tmp-abc" in err and "1 of 2 chunks were done" in err
    assert f"removed {tmp_path / '.out.tmp-abcd1234'}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in out.iterdir()) == [results.MARKER, "history.npz",
                                                     "losses.csv", "summary.json"]
    whole = tmp_path / "whole"
    assert main(config_file, "--out", whole, "--quiet", "--set", "train.num_steps=50",
                "--chunk-size", "4") == 0
    for key, array in results.read(whole)[0].items():
        assert np.array_equal(array, results.read(out)[0][key],
                              equal_nan=array.dtype.kind == "f"), key


def test_a_damaged_chunk_or_manifest_is_named(config_file, tmp_path, capsys):
    out = tmp_path / "out"
    saved = partial_run(config_file, out)
    (saved.folder / checkpoint.chunk_name(0)).write_bytes(b"not a zip file")
    assert main(config_file, "--out", out, "--resume", "--set", "train.num_steps=50") == 2
    message = capsys.readouterr().err
    assert "chunk-00000.npz is damaged" in message and "--resume" in message
    (saved.folder / checkpoint.MANIFEST).write_text("{")
    assert main(config_file, "--out", out, "--resume", "--set", "train.num_steps=50") == 2
    assert "manifest.json is damaged" in capsys.readouterr().err


def test_changed_data_are_refused(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n2,4\n3,6.5\n")
    config = tmp_path / "c.toml"
    config.write_text("[data]\ndataset = 'csv'\npath = 'd.csv'\nfeatures = ['a']\n"
                      "target = 'b'\n[optimizer]\nlearning_rates = [0.01, 0.1]\n"
                      "[train]\nnum_steps = 20\n[output]\nfigures = []\n")
    partial_run(config, tmp_path / "out")
    data.write_text("a,b\n1,2\n2,4\n3,7\n")
    assert main(config, "--out", tmp_path / "out", "--resume", "--set",
                "train.num_steps=50") == 2
    assert "the data differ" in capsys.readouterr().err


def test_a_checkpoint_writes_nothing_before_its_first_chunk(tmp_path):
    saved = checkpoint.Checkpoint.start(tmp_path / "out", {"chunk_size": 1, "num_chunks": 2})
    assert not (tmp_path / "out").exists() and saved.missing() == [0, 1]
    saved.save(1, {"losses": np.ones((1, 1, 3))})
    manifest = json.loads((saved.folder / checkpoint.MANIFEST).read_text())
    assert manifest["done"] == [1] and checkpoint.Checkpoint.open(tmp_path / "out").missing() \
        == [0]
    with pytest.raises(ValueError, match="outside"):
        saved.save(2, {"losses": np.ones(1)})
    # Chunks of an older jaxgd's format (2: plain per-run arrays) are not read: refused.
    manifest["format"] = 2
    (saved.folder / checkpoint.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(checkpoint.ResumeError, match=r"started by an older jaxgd, whose "
                       r"saved chunks \(format 2\) .*--overwrite instead of --resume"):
        checkpoint.Checkpoint.open(tmp_path / "out")


def test_a_changed_chunk_is_refused_by_its_checksum(config_file, tmp_path, capsys):
    out = tmp_path / "out"
    saved = partial_run(config_file, out)
    path = saved.folder / checkpoint.chunk_name(0)
    manifest = json.loads((saved.folder / checkpoint.MANIFEST).read_text())
    assert manifest["sha256"] == {path.name: checkpoint.sha256_of(path)}
    arrays = results.load_npz(path)  # a valid chunk, its losses doubled
    arrays["losses"] = arrays["losses"] * 2
    np.savez(path, **arrays)
    before = sorted(p.name for p in out.rglob("*"))
    assert main(config_file, "--out", out, "--resume", "--set", "train.num_steps=50") == 2
    message = capsys.readouterr().err
    assert f"{path} is damaged or changed since it was written" in message, message
    assert "Traceback" not in message
    assert sorted(p.name for p in out.rglob("*")) == before  # nothing ran, nothing written


def test_a_chunk_of_the_wrong_shape_is_named(config_file, tmp_path, capsys):
    out = tmp_path / "out"
    saved = partial_run(config_file, out)
    path = saved.folder / checkpoint.chunk_name(0)
    arrays = results.load_npz(path)
    arrays["losses"] = arrays["losses"][..., :-1]
    np.savez(path, **arrays)
    manifest_path = saved.folder / checkpoint.MANIFEST  # changed with its checksum
    manifest = json.loads(manifest_path.read_text())
    manifest["sha256"][path.name] = checkpoint.sha256_of(path)
    manifest_path.write_text(json.dumps(manifest))
    assert main(config_file, "--out", out, "--resume", "--set", "train.num_steps=50") == 2
    message = capsys.readouterr().err
    assert f"{path} does not belong to this run (losses has shape (4, 2, 49), not " \
           "(4, 2, 50)" in message, message
    assert "Traceback" not in message and chunk_files(out) == [path.name]
