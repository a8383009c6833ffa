"""Runs of the command line that must come out the same: the same config twice gives the same
bytes, and the chunks of a run share one compiled program."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np

from jaxgd.cli import execute, results
from jaxgd.cli import plan as plans
from jaxgd.cli.config import parse
from tests.conftest import compiles

ROOT = Path(__file__).parents[2]


# ------------------------------------------------------------------ reproducibility

SMALL = """\
[data]
dataset = "synthetic"
n_samples = 40
n_features = 2

[model]
seeds = [3, 4]

[optimizer]
learning_rates = [0.05, 0.5, 3.0]

[train]
num_steps = 300

[output]
figures = ["sweep_summary"]
"""


def test_the_same_config_gives_bit_identical_results(tmp_path):
    config = tmp_path / "small.toml"
    config.write_text(SMALL)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    runs = [subprocess.Popen([sys.executable, "-m", "jaxgd", "run", str(config), "--quiet",
                              "--out", str(tmp_path / name)], env=env, text=True,
                             stderr=subprocess.PIPE) for name in ("one", "two")]
    for process in runs:
        _, stderr = process.communicate(timeout=180)
        assert process.returncode == 0, stderr
    (h1, s1), (h2, s2) = results.read(tmp_path / "one"), results.read(tmp_path / "two")
    assert s1.pop("timing_seconds") and s2.pop("timing_seconds")
    assert s1 == s2
    assert s1["versions"]["jax"] == jax.__version__ and s1["device"]["backend"]
    assert sorted(h1) == sorted(h2)
    for key in h1:
        assert np.array_equal(h1[key], h2[key], equal_nan=h1[key].dtype.kind == "f"), key
    for name in ("losses.csv", "sweep_summary.png"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    text = (tmp_path / "one" / "summary.json").read_text()
    assert json.loads(text)["config"]["model"]["seeds"] == [3, 4]



def test_the_chunks_of_a_run_share_one_compiled_program():
    config = parse("[data]\ndataset = 'mlcc_cars'\n[optimizer]\n"
                   "learning_rates = [1e-4, 1e-3, 0.01, 0.02, 0.03, 0.05, 0.06]\n"
                   "[train]\nnum_steps = 29\n")
    plan = plans.prepare(config, chunk_size=3)
    assert plan.num_chunks == 3 and plan.chunk_rates(2) == (0.06,)
    chunks = [execute.run_chunk(plan, 0)]
    with compiles() as later:
        chunks += [execute.run_chunk(plan, 1), execute.run_chunk(plan, 2)]  # the last is padded
    assert later == []
    assert [c["losses"].shape for c in chunks] == [(3, 1, 29), (3, 1, 29), (1, 1, 29)]
    whole = execute.assemble(plan, chunks)
    assert whole.history["losses"].shape == (7, 1, 29)
