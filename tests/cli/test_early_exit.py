"""The command line's early exit: config keys, and the run-steps in the summary and table."""

import contextlib
import io

import numpy as np
import pytest

from jaxgd.cli import _print_table, execute
from jaxgd.cli.config import ConfigError, parse

HALVING = """\
[data]
dataset = "synthetic"
n_samples = 40
n_features = 2

[optimizer]
learning_rates = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 3.0]

[train]
num_steps = 300
stop_at_convergence = true
pruning = "halving"
min_steps = 20
segment_steps = 20

[output]
figures = []
"""


def test_halving_run_reports_steps_run_and_pruned_runs():
    record = execute.run(parse(HALVING))
    history, summary = record.history, record.summary
    steps, pruned = history["steps_run"], history["pruned_step"]
    assert steps.shape == pruned.shape == history["final_loss"].shape
    assert (pruned >= 0).any() and (steps < 300).any()
    training = summary["training"]
    assert training["run_steps_scheduled"] == 7 * 300
    assert training["run_steps_executed"] == int(steps.sum()) < 7 * 300
    assert [run["pruned_step"] for run in summary["runs"]] == pruned.reshape(-1).tolist()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        _print_table(summary)
    assert f"run-steps: {int(steps.sum()):,} executed of 2,100 scheduled" in out.getvalue()
    assert "pruned 20" in out.getvalue()
    assert np.isnan(history["losses"][-1, ..., -1]).all()  # rate 3.0 diverged: NaN padded


@pytest.mark.parametrize(("text", "message"), [
    ("[train]\npruning = 'hyperband'\n", r"train.pruning = 'hyperband' is not known"),
    ("[train]\nhalving_rate = 1\n", r"train.halving_rate must be >= 2"),
    ("[train]\nmin_steps = 0\n", r"train.min_steps must be >= 1"),
    ("[train]\nsegment_steps = 0\n", r"train.segment_steps must be >= 1"),
])
def test_bad_early_exit_keys_are_named(text, message):
    with pytest.raises(ConfigError, match=message):
        parse(text + "[optimizer]\nlearning_rate = 0.1\n")


def test_segment_steps_without_early_exit_is_refused_before_running():
    from jaxgd.cli import plan
    with pytest.raises(ConfigError,
                       match=r"train\.segment_steps needs train\.stop_at_convergence"):
        plan.prepare(parse("[data]\ndataset = 'mlcc_cars'\n[optimizer]\nlearning_rate = 0.01\n"
                           "[train]\nsegment_steps = 10\n"))
