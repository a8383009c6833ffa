"""``[optimizer] sample``: drawn learning rates (and companions) in configs and results."""

import csv

import numpy as np
import pytest

import jaxgd
from jaxgd import fit
from jaxgd.cli import execute, results
from jaxgd.cli.config import ConfigError, parse
from jaxgd.cli.shipped import shipped_configs
from jaxgd.tuning.search import draw

SAMPLED = """\
[data]
dataset = "synthetic"
n_samples = 40
n_features = 2

[model]
seeds = [0, 1]

[optimizer]
name = "adam"
sample = { learning_rate = ["log", 1e-3, 0.5], b1 = ["uniform", 0.5, 0.95] }
num_samples = 5
sample_seed = 4

[train]
num_steps = 60

[output]
figures = []
"""


def test_a_sample_draws_the_learning_rates_and_their_companions():
    config = parse(SAMPLED)
    drawn = draw({"learning_rate": ("log", 1e-3, 0.5), "b1": ("uniform", 0.5, 0.95)}, 5,
                 "sobol", 4)
    np.testing.assert_array_equal(config.learning_rates, drawn["learning_rate"])
    np.testing.assert_array_equal(config.drawn()["b1"], drawn["b1"])
    assert "random_search" in shipped_configs()


def test_drawn_values_are_float64_arrays_not_python_floats():
    # A tuple of Python floats costs 4 times the memory and a Python loop per point (2**27
    # points: 70 s and 5.7 GB); the drawn values stay NumPy arrays, read-only (cached).
    config = parse(SAMPLED)
    for values in (config.learning_rates, *config.drawn().values()):
        assert isinstance(values, np.ndarray) and values.dtype == np.float64
        assert values.shape == (5,) and not values.flags.writeable
    assert config.num_rates == 5


def test_runs_record_their_drawn_values_whatever_the_chunks(tmp_path):
    config = parse(SAMPLED)
    whole = execute.run(config)
    chunked = execute.run(config, chunk_size=2)  # 2 + 2 + 1 (padded) points
    np.testing.assert_allclose(chunked.history["losses"], whole.history["losses"],
                               rtol=1e-6)
    history, summary = whole.history, whole.summary
    assert history["losses"].shape == (5, 2, 60)
    np.testing.assert_array_equal(history["sampled_values_b1"], config.drawn()["b1"])
    assert summary["sample"]["values"]["b1"] == list(config.drawn()["b1"])
    assert summary["sample"]["space"]["learning_rate"] == ["log", 1e-3, 0.5]
    # Each run is named by its drawn values, and is the fit with those values.
    run = summary["runs"][3 * 2 + 1]  # point 3, seed 1
    assert run["b1"] == config.drawn()["b1"][3] and run["seed"] == 1
    single = fit(*execute.prepare(config).train_data, learning_rate=run["learning_rate"],
                 seed=1, optimizer=jaxgd.Optimizer("adam", b1=run["b1"]), num_steps=60)
    assert run["final_loss"] == pytest.approx(float(single.final_loss), rel=1e-5)
    best = summary["best_run"]
    assert "b1" in best and best["final_loss"] == min(
        r["final_loss"] for r in summary["runs"] if not r["diverged"])
    results.write_losses_csv(tmp_path, history)
    with open(tmp_path / results.LOSSES) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:3] == ["learning_rate", "b1", "seed"]
    assert float(rows[0]["b1"]) == config.drawn()["b1"][0]


@pytest.mark.parametrize("text, message", [
    ("sample = { b1 = ['uniform', 0.5, 0.9] }\nnum_samples = 4",
     "must range over learning_rate"),
    ("sample = { learning_rate = ['log', 1e-3, 1.0] }", "needs optimizer.num_samples"),
    ("num_samples = 4\nlearning_rate = 0.1", "num_samples needs optimizer.sample"),
    ("sample = { learning_rate = ['log', 1e-3, 1.0] }\nnum_samples = 0",
     "optimizer.num_samples must be a positive integer, got 0"),
    ("sample = { learning_rate = ['log', 1e-3, 1.0] }\nnum_samples = 4\nlearning_rates = [1.0]",
     "leave optimizer.learning_rate and optimizer.learning_rates out"),
    ("sample = { learning_rate = ['log', -1, 1.0] }\nnum_samples = 4", "needs low > 0"),
    ("sample = { learning_rate = ['log', 1.0, 0.1] }\nnum_samples = 4", "low < high"),
    ("sample = { learning_rate = ['exp', 1e-3, 1.0] }\nnum_samples = 4", "unknown kind 'exp'"),
    ("sample = { learning_rate = ['log', 1e-3, 1.0], momentum = ['uniform', 0, 0.9] }\n"
     "num_samples = 4", r"unknown hyperparameter 'momentum'"),
    ("sample = { learning_rate = ['log', 1e-3, 1.0], b1 = ['uniform', 0.5, 1.0] }\n"
     "num_samples = 4", r"optimizer.sample\['b1'\]: high=1.0 is not a value b1 may take: "
                        r"b1 must be in \[0, 1\)"),
    ("sample = { learning_rate = ['uniform', 0.0, 1.0] }\nnum_samples = 4",
     r"optimizer.sample\['learning_rate'\]: low=0.0 is not a value learning_rate may take"),
    ("sample = { learning_rate = ['log', 1e-3, 1.0], b1 = ['uniform', 0.5, 0.9] }\n"
     "num_samples = 4\ngrid = { b1 = [0.9] }", "both name b1"),
    ("sample = { learning_rate = ['log', 1e-3, 1.0], l2 = ['log', 1e-3, 1.0] }\n"
     "num_samples = 4", "optimizer.grid.l2"),
    ("sample = { learning_rate = ['log', 1e-3, 1.0] }\nnum_samples = 4\nsampler = 'sobel'",
     r"Did you mean 'sobol'\?"),
    ("sample = { learning_rate = ['log', 1e-3, 1.0] }\nnum_samples = 4\nsample_seed = -2",
     "optimizer.sample_seed must be >= 0, got -2"),
    ("sample = { learning_rate = 'log' }\nnum_samples = 4", "must be a list"),
])
def test_bad_samples_name_the_key(text, message):
    with pytest.raises(ConfigError, match=message):
        parse(f"[optimizer]\nname = 'adam'\n{text}\n")
