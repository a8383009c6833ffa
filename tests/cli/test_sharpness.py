"""``[optimizer] track_sharpness``: Adam's preconditioned sharpness in a ``jaxgd run``'s
history.npz and summary.json, equal to the library's ``result.observed`` on the same data,
kept across ``--resume``, and refused by name where the library refuses it
(``jaxgd.cli.sharpness``)."""

import jax
import numpy as np
import pytest

import jaxgd
from jaxgd import cli
from jaxgd.api.grid import grid_sweep
from jaxgd.cli import checkpoint, execute, results
from jaxgd.cli import plan as plans
from jaxgd.cli.config import ConfigError, parse
from jaxgd.theory.sharpness import adam_threshold

# The course's cars: at η = 0.1 Adam stays far below its threshold; at η = 300 its first
# step's sharpness is far above it (Adam's first step is about η per coordinate), and then
# v̂ grows and the run recovers (see tests/theory/test_sharpness.py).
RATES = [0.1, 300.0]
CONFIG = """\
[data]
dataset = "mlcc_cars"

[model]
seeds = [0, 1]

[optimizer]
name = "adam"
learning_rates = [0.1, 300.0]
track_sharpness = true
{optimizer}
[train]
num_steps = 40
log_every = 3

[output]
figures = []
"""


def _library(plan, **grid):
    """The library's own record of the same runs: one ``grid_sweep`` on the plan's data."""
    return grid_sweep(plan.X, plan.y, optimizer="adam", num_steps=40,
                      record=jaxgd.Record(log_every=3, track_sharpness=True),
                      grid={"learning_rate": RATES, **grid, "seed": [0, 1]})


def _write(tmp_path, optimizer=""):
    path = tmp_path / "adam.toml"
    path.write_text(CONFIG.format(optimizer=optimizer))
    return path


def test_the_sharpness_is_written_as_the_library_records_it(tmp_path):
    path, out = _write(tmp_path), tmp_path / "out"
    assert cli.main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    history, summary = results.read(out)
    expected = np.asarray(_library(plans.prepare(parse(path.read_text()))).observed)
    assert history["sharpness"].shape == history["losses"].shape == (2, 2, 14)
    # The same compiled computation on the same inputs; float32 of another program shape
    # could round a reduction differently, hence 1e-6 rather than equality.
    np.testing.assert_allclose(history["sharpness"], expected, rtol=1e-6)
    edge = adam_threshold(0.9)
    np.testing.assert_array_equal(history["sharpness_threshold"], np.full((2, 2), edge))
    block = summary["sharpness"]
    assert block["threshold"] == pytest.approx(38.0) and block["runs"] == 4
    assert block["threshold_formula"] == "2(1+b1)/(1-b1)"
    reached = []
    for run in summary["runs"]:
        k, s = RATES.index(run["learning_rate"]), run["seed"]
        peak = float(np.nanmax(expected[k, s]))
        assert run["max_sharpness"] == pytest.approx(peak, rel=1e-6)
        assert run["reached_sharpness_threshold"] == (peak >= edge)
        assert "sharpness_threshold" not in run  # one b1: the threshold is said once
        reached.append(run["reached_sharpness_threshold"])
    # Both verdicts occur: the test can tell a wrong comparison from a right one.
    assert reached == [False, False, True, True]
    assert block["runs_reaching_threshold"] == 2


def test_with_b1_on_the_grid_each_run_has_its_own_threshold():
    config = parse(CONFIG.format(optimizer="grid = { b1 = [0.5, 0.9] }"))
    record = execute.run(config)
    plan = plans.prepare(config)
    expected = np.asarray(_library(plan, b1=[0.5, 0.9]).observed)
    np.testing.assert_allclose(record.history["sharpness"], expected, rtol=1e-6)
    thresholds = record.history["sharpness_threshold"]  # (rates, b1, seeds)
    np.testing.assert_array_equal(thresholds[:, 0], adam_threshold(0.5))  # 6
    np.testing.assert_array_equal(thresholds[:, 1], adam_threshold(0.9))  # 38
    assert record.summary["sharpness"]["threshold"] is None
    for run in record.summary["runs"]:
        assert run["sharpness_threshold"] == adam_threshold(run["b1"])
        assert run["reached_sharpness_threshold"] == (
            run["max_sharpness"] >= adam_threshold(run["b1"]))


def test_drawn_b1_values_give_each_point_its_threshold():
    config = parse("[data]\ndataset = 'mlcc_cars'\n[optimizer]\nname = 'adam'\n"
                   "sample = { learning_rate = ['log', 1e-2, 300.0], b1 = ['uniform', 0.5, "
                   "0.95] }\nnum_samples = 4\ntrack_sharpness = true\n[train]\n"
                   "num_steps = 20\n[output]\nfigures = []\n")
    record = execute.run(config)
    drawn = np.asarray(config.drawn()["b1"])
    np.testing.assert_array_equal(record.history["sharpness_threshold"][:, 0],
                                  adam_threshold(drawn))
    assert [run["sharpness_threshold"] for run in record.summary["runs"]] == [
        float(t) for t in adam_threshold(drawn)]


def test_float64_runs_write_the_librarys_float64_sharpness():
    with jax.enable_x64(True):
        config = parse(CONFIG.format(optimizer=""))
        record = execute.run(config)
        expected = np.asarray(_library(plans.prepare(config)).observed)
    assert record.history["sharpness"].dtype == expected.dtype == np.float64
    # The same float64 computation; 1e-12 leaves room for another program shape's rounding.
    np.testing.assert_allclose(record.history["sharpness"], expected, rtol=1e-12)


def test_a_resumed_run_keeps_the_sharpness_of_its_saved_chunks(tmp_path, capsys):
    path = _write(tmp_path)
    config, _ = cli.load_config(str(path), [])
    plan = plans.prepare(config, chunk_size=1)
    out, whole = tmp_path / "out", tmp_path / "whole"
    saved = checkpoint.Checkpoint.start(out, plan.fingerprint())
    chunk = execute.run_chunk(plan, 1)
    assert chunk["observed"].shape == (1, 2, 14)  # the library's name: the result's field
    saved.save(1, chunk)  # as if stopped after the second chunk
    assert cli.main(["run", str(path), "--out", str(out), "--resume", "--quiet"]) == 0
    assert cli.main(["run", str(path), "--out", str(whole), "--quiet", "--chunk-size",
                     "1"]) == 0
    history, summary = results.read(out)
    reference, reference_summary = results.read(whole)
    np.testing.assert_array_equal(history["sharpness"], reference["sharpness"])
    np.testing.assert_array_equal(history["sharpness"][1], chunk["observed"][0])
    assert summary["sharpness"] == reference_summary["sharpness"]
    del chunk["observed"]  # a chunk without it is not a chunk of this run
    with pytest.raises(ConfigError, match="saved chunk 1 does not belong to this run "
                                          r"\(it has no array 'observed'"):
        execute.check_chunk(plan, 1, chunk)


def test_without_the_key_nothing_is_recorded():
    config = parse(CONFIG.format(optimizer="").replace("track_sharpness = true", ""))
    assert config.optimizer.track_sharpness is False
    record = execute.run(config)
    assert "sharpness" not in record.history and "sharpness_threshold" not in record.history
    assert "sharpness" not in record.summary
    assert all("max_sharpness" not in run for run in record.summary["runs"])


@pytest.mark.parametrize("optimizer, train, message", [
    ("", "", "is for optimizer adam .* not 'sgd'"),
    ("name = 'adamw'", "", "not 'adamw'"),
    ("name = 'adam'\nschedule = 'cosine_decay'", "", "needs a constant learning rate"),
    ("name = 'adam'", "batch_size = 8\nepochs = 2", "on the full-batch loss"),
    ("name = 'adam'", "stop_at_convergence = true", "the early exit"),
    ("name = 'adam'", "pruning = 'halving'\nsegment_steps = 10", "the early exit"),
    ("name = 'adam'\ntrack_sharpness = 'yes'", "", "must be true or false, got 'yes'"),
])
def test_refused_combinations_name_the_key(optimizer, train, message):
    key = "" if "track_sharpness" in optimizer else "track_sharpness = true\n"
    text = (f"[optimizer]\nlearning_rate = 0.1\n{key}{optimizer}\n"
            f"[train]\nnum_steps = 20\n{train}\n")
    if "'yes'" in message:  # a config's type: refused when the config is read
        with pytest.raises(ConfigError, match=rf"^optimizer\.track_sharpness .*{message}"):
            parse(text)
        return
    with pytest.raises(ConfigError, match=rf"^optimizer\.track_sharpness .*{message}"):
        plans.prepare(parse(text))  # the library's refusal, when the run is planned
    plans.prepare(parse(text.replace(key, "")))  # the rest of the config is fine


def test_the_command_line_refuses_it_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "out"
    status = cli.main(["run", "mlcc_cars", "--out", str(out),
                       "--set", "optimizer.track_sharpness=true"])
    assert status == 2 and not out.exists()
    assert "optimizer.track_sharpness is for optimizer adam" in capsys.readouterr().err


def test_the_table_and_the_loss_curve_show_the_best_runs_sharpness(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from jaxgd import figures

    config = parse(CONFIG.format(optimizer=""))
    record = execute.run(config)
    cli._print_table(record.summary)
    assert ("sharpness: 2 of 4 runs reached Adam's threshold 2(1+b1)/(1−b1) = 38; the best "
            "run's largest: ") in capsys.readouterr().out
    fig = figures.draw("loss_curve", record.history, record.meta)
    assert len(fig.axes) == 2  # the loss, and below it the sharpness
    curve, threshold = fig.axes[1].get_lines()[:2]
    k, s = record.history["best_index"]
    best = record.history["sharpness"][k, s]
    np.testing.assert_array_equal(curve.get_ydata(), best)
    np.testing.assert_array_equal(curve.get_xdata(), record.history["loss_steps"])
    assert threshold.get_ydata()[0] == pytest.approx(38.0)
    untracked = execute.run(parse(CONFIG.format(optimizer="").replace(
        "track_sharpness = true", "")))
    assert len(figures.draw("loss_curve", untracked.history, untracked.meta).axes) == 1
