"""``jaxgd.lr_range``: exact where the theory is (sgd, momentum, Nesterov), checked against
``jaxgd.stability``, the closed-form trajectory and separate ``fit`` runs; empirical for Adam,
checked against the divergence of separate runs."""

import jax
import numpy as np
import pytest

import jaxgd
from jaxgd.api.lr_range import describe, lr_range
from jaxgd.api.settings import group
from jaxgd.core.params import LinearParams
from jaxgd.pipeline.holdout import split
from tests.conftest import COURSE_CARS_X, COURSE_CARS_Y, well_conditioned

X, Y = COURSE_CARS_X, COURSE_CARS_Y


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov"])
@pytest.mark.parametrize("x64", [False, True])
def test_exact_range_is_the_theory_and_the_sweep_brackets_it(optimizer, x64):
    with jax.enable_x64(x64):
        momentum = {} if optimizer == "sgd" else {"momentum": 0.9}
        found = lr_range(X, Y, optimizer=jaxgd.Optimizer(optimizer, **momentum), init=0.0,
                         num_steps=3000)
    theory = jaxgd.stability(X, optimizer=optimizer,
                             momentum=None if optimizer == "sgd" else 0.9)
    assert found.exact
    assert found.max_stable == theory.max_learning_rate  # exactly: it is the theory's
    assert found.fastest == theory.fastest_learning_rate
    # The sweep confirms: the candidates 2% either side of the limit fall on either side of
    # the edge (3000 steps: at 1.02·limit the loss grows by ≥ 1.02² per step).
    survived, fell = found.bracket()
    assert survived < found.max_stable < fell
    assert fell / found.max_stable == pytest.approx(1.02)
    assert found.sweep.losses.dtype == (np.float64 if x64 else np.float32)


def test_suggested_rate_reaches_the_target_when_the_closed_form_trajectory_does():
    found = lr_range(X, Y, num_steps=1000, init=0.0)
    optimum = jaxgd.solve(X, Y).loss
    start = LinearParams(np.zeros(1), np.float64(0.0))
    exact_first = []
    for rate in found.learning_rates:
        losses = jaxgd.exact_trajectory(X, Y, start, rate, 1000).losses
        gaps = (losses - optimum) / (losses[0] - optimum)
        hit = np.flatnonzero(gaps <= found.target)
        exact_first.append(int(hit[0]) if hit.size else -1)
    exact_first = np.asarray(exact_first)
    # float32 rounding can move the crossing by a step or two where the gap passes the
    # target slowly; it cannot make a run reach it that never does in float64.
    reached = exact_first >= 0
    np.testing.assert_array_equal(found.steps_to_target >= 0, reached)
    np.testing.assert_allclose(found.steps_to_target[reached], exact_first[reached], atol=2)
    soonest = exact_first[reached].min()
    best = found.learning_rates[reached][exact_first[reached] <= soonest + 2]
    assert best.min() <= found.suggested <= best.max()


def test_adam_range_is_empirical_and_matches_separate_runs():
    # Adam's step is about η per coordinate whatever the curvature, so a quadratic does not
    # make it blow up until η is large against the parameters' scale: candidates up to 1e4.
    rates = np.geomspace(1e-2, 1e4, 13)
    found = lr_range(X, Y, optimizer="adam", num_steps=300, learning_rates=rates,
                     init=0.0)
    assert not found.exact and np.isnan(found.limit)
    diverged = np.asarray(found.sweep.diverged)
    assert diverged.any() and not diverged.all()
    first = int(np.flatnonzero(diverged)[0])
    assert found.first_diverged == rates[first]
    assert found.max_stable == rates[first - 1]
    for rate, diverges in ((found.max_stable, False), (found.first_diverged, True)):
        alone = jaxgd.fit(X, Y, learning_rate=rate, num_steps=300, optimizer="adam",
                          init=0.0)
        assert bool(alone.diverged) == diverges, rate
    assert found.fastest == rates[found.sweep.best()[0]]
    assert found.fastest <= found.max_stable


def test_minibatch_ranges_are_empirical_with_the_full_batch_limit_for_reference():
    data = jaxgd.datasets.auto_mpg()
    features = data.X[:, [data.feature_names.index("weight")]] / 1000.0  # 1000s of pounds
    found = lr_range(features, data.y, batches=jaxgd.MiniBatches(batch_size=50, epochs=5),
                     num_rates=6)
    assert not found.exact
    assert found.limit == jaxgd.stability(features).max_learning_rate
    diverged = np.asarray(found.sweep.diverged)
    below = found.learning_rates <= found.max_stable
    assert diverged.any() and not diverged[below].any()  # 3·limit diverges with batches too
    assert found.first_diverged == found.learning_rates[diverged][0]


def test_a_validation_fraction_gives_the_limit_of_the_split_s_training_rows():
    # The runs train on the split's training rows only: the limit, the fastest rate and the
    # candidates around them are those rows' (the held-out rows' curvature is not theirs).
    X_all, y_all = well_conditioned(3, n=40, d=2)
    X_all = X_all * np.linspace(0.5, 3.0, 40)[:, None]  # rows of unequal curvature
    X_train = split(X_all, y_all, 0.3, seed=5)[0]
    found = lr_range(X_all, y_all, num_steps=2000, num_rates=6,
                     validation=jaxgd.Holdout(0.3, seed=5),
                     init=0.0)
    theory = jaxgd.stability(X_train)
    assert theory.max_learning_rate != jaxgd.stability(X_all).max_learning_rate
    assert found.exact and found.limit == theory.max_learning_rate
    assert found.max_stable == theory.max_learning_rate
    assert found.fastest == theory.fastest_learning_rate
    survived, fell = found.bracket()  # the sweep, on those rows, confirms it
    assert survived < found.max_stable < fell


def test_describe_names_the_exact_limit_and_says_when_no_rate_reached_the_target():
    text = describe(lr_range(X, Y, num_steps=1000, num_rates=8, init=0.0))
    assert "exact, 2/λmax" in text and "suggested η = " in text
    short = lr_range(X, Y, num_steps=5, num_rates=8, init=0.0)
    assert np.isnan(short.suggested) and "give more steps" in describe(short)


@pytest.mark.parametrize("keywords,message", [
    ({"target": 1.5}, "target must be in (0, 1)"),
    ({"num_rates": 1}, "num_rates must be >= 2, got 1"),
    ({"k_folds": 3}, "lr_range takes no KFolds: it reads one run per candidate"),
    ({"optimizer": "adma"}, "unknown optimizer 'adma'"),
    ({"learning_rates": [0.1, -1.0]}, "learning_rates must be finite positive"),
    ({"seeds": [0, 1]}, "lr_range takes no seeds: it tests one start"),
    ({"reference": False}, "lr_range takes no Stopping(reference=False)"),
])
def test_bad_arguments_are_named(keywords, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        lr_range(X, Y, num_steps=10, **group(keywords))  # old flat spellings, grouped


@pytest.mark.parametrize("num_rates", [np.int64(5), np.int32(5), np.array(5)])
def test_numpy_integers_are_counts_of_rates(num_rates):
    found = lr_range(X, Y, num_steps=10, num_rates=num_rates, init=0.0)
    # 5 log-spaced candidates, plus the limit ± 2% and the fastest rate.
    assert found.learning_rates.size == 5 + 3


@pytest.mark.parametrize("num_rates", [True, 5.0, np.float64(5.0), "5"])
def test_num_rates_that_are_not_integers_are_refused_by_name(num_rates):
    with pytest.raises(TypeError, match="num_rates must be an integer"):
        lr_range(X, Y, num_steps=10, num_rates=num_rates)


def test_the_figure_marks_the_three_rates_and_the_diverged_candidates():
    from jaxgd.api.lr_range import summary
    from jaxgd.figures import lr_range as figure

    record = summary(lr_range(X, Y, num_steps=1000, num_rates=6, init=0.0))
    fig = figure.draw(record, title="cars")
    gap_panel = fig.axes[0]
    labels = gap_panel.get_legend_handles_labels()[1]
    assert [label.split()[0] for label in labels] == ["max", "fastest", "suggested", "diverged"]
    fell = sum(c["diverged"] for c in record["candidates"])
    assert fell > 0 and len(gap_panel.collections[0].get_offsets()) == fell


def test_a_float32_final_loss_rounded_below_the_optimum_is_a_relative_gap_of_0():
    # Float32 rounds the converged runs' loss a few ulps below the float64 L* = 1.47 (by
    # ~1e-10 of the way from the start): a rounding, within 16 ulps of L*, so a gap of 0,
    # as Result.gap reports it, not a few ulps negative.
    found = lr_range(X, Y, num_steps=3000, init=0.0)
    final = np.asarray(found.sweep.final_loss)
    below = final.astype(np.float64) < found.sweep.optimal_loss
    assert final.dtype == np.float32 and below.any()
    assert np.all(found.relative_gap[below] == 0.0)
    assert np.all(found.relative_gap >= 0.0)
