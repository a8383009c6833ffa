import numpy as np
import pytest

import jaxgd
from jaxgd import fit, grid_sweep, solve
from jaxgd.api.settings import group
from jaxgd.core.optimizers import make_spec
from jaxgd.tuning.search import Range, check_ends, check_space, draw
from tests.conftest import COMPILE_EVENT, compiles, well_conditioned

X, Y = well_conditioned(2, n=40, d=3)
SPACE = {"learning_rate": ("log", 1e-3, 0.3), "b1": ("uniform", 0.5, 0.99)}


def test_sobol_draws_cover_each_decade_and_range_evenly():
    points = draw({"learning_rate": ("log", 1e-4, 1.0), "b1": ("uniform", 0.5, 0.9)}, 64,
                  seed=3)
    decades = np.floor(np.log10(points["learning_rate"])).astype(int)
    assert np.bincount(decades + 4).tolist() == [16, 16, 16, 16]  # a 2^m prefix is a net
    eighths = np.floor((points["b1"] - 0.5) / 0.4 * 8).astype(int)
    assert np.bincount(eighths).tolist() == [8] * 8
    assert (points["learning_rate"] >= 1e-4).all() and (points["learning_rate"] < 1).all()


@pytest.mark.parametrize("sampler", ["sobol", "random"])
def test_draws_follow_their_seed(sampler):
    a = draw(SPACE, 32, sampler, seed=1)
    np.testing.assert_array_equal(a["b1"], draw(SPACE, 32, sampler, seed=1)["b1"])
    assert not np.isclose(a["b1"], draw(SPACE, 32, sampler, seed=2)["b1"]).all()
    assert ((a["b1"] >= 0.5) & (a["b1"] < 0.99)).all()


def test_random_draws_are_log_uniform():
    lr = draw({"learning_rate": ("log", 1e-6, 1.0)}, 4000, "random", seed=0)["learning_rate"]
    # log10 uniform on [-6, 0): mean -3, sd 6 / sqrt(12); 4000 draws: mean within 4 sd/63.
    assert abs(np.log10(lr).mean() + 3) < 4 * (6 / np.sqrt(12)) / np.sqrt(4000)


def test_range_maps_to_and_from_the_unit_interval():
    r = Range("log", 1e-4, 1.0)
    assert r.from_unit(0.0) == pytest.approx(1e-4) and r.from_unit(0.5) == pytest.approx(1e-2)
    np.testing.assert_allclose(float(r.to_unit(1e-3)), 0.25, rtol=1e-6)
    u = Range("uniform", 0.5, 0.9)
    np.testing.assert_allclose(float(u.to_unit(u.from_unit(0.3))), 0.3, rtol=1e-6)


def test_the_sample_is_one_axis_crossed_with_the_grid_and_each_run_is_its_fit():
    result = grid_sweep(X, Y, sample=jaxgd.Sample(SPACE, 8), grid={"seed": [0, 5]},
                        optimizer="adam", num_steps=30)
    assert result.axes == ("sample", "seed") and result.losses.shape == (8, 2, 30)
    assert result.sampled == ("learning_rate", "b1")
    drawn = draw(SPACE, 8)  # the same default sampler and seed
    np.testing.assert_array_equal(result.values["learning_rate"], drawn["learning_rate"])
    assert "b1" not in result.fixed and result.fixed["b2"] == 0.999
    for index in [(0, 0), (5, 1), (7, 0)]:
        point = result.point(index)
        assert set(point) == {"learning_rate", "b1", "seed"}
        assert point["b1"] == result.values["b1"][index[0]]
        single = fit(X, Y, learning_rate=point["learning_rate"], seed=point["seed"],
                     optimizer=jaxgd.Optimizer("adam", b1=point["b1"]), num_steps=30)
        np.testing.assert_allclose(result.losses[index], single.losses, rtol=1e-5, atol=1e-6)
        assert result.run(index).learning_rate == pytest.approx(point["learning_rate"])


def test_a_sampled_l2_gives_each_run_its_own_optimum():
    result = grid_sweep(X, Y, sample=jaxgd.Sample({"l2": ("log", 1e-3, 1.0)}, 4), learning_rate=0.2,
                        num_steps=400)
    assert result.axes == ("sample",)
    for i, strength in enumerate(result.values["l2"]):
        optimum = solve(X, Y, l2=float(strength)).loss
        assert result.optimal_loss[i] == pytest.approx(optimum, rel=1e-12)
        # float32 descent to the float64 ridge optimum: a few float32 ulps of the loss.
        assert result.final_loss[i] == pytest.approx(optimum, rel=1e-5)


def test_a_new_sample_of_the_same_size_reuses_the_program():
    with compiles() as first:
        grid_sweep(X, Y, sample=jaxgd.Sample(SPACE, 4), optimizer="adam", num_steps=12)
    assert COMPILE_EVENT in first
    with compiles() as again:
        drawn = grid_sweep(X, Y, sample=jaxgd.Sample(SPACE, 4, seed=9, sampler="random"),
                           optimizer="adam", num_steps=12)
        # Points drawn before (a chunk of a draw, as jaxgd run gives them) run as drawn ones.
        points = {name: drawn.values[name] for name in SPACE}
        given = grid_sweep(X, Y, sample=jaxgd.Sample(SPACE, 4, points=points), optimizer="adam",
                           num_steps=12)
    assert again == []
    np.testing.assert_array_equal(given.losses, drawn.losses)
    assert given.sampled == drawn.sampled


@pytest.mark.parametrize("keywords, message", [
    ({"sample": {"learning_rte": ("log", 1e-3, 1.0)}}, r"sample\['learning_rte'\].*unknown"),
    ({"sample": {"momentum": ("uniform", 0.1, 0.9)}}, r"sample\['momentum'\].*unknown"),
    ({"sample": {"learning_rate": ("normal", 1e-3, 1.0)}}, r"unknown kind 'normal'"),
    ({"sample": {"learning_rate": ("log", 1.0, 1e-3)}}, r"sample\['learning_rate'\].*low <"),
    ({"sample": {"learning_rate": ("log", 0.5, 0.5)}}, r"low < high"),
    ({"sample": {"learning_rate": ("log", 0.0, 1.0)}}, r"log range needs low > 0"),
    ({"sample": {"learning_rate": ("log", 1e-3)}}, r"\(kind, low, high\)"),
    ({"sample": {"learning_rate": ("log", "a", 1.0)}}, r"must be numbers"),
    ({"sample": {"seed": ("uniform", 0, 9)}}, r"seeds are not sampled.*grid="),
    ({"sample": {"b1": ("uniform", 0.5, 1.5)}},
     r"sample\['b1'\]: high=1.5 is not a value b1 may take: b1 must be in \[0, 1\)"),
    # An open end of the hyperparameter's range is refused as an end: refinement reaches
    # a range's ends exactly (jaxgd.tuning.search.check_ends).
    ({"sample": {"b1": ("uniform", 0.5, 1.0)}}, r"sample\['b1'\]: high=1.0 "),
    ({"sample": {"learning_rate": ("uniform", -1e-3, 0.5)}},
     r"sample\['learning_rate'\]: low=-0.001 is not a value learning_rate may take: "
     r"learning_rate must be finite and positive"),
    ({"sample": {"learning_rate": ("uniform", -1, 0.1)}}, r"sample\['learning_rate'\]: low=-1.0"),
    ({"sample": {"l2": ("uniform", -1.0, 0.1)}, "learning_rate": 0.1},
     r"sample\['l2'\]: low=-1.0 is not a value l2 may take: l2 must be finite and >= 0"),
    ({"sample": {"eps": ("uniform", -1e-8, 1e-8)}, "learning_rate": 0.1},
     r"sample\['eps'\]: low=-1e-08 .*eps must be in \(0, inf\)"),
    ({"sample": {"learning_rate": ("log", 1e-3, 1.0)}, "num_samples": 0}, r"num_samples"),
    ({"sample": {"learning_rate": ("log", 1e-3, 1.0)}, "num_samples": 2.5}, r"num_samples"),
    ({"sample": {"learning_rate": ("log", 1e-3, 1.0)}, "num_samples": 4, "sampler": "halton"},
     r"unknown sampler 'halton'"),
    ({"sample": {"learning_rate": ("log", 1e-3, 1.0)}, "num_samples": 4, "sample_seed": -1},
     r"Sample\.seed"),
    ({"sample": {"learning_rate": ("log", 1e-3, 1.0)}, "num_samples": 4,
      "grid": {"learning_rate": [0.1]}}, r"'learning_rate' both sampled and a grid axis"),
    ({"sample": {"learning_rate": ("log", 1e-3, 1.0)}, "num_samples": 4,
      "learning_rate": 0.1}, r"learning_rate is both"),
    ({}, r"give grid=.*sample="),
])
def test_bad_search_spaces_are_named(keywords, message):
    keywords = {"num_samples": 4, **keywords} if "sample" in keywords else keywords
    with pytest.raises(ValueError, match=message):  # the old flat spellings, grouped here
        grid_sweep(X, Y, **group({"optimizer": "adam", "num_steps": 5, **keywords}))


def test_a_sample_too_large_for_memory_is_refused_before_drawing(monkeypatch):
    """The size is checked from num_samples alone: the draw (``unit_points``) never runs."""
    from jaxgd.inputs import validation
    from jaxgd.tuning import search

    monkeypatch.setattr(validation, "memory_bytes", lambda: 8 * 2**30)  # an 8 GiB machine
    monkeypatch.setattr(search, "unit_points", lambda *_: pytest.fail("points were drawn"))
    with pytest.raises(MemoryError, match=r"num_samples = 4294967296: drawing 4294967296 "
                       r"points of 2 hyperparameters would take .* GiB, more than this "
                       r"machine's 8.0 GiB of memory"):
        draw(SPACE, 2**32)
    with pytest.raises(MemoryError, match=r"num_samples = 4294967296: drawing"):
        grid_sweep(X, Y, sample=jaxgd.Sample(SPACE, 2**32), optimizer="adam", num_steps=5)
    # Points that draw in ~1 GiB, but whose runs' loss histories alone would take 125 GiB.
    with pytest.raises(MemoryError, match=r"num_samples = 16777216: 16777216 points × 2 "
                       r"grid points make 33554432 runs, whose loss histories alone would "
                       r"take 125.0 GiB, more than this machine's 8.0 GiB"):
        grid_sweep(X, Y, sample=jaxgd.Sample(SPACE, 2**24), grid={"seed": [0, 1]},
                   optimizer="adam", num_steps=1000)


def test_sobol_s_most_points_are_named_as_num_samples():
    with pytest.raises(ValueError, match=r"num_samples must be at most 2\*\*32 for the "
                       r"sobol sampler \(its points have 32 bits\), got 4294967297"):
        draw(SPACE, 2**32 + 1)


def test_check_space_names_the_entry():
    with pytest.raises(ValueError, match=r"sample\['eps'\].*unknown hyperparameter"):
        check_space({"eps": ("log", 1e-9, 1e-6)}, valid=("learning_rate",))
    with pytest.raises(ValueError, match="at least one"):
        check_space({})


@pytest.mark.parametrize("optimizer, schedule, space", [
    ("adam", "constant", {"b1": ("uniform", 0.0, 0.99), "eps": ("log", 1e-9, 1e-6)}),
    ("sgd", "exponential_decay", {"decay_rate": ("uniform", 0.1, 1.0)}),  # closed: 1 is fine
    ("sgd", "cosine_decay", {"alpha": ("uniform", 0.0, 1.0), "l2": ("uniform", 0.0, 1.0)}),
])
def test_ends_the_hyperparameter_may_take_are_accepted(optimizer, schedule, space):
    check_ends(check_space(space), make_spec(optimizer, schedule))


@pytest.mark.parametrize("optimizer, name, low, high, end", [
    ("adam", "b1", -0.1, 0.5, "low"),
    ("adam", "b2", 0.5, 1.0, "high"),
    ("sgd", "decay_rate", 0.0, 0.5, "low"),  # decay_rate lies in (0, 1]
    ("sgd", "learning_rate", 0.1, float("inf"), "high"),
])
def test_check_ends_names_the_entry_and_its_end(optimizer, name, low, high, end):
    schedule = "exponential_decay" if name == "decay_rate" else "constant"
    space = {name: Range("uniform", low, high)}
    value = low if end == "low" else high
    with pytest.raises(ValueError, match=rf"^sample\['{name}'\]: {end}={value!r} is not a "
                                         rf"value {name} may take"):
        check_ends(space, make_spec(optimizer, schedule))
