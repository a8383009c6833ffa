"""Every diverged run of ``jaxgd run`` is explained in words, in summary.json and the table:
above the exact limit, below it (honestly), and where no limit is exact."""

import json

import numpy as np
import pytest

from jaxgd.cli import main
from jaxgd.cli.explain import sentence
from jaxgd.theory.stability import stability


def _run(tmp_path, capsys, name, *overrides):
    out = tmp_path / "out"
    args = ["run", name, "--out", str(out), "--set", "output.figures=[]"]
    for override in overrides:
        args += ["--set", override]
    assert main(args) == 0
    printed = capsys.readouterr().out
    return json.loads((out / "summary.json").read_text())["runs"], printed


def test_a_run_above_the_limit_is_explained_by_it(tmp_path, capsys):
    runs, printed = _run(tmp_path, capsys, "mlcc_cars", "train.num_steps=300")
    assert [run["diverged"] for run in runs] == [False, False, True]
    assert ["explanation" in run for run in runs] == [False, False, True]
    assert runs[2]["explanation"] == "η = 1 > 2/λmax = 0.06982: diverged"
    assert "  η = 1 > 2/λmax = 0.06982: diverged" in printed


def test_a_run_below_the_limit_is_explained_honestly(tmp_path, capsys):
    # Momentum's loss rises on its way down; a divergence test of 1.01× the start flags a
    # rate that the theory (and the default test) call convergent.
    runs, _ = _run(tmp_path, capsys, "mlcc_cars_momentum",
                   "optimizer.learning_rates=[0.03, 0.13]", "train.divergence_factor=1.01",
                   "train.num_steps=300")
    assert [run["diverged"] for run in runs] == [False, True]
    text = runs[1]["explanation"]
    assert text.startswith("η = 0.13 ≤ 2(1+β)/λmax = 0.1327 (β = 0.9), yet diverged")
    assert "1.01× its start" in text


def test_without_an_exact_limit_the_sentence_says_so(tmp_path, capsys):
    runs, _ = _run(tmp_path, capsys, "mlcc_cars", 'optimizer.name="adam"',
                   "optimizer.learning_rates=[0.1, 10000.0]", "train.num_steps=300")
    assert [run["diverged"] for run in runs] == [False, True]
    assert runs[1]["explanation"].startswith(
        "η = 1e+04: diverged; adam scales each step by its own gradient history")
    assert "2/λmax = 0.06982 for scale" in runs[1]["explanation"]


@pytest.mark.parametrize("optimizer,label", [("sgd", "2/λmax"), ("momentum", "2(1+β)/λmax"),
                                             ("nesterov", "2(1+β)/((1+2β)λmax)")])
def test_the_sentence_names_each_optimizers_limit(optimizer, label):
    hyper = {} if optimizer == "sgd" else {"momentum": 0.5}  # sgd has no β
    limits = stability(np.array([[-1.0], [1.0]]), optimizer=optimizer, **hyper)
    above = sentence(2 * limits.max_learning_rate, limits)
    assert f"> {label} = {limits.max_learning_rate:.4g}" in above and above.endswith("diverged")
