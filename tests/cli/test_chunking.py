"""Successive halving on the command line ranks the whole sweep, however large it is.

The command line runs a sweep in chunks of learning rates (checkpointed for ``--resume``);
a sweep of more than ``CHUNK_RUNS`` runs is chunked by default. Halving ranked each chunk
alone, so a run's fate hung on the chunking (a hostile test: 34 of 81 runs of
``auto_mpg_halving`` pruned at other steps with ``--chunk-size 3``). A halving sweep now
runs as one chunk, and every number equals the library's ``grid_sweep``.
"""

import numpy as np
import pytest

import jaxgd
from jaxgd import cli
from jaxgd.api.settings import group
from jaxgd.cli import checkpoint, chunking, execute, results
from jaxgd.cli import plan as plans
from jaxgd.cli.config import ConfigError, parse
from jaxgd.results.joining import concatenate

RATES = (0.003, 0.01, 0.03, 0.1)
STEPS, RUNG = 120, 10
CONFIG = """\
[data]
dataset = "synthetic"
n_samples = 40
n_features = 2
{data}

[model]
seeds = {seeds}

[optimizer]
learning_rates = {rates}

[train]
num_steps = {steps}
{halving}

[output]
figures = []
"""
#: The per-run arrays that must equal the library's, and those of held-out data.
FIELDS = ("pruned_step", "steps_run", "losses", "final_loss", "diverged")
HELD = ("validation_losses", "final_validation_loss")


def halving(seeds: int, data: str = "", pruning: bool = True) -> str:
    early = f'pruning = "halving"\nmin_steps = {RUNG}\nsegment_steps = {RUNG}'
    return CONFIG.format(data=data, seeds=list(range(seeds)), rates=list(RATES), steps=STEPS,
                         halving=early if pruning else "")


def library(plan, rates=RATES, **held):
    """The same sweep through the library's ``grid_sweep``, called directly (reporting its
    progress every step as the command line does here: the same compiled programs, faster
    tests; progress changes no number)."""
    X, y = plan.train_data
    return jaxgd.grid_sweep(X, y, grid={"learning_rate": rates, "seed": plan.seeds},
                            num_steps=STEPS,
                            stopping=jaxgd.Stopping(pruning=jaxgd.Halving(min_steps=RUNG),
                                                    segment_steps=RUNG),
                            record=jaxgd.Record(progress_every=1),
                            **group(held))  # the config's held-out rows, as the CLI gives them


def command_line(plan):
    """The command line's chunks, each rebuilt as ``execute.assemble`` rebuilds them and
    joined by the library (without the descent path of the best run, a ``fit`` slow to
    compile)."""
    return concatenate([execute.check_chunk(plan, index, execute.run_chunk(plan, index))
                        for index in range(plan.num_chunks)])


def assert_same_runs(history, result, fields):
    for name in fields:
        expected = np.asarray(getattr(result, name))
        assert np.array_equal(getattr(history, name), expected,
                              equal_nan=expected.dtype.kind == "f"), name


@pytest.fixture
def small_chunks(monkeypatch):
    """A default chunk of 4 runs: 2 of the learning rates with 2 seeds, so the small sweeps
    here are chunked by default as a sweep of more than 1024 runs is."""
    monkeypatch.setattr(chunking, "CHUNK_RUNS", 4)


def test_a_halving_sweep_larger_than_a_chunk_is_ranked_whole_as_the_library_ranks_it(
        small_chunks):
    config = parse(halving(seeds=2))
    plain = parse(halving(seeds=2, pruning=False))
    assert plans.prepare(plain).num_chunks == 2  # without halving: chunked by default
    plan = plans.prepare(config)
    assert plan.num_chunks == 1 and plan.chunk_size == len(RATES)
    history = command_line(plan)
    result = library(plan)
    assert (result.pruned_step >= 0).any() and (result.pruned_step < 0).any()
    assert_same_runs(history, result, FIELDS)
    # Ranked chunk by chunk, as it was, other runs would be pruned at other steps.
    apart = np.concatenate([library(plan, RATES[:2]).pruned_step,
                            library(plan, RATES[2:]).pruned_step])
    assert not np.array_equal(apart, result.pruned_step)


def test_the_largest_default_chunk_holds_a_whole_halving_sweep():
    config = parse(halving(seeds=300))  # 1200 runs, more than CHUNK_RUNS
    assert chunking.chunk_size(config, None, len(RATES), 300) == len(RATES)
    plain = parse(halving(seeds=300, pruning=False))
    assert chunking.chunk_size(plain, None, len(RATES), 300) == 3


@pytest.mark.parametrize("data", ["validation_fraction = 0.25", "k_folds = 3"])
def test_halving_with_held_out_data_equals_the_library(data, small_chunks):
    config = parse(halving(seeds=2, data=data))
    plan = plans.prepare(config)
    assert plan.num_chunks == 1
    held = plans.holdout_options(config)
    history = command_line(plan)
    result = library(plan, **held)
    assert (result.pruned_step >= 0).any()
    assert_same_runs(history, result, FIELDS + HELD)


def test_a_smaller_chunk_size_is_refused_with_halving(tmp_path, capsys):
    path = tmp_path / "halving.toml"
    path.write_text(halving(seeds=1))
    out = tmp_path / "out"
    assert cli.main(["run", str(path), "--out", str(out), "--chunk-size", "3"]) == 2
    message = capsys.readouterr().err
    assert "--chunk-size 3: train.pruning = 'halving' ranks the runs of the whole sweep" in (
        message) and "leave --chunk-size out" in message
    assert not out.exists()
    assert plans.prepare(parse(halving(seeds=1)), chunk_size=4).num_chunks == 1  # all: fine


def test_without_halving_the_chunking_is_unchanged():
    plain = parse(halving(seeds=1, pruning=False))
    assert plans.prepare(plain, chunk_size=3).num_chunks == 2
    with pytest.raises(ConfigError, match="the chunk size must be an integer >= 1, got 0"):
        chunking.chunk_size(plain, 0, len(RATES), 1)


def test_a_halving_run_stopped_after_its_chunk_resumes(tmp_path, capsys):
    path = tmp_path / "halving.toml"
    path.write_text(halving(seeds=2))
    config, _ = cli.load_config(str(path), [])
    plan = plans.prepare(config)
    out, whole = tmp_path / "out", tmp_path / "whole"
    saved = checkpoint.Checkpoint.start(out, plan.fingerprint())
    assert "successive halving" in cli._kept(plan, saved, out)  # stopped before: says why
    saved.save(0, execute.run_chunk(plan, 0))  # stopped while writing the results
    assert "1 of 1 chunks are saved" in cli._kept(plan, saved, out)
    assert cli.main(["run", str(path), "--out", str(out), "--resume"]) == 0
    assert "1 of 1 chunks were done" in capsys.readouterr().err
    assert cli.main(["run", str(path), "--out", str(whole), "--quiet"]) == 0
    for key, array in results.read(whole)[0].items():
        assert np.array_equal(array, results.read(out)[0][key],
                              equal_nan=array.dtype.kind == "f"), key


def test_resuming_halving_chunks_ranked_apart_is_refused(tmp_path, capsys):
    path = tmp_path / "halving.toml"
    path.write_text(halving(seeds=2))
    config, _ = cli.load_config(str(path), [])
    out = tmp_path / "out"
    # What an older jaxgd left: a halving sweep in chunks of one learning rate.
    fingerprint = {**plans.prepare(config).fingerprint(), "chunk_size": 1, "num_chunks": 4}
    checkpoint.Checkpoint.start(out, fingerprint).save(0, {"learning_rates": np.ones(1)})
    assert cli.main(["run", str(path), "--out", str(out), "--resume"]) == 2
    message = capsys.readouterr().err
    assert "was started in 4 chunks" in message and "--overwrite" in message
