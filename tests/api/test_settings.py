"""The settings values (jaxgd.api.settings): checked when made, naming the field; frozen,
comparable and hashable; the public signatures take them instead of the old flat keywords.
Cheap: nothing here compiles a new program shape."""

import inspect

import numpy as np
import pytest

import jaxgd
from jaxgd.api.settings import flatten, group
from jaxgd.pipeline.options import Options

X = np.array([[-1.0], [0.0], [1.0]])
Y = np.array([1.0, 3.0, 5.0])


@pytest.mark.parametrize("make, field", [
    (lambda: jaxgd.Stopping(tol=-1.0), "Stopping.tol"),
    (lambda: jaxgd.Stopping(patience=0), "Stopping.patience"),
    (lambda: jaxgd.Stopping(divergence_factor=1.0), "Stopping.divergence_factor"),
    (lambda: jaxgd.Stopping(segment_steps=0), "Stopping.segment_steps"),
    (lambda: jaxgd.Stopping(pruning="halving"), "Stopping.pruning"),
    (lambda: jaxgd.Halving(rate=1), "Halving.rate"),
    (lambda: jaxgd.Halving(min_steps=0), "Halving.min_steps"),
    (lambda: jaxgd.MiniBatches(0, epochs=2), "MiniBatches.batch_size"),
    (lambda: jaxgd.MiniBatches(2, epochs=0), "MiniBatches.epochs"),
    (lambda: jaxgd.MiniBatches(2, 2, seed=-1), "MiniBatches.seed"),
    (lambda: jaxgd.Record(log_every=0), "Record.log_every"),
    (lambda: jaxgd.Record(progress_every=-1), "Record.progress_every"),
    (lambda: jaxgd.Holdout(1.5), "Holdout.fraction"),
    (lambda: jaxgd.Holdout(0.2, seed=-3), "Holdout.seed"),
    (lambda: jaxgd.KFolds(1), "KFolds.k"),
    (lambda: jaxgd.Placement(chunk_size=0), "Placement.chunk_size"),
    (lambda: jaxgd.Placement(sharding="cols"), "Placement.sharding"),
    (lambda: jaxgd.Placement(unroll=0), "Placement.unroll"),
    (lambda: jaxgd.Optimizer("adamm"), "optimizer 'adamm'"),
    (lambda: jaxgd.Optimizer("momentum", momentum=1.5), "momentum must be in"),
    (lambda: jaxgd.Optimizer("sgd", "cosine_decay", {"decay_step": 5}), "takes no"),
    (lambda: jaxgd.Sample({"learning_rate": ("log", 1e-3, 1.0)}, 0), "num_samples must be"),
    (lambda: jaxgd.Sample({"learning_rate": ("log", 1e-3, 1.0)}, 4, "grid"), "unknown sampler"),
    (lambda: jaxgd.Sample([("learning_rate", 1)], 4), "Sample.space"),
    (lambda: jaxgd.Sample({"learning_rate": ("log", 1e-3, 1.0)}, 2, points={"lr": [0.1, 0.2]}),
     "Sample.points"),
    (lambda: jaxgd.Sample({"learning_rate": ("log", 1e-3, 1.0)}, 2,
                          points={"learning_rate": [0.1]}), "Sample.points"),
])
def test_a_bad_field_is_a_value_error_naming_it(make, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        make()


def test_values_are_frozen_comparable_and_hashable():
    values = [jaxgd.Stopping(tol=1e-4, pruning=jaxgd.Halving(2)), jaxgd.MiniBatches(4, 2),
              jaxgd.Record(snapshot_steps=[0, 5]), jaxgd.Holdout(0.25), jaxgd.KFolds(3),
              jaxgd.Placement(chunk_size=8), jaxgd.Optimizer("adam", b1=0.8),
              jaxgd.Sample({"l2": ["uniform", 0.0, 1.0]}, 4)]
    again = [jaxgd.Stopping(tol=1e-4, pruning=jaxgd.Halving(rate=2)),
             jaxgd.MiniBatches(batch_size=4, epochs=2), jaxgd.Record(snapshot_steps=(0, 5)),
             jaxgd.Holdout(0.25, seed=0), jaxgd.KFolds(k=3), jaxgd.Placement(8),
             jaxgd.Optimizer(name="adam", b1=0.8), jaxgd.Sample({"l2": ("uniform", 0.0, 1.0)}, 4)]
    assert values == again
    assert len({*values, *again}) == len(values)
    assert jaxgd.Stopping() != jaxgd.Stopping(early_exit=True)
    with pytest.raises(AttributeError):
        values[0].tol = 1.0


@pytest.mark.parametrize("old", ["tol", "stop_at_convergence", "batch_size", "schedule",
                                 "validation_fraction", "chunk_size", "init_scale"])
def test_old_keywords_are_refused(old):
    with pytest.raises(TypeError, match=old):
        jaxgd.fit(X, Y, learning_rate=0.1, num_steps=3, **{old: 1})
    with pytest.raises(TypeError, match=old):
        jaxgd.sweep(X, Y, learning_rates=[0.1], num_steps=3, **{old: 1})


def test_a_value_of_the_wrong_kind_is_refused_by_keyword():
    with pytest.raises(TypeError, match=r"stopping must be a jaxgd\.Stopping"):
        jaxgd.fit(X, Y, learning_rate=0.1, num_steps=3, stopping={"tol": 1e-3})
    with pytest.raises(ValueError, match="fit takes no KFolds"):
        jaxgd.fit(X, Y, learning_rate=0.1, num_steps=3, validation=jaxgd.KFolds(3))


@pytest.mark.parametrize("function, most", [(jaxgd.fit, 15), (jaxgd.sweep, 16),
                                            (jaxgd.grid_sweep, 18)])
def test_signatures_show_the_concepts(function, most):
    # X and y included; model= (a user's own model, issue 23) is one more concept each. The
    # old flat keywords were 29, 37 and 42: a new one belongs in a settings value.
    assert len(inspect.signature(function).parameters) <= most


def test_group_then_flatten_gives_back_the_old_flat_options():
    flat = {"tol": 1e-4, "patience": 3, "stop_at_convergence": True, "pruning": "halving",
            "halving_rate": 2, "min_steps": 8, "segment_steps": 4, "reference": False,
            "batch_size": 2, "epochs": 3, "batch_seed": 1, "log_every": 2,
            "snapshot_steps": (0, 4), "progress_every": 1, "track_sharpness": False,
            "chunk_size": 16, "sharding_mode": "none", "unroll": 2, "optimizer": "momentum",
            "schedule": "cosine_decay", "schedule_steps": {"decay_steps": 9},
            "hyperparameters": {"momentum": 0.5}, "init_scale": 0.0,
            "validation_fraction": 0.25, "validation_seed": 7, "l2": 0.1}
    assert Options.of(flatten(group(flat))) == Options(**flat)
