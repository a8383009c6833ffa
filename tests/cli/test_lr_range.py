"""``jaxgd lr-range``: runs on every shipped config, writes its folder by the results rules,
and reports the theory's exact limit."""

import json

import pytest

import jaxgd
from jaxgd.cli import main
from jaxgd.cli.shipped import load_config, shipped_configs

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", shipped_configs())
def test_lr_range_runs_on_every_shipped_config(name, capsys):
    config, _ = load_config(name, [])
    # Few steps and rates keep it quick; mini-batch configs count their steps in epochs.
    short = "train.epochs=2" if config.train.batch_size else "train.num_steps=60"
    assert main(["lr-range", name, "--set", short, "--num-rates", "4"]) == 0
    out = capsys.readouterr().out
    assert "learning rate" in out and "max stable η = " in out and "fastest η = " in out
    exact = (config.optimizer.name in ("sgd", "momentum", "nesterov")
             and config.optimizer.schedule == "constant" and not config.train.batch_size)
    assert ("(exact, " in out) == exact, out


def test_out_folder_holds_the_json_and_figure_and_is_replaced_only_when_asked(tmp_path,
                                                                             capsys):
    out = tmp_path / "range"
    args = ["lr-range", "mlcc_cars", "--out", str(out), "--num-rates", "6",
            "--set", "train.num_steps=400"]
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == [".jaxgd-results", "lr_range.json",
                                                     "lr_range.png"]
    assert (out / "lr_range.png").read_bytes()[:8] == PNG
    record = json.loads((out / "lr_range.json").read_text())
    data = jaxgd.datasets.mlcc_cars()
    assert record["exact"] and record["limit_name"] == "2/λmax"
    assert record["max_stable"] == jaxgd.stability(data.X).max_learning_rate
    rates = [c["learning_rate"] for c in record["candidates"]]
    assert rates == sorted(rates) and record["first_diverged"] > record["max_stable"]
    capsys.readouterr()
    assert main(args) == 2  # exists: refused without --overwrite
    assert "exists already" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--quiet"]) == 0
    assert capsys.readouterr().out == ""


def test_an_empirical_range_reports_the_full_batch_limit_for_reference(capsys):
    assert main(["lr-range", "minibatch", "--set", "train.epochs=2", "--num-rates", "4"]) == 0
    out = capsys.readouterr().out
    assert "max stable η = " in out and "(empirical;" in out
    assert "full-batch limit 2/λmax = " in out


@pytest.mark.parametrize("args,message", [
    (["--target", "2"], "target must be in (0, 1)"),
    (["--out", " "], "--out is empty"),
])
def test_bad_arguments_are_config_errors(args, message, capsys):
    assert main(["lr-range", "mlcc_cars", "--set", "train.num_steps=10", *args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("args,runs", [
    (["--num-rates", "2000", "--set", "train.num_steps=1000000"], "2000"),
    (["--num-rates", "1000000000"], "1000000000"),
])
def test_candidates_too_many_for_memory_are_refused_before_they_are_built(
        args, runs, capsys, monkeypatch):
    """The memory check used to count the config's own learning rates: 2000 candidates ×
    10⁶ steps died allocating 7.46 GiB, 10⁹ candidates in np.geomspace (issue #22)."""
    import sys

    from jaxgd.cli import data

    monkeypatch.setattr(data, "_memory_bytes", lambda: 8 * 2**30)  # an 8 GiB machine
    monkeypatch.setattr(sys.modules["jaxgd.api.lr_range"], "_candidates",
                        lambda *_: pytest.fail("the candidates were built"))
    assert main(["lr-range", "mlcc_cars", *args]) == 2
    err = capsys.readouterr().err
    assert f"--num-rates {runs} learning rates" in err and " steps" in err, err
    assert "would take" in err and "more than this machine's 8.0 GiB" in err, err
    assert "Traceback" not in err
