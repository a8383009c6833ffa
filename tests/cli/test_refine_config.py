"""``[optimizer] refine``: the whole sweep's best drawn points refined, in configs and
results (``jaxgd.cli.refine``)."""

import numpy as np
import pytest

import jaxgd
from jaxgd import cli, fit
from jaxgd.cli import checkpoint, execute, results
from jaxgd.cli import plan as plans
from jaxgd.cli.config import ConfigError, parse

REFINED = """\
[data]
dataset = "synthetic"
n_samples = 40
n_features = 2
{data}
[model]
seeds = [0, 1]

[optimizer]
name = "adam"
sample = {{ learning_rate = ["log", 1e-3, 0.5], b1 = ["uniform", 0.5, 0.95] }}
num_samples = 4
sample_seed = 4
refine = {{ top = 3, steps = 3, backtracks = 3 }}

[train]
num_steps = 40

[output]
figures = []
"""


def test_the_sweeps_best_runs_are_refined_downhill(capsys):
    config = parse(REFINED.format(data=""))
    record = execute.run(config, chunk_size=2)  # two chunks: refined from both, once
    block, runs = record.summary["refined"], record.summary["runs"]
    assert block["objective"] == "training loss" and block["moved"] == ["learning_rate", "b1"]
    assert block["settings"] == {"top": 3, "steps": 3, "learning_rate": 0.1, "backtracks": 3}
    ranked = sorted((r for r in runs if not r["diverged"]), key=lambda r: r["final_loss"])
    key = lambda r: (r["learning_rate"], r["b1"], r["seed"])  # noqa: E731
    assert [key(p["start"]) for p in block["points"]] == [key(r) for r in ranked[:3]]
    train = execute.prepare(config).train_data
    for point in block["points"]:
        start, end = point["start"], point["end"]
        # The rerun of the start point is the sweep's run: float32 programs of other shapes.
        assert point["objective_before"] == pytest.approx(start["objective"], rel=1e-5)
        assert point["objective_after"] <= point["objective_before"]  # never rises
        assert end["objective"] == point["objective_after"] == end["final_loss"]
        assert 1e-3 <= end["learning_rate"] <= 0.5 and 0.5 <= end["b1"] <= 0.95
        assert end["seed"] == start["seed"] and point["steps"] == 3
        # The end point is a plain run with those values (the library's fit as the oracle).
        single = fit(*train, learning_rate=end["learning_rate"], seed=end["seed"],
                     optimizer=jaxgd.Optimizer("adam", b1=end["b1"]), num_steps=40)
        assert float(single.final_loss) == pytest.approx(end["objective"], rel=1e-4)
    best = record.summary["best_run"]  # the sweep's best stays the best run
    assert block["sweep_best_objective"] == best["final_loss"] == ranked[0]["final_loss"]
    after = min(p["objective_after"] for p in block["points"])
    assert block["refined_best_objective"] == after
    assert block["beats_sweep"] == (after < best["final_loss"] * (1 - 1e-5))
    assert any(p["steps_accepted"] > 0 for p in block["points"])  # it moved somewhere
    cli._print_table(record.summary)
    out = capsys.readouterr().out
    assert "refined (training loss, 3 steps from the sweep's 3 best runs, " in out
    assert out.count("steps taken)") == 3
    said = "a refined point beats" if block["beats_sweep"] else "no refined point beats"
    assert f"{said} the sweep's best run" in out


def test_a_resumed_run_refines_as_an_uninterrupted_one(tmp_path, capsys):
    path = tmp_path / "refined.toml"
    path.write_text(REFINED.format(data="validation_fraction = 0.25"))
    config, _ = cli.load_config(str(path), [])
    plan = plans.prepare(config, chunk_size=2)
    out, whole = tmp_path / "out", tmp_path / "whole"
    saved = checkpoint.Checkpoint.start(out, plan.fingerprint())
    saved.save(1, execute.run_chunk(plan, 1))  # as if stopped after the second chunk
    assert cli.main(["run", str(path), "--out", str(out), "--resume"]) == 0
    assert "1 of 2 chunks were done" in capsys.readouterr().err
    assert cli.main(["run", str(path), "--out", str(whole), "--quiet", "--chunk-size",
                     "2"]) == 0
    _, summary = results.read(out)
    _, reference = results.read(whole)
    block = summary["refined"]
    assert block.pop("seconds") > 0 and reference["refined"].pop("seconds") > 0
    assert block == reference["refined"]
    assert block["objective"] == "validation loss" and len(block["points"]) == 3
    ranked = sorted((r for r in summary["runs"] if not r["diverged"]),
                    key=lambda r: r["final_validation_loss"])
    assert block["points"][0]["start"]["objective"] == ranked[0]["final_validation_loss"]
    assert all(p["objective_after"] <= p["objective_before"] for p in block["points"])


@pytest.mark.parametrize("text, message", [
    ("refine = { tpo = 2 }", r"optimizer.refine has unknown settings 'tpo'; valid: top"),
    ("refine = { top = 0 }", r"optimizer.refine\['top'\] must be >= 1"),
    ("refine = { steps = 2.5 }", r"optimizer.refine\['steps'\] must be an integer"),
    ("refine = { backtracks = 'six' }", r"optimizer.refine\['backtracks'\] must be an int"),
    ("refine = { learning_rate = 2 }", r"optimizer.refine\['learning_rate'\] must be in"),
    ("refine = [4]", "optimizer.refine must be a table"),
])
def test_bad_refine_settings_name_the_key(text, message):
    """The library's refusal, in the config's words, when the run is planned."""
    with pytest.raises(ConfigError, match=message):
        plans.prepare(parse("[data]\ndataset = 'mlcc_cars'\n[optimizer]\nname = 'adam'\n"
                      "sample = { learning_rate = ['log', 1e-3, 1.0] }\n"
                      f"num_samples = 4\n{text}\n"))


@pytest.mark.parametrize("text, message", [
    ("[optimizer]\nlearning_rates = [0.1]\nrefine = { top = 2 }",
     "optimizer.refine= moves drawn hyperparameters: give optimizer.sample="),
])
def test_refine_needs_drawn_points(text, message):
    with pytest.raises(ConfigError, match=message):
        plans.prepare(parse(text))


def test_a_config_without_refine_has_no_refined_block():
    record = execute.run(parse(REFINED.format(data="").replace(
        "refine = { top = 3, steps = 3, backtracks = 3 }\n", "")))
    assert "refined" not in record.summary
    assert np.isfinite(record.summary["best_run"]["final_loss"])


def test_with_k_folds_a_point_is_refined_on_its_mean_over_the_folds():
    """The library refines a k-fold point on its folds' mean validation loss; the refined
    block says so, and its start objectives are the sweep's means."""
    record = execute.run(parse(REFINED.format(data="k_folds = 2").replace(
        "seeds = [0, 1]", "seeds = [0]")))
    block, runs = record.summary["refined"], record.summary["runs"]
    assert block["objective"] == "mean validation loss over the folds" and block["points"]
    for point in block["points"]:
        start = point["start"]
        folds = [r["final_validation_loss"] for r in runs
                 if (r["learning_rate"], r["b1"]) == (start["learning_rate"], start["b1"])]
        assert len(folds) == 2 and "fold" not in start
        assert start["objective"] == pytest.approx(np.mean(folds), rel=1e-6)
        assert point["objective_before"] == pytest.approx(start["objective"], rel=1e-5)
        assert point["objective_after"] <= point["objective_before"]
