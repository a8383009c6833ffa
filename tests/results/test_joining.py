"""``concatenate`` and ``take`` (jaxgd.results.joining) against one ``grid_sweep`` over all
the first axis: parts of the same batch shape are the same program, so bit-identical."""

import jax
import numpy as np
import pytest

import jaxgd
from jaxgd.core.record import PER_RUN
from jaxgd.results.joining import concatenate, take

RATES = [0.01, 0.05, 0.1, 0.2]
SPACE = {"learning_rate": ("log", 1e-3, 0.3), "l2": ("uniform", 0.0, 0.5)}


def _leaves(result, name):
    return jax.tree_util.tree_leaves(jax.device_get(getattr(result, name)))


def _same_runs(joined, whole):
    for name in PER_RUN:
        if name == "errors":
            continue
        assert (getattr(joined, name) is None) == (getattr(whole, name) is None), name
        for a, b in zip(_leaves(joined, name), _leaves(whole, name), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=name)
    assert (joined.errors is None) == (whole.errors is None)
    if whole.errors is not None:  # a side without held-out rows is None
        errors = [jax.tree_util.tree_flatten(dict(r.errors)) for r in (joined, whole)]
        assert errors[0][1] == errors[1][1]
        for a, b in zip(errors[0][0], errors[1][0], strict=True):
            np.testing.assert_array_equal(a, b)
    for name, value in whole.values.items():
        np.testing.assert_array_equal(joined.values[name], value, err_msg=name)
    assert joined.axes == whole.axes and joined.engine == whole.engine
    assert joined.reference == whole.reference


def test_parts_join_to_the_whole_sweep_with_folds_and_held_out_errors(problem):
    """Two parts of two learning rates, padded to the whole's four (a part padded with
    copies of its last rate and taken back: the same program as the whole's four)."""
    X, y = problem
    kw = dict(num_steps=12, validation=jaxgd.KFolds(2), stopping=jaxgd.Stopping(tol=0.0))
    whole = jaxgd.grid_sweep(X, y, grid={"learning_rate": RATES, "seed": [0, 1]}, **kw)
    parts = [take(jaxgd.grid_sweep(X, y, grid={"learning_rate": rates + rates[-1:] * 2,
                                               "seed": [0, 1]}, **kw), slice(0, 2))
             for rates in (RATES[:2], RATES[2:])]
    joined = concatenate(parts)
    assert joined.losses.shape == whole.losses.shape == (4, 2, 2, 12)
    _same_runs(joined, whole)
    assert joined.best() == whole.best()


def test_drawn_points_are_numbered_again_and_the_reference_joins(problem):
    """Drawn l2 per point: the reference varies along "sample" and is joined with it."""
    X, y = problem
    draw = jaxgd.Sample(SPACE, 4, seed=3)
    whole = jaxgd.grid_sweep(X, y, sample=draw, num_steps=10)
    points = {name: np.asarray(whole.values[name]) for name in SPACE}
    parts = [jaxgd.grid_sweep(X, y, num_steps=10, sample=jaxgd.Sample(
        SPACE, 4, points={n: np.concatenate([v[s], v[s][-1:].repeat(2)])
                          for n, v in points.items()})) for s in (slice(0, 2), slice(2, 4))]
    joined = concatenate([take(part, [0, 1]) for part in parts])
    assert joined.values["sample"].tolist() == [0, 1, 2, 3]
    _same_runs(joined, whole)
    assert joined.point((3,)) == whole.point((3,))
    assert np.ndim(joined.optimal_loss) == 1  # one optimum per drawn l2
    # Parts of one point each: their one-row references differ and are joined too.
    ones = concatenate([take(whole, [i]) for i in range(4)])
    _same_runs(ones, whole)
    np.testing.assert_array_equal(ones.gap, whole.gap)


def test_parts_of_other_sweeps_are_refused_naming_what_differs(problem):
    X, y = problem
    a = jaxgd.grid_sweep(X, y, grid={"learning_rate": RATES[:2]}, num_steps=5)
    with pytest.raises(ValueError, match=r"results\[1\].*other num_steps \(6, not 5\)"):
        concatenate([a, jaxgd.grid_sweep(X, y, grid={"learning_rate": RATES[:2]},
                                         num_steps=6)])
    with pytest.raises(ValueError, match="another fixed seed"):
        concatenate([a, jaxgd.grid_sweep(X, y, grid={"learning_rate": RATES[:2]},
                                         num_steps=5, seed=1)])
    with pytest.raises(TypeError, match="as_grid"):
        concatenate([a, jaxgd.sweep(X, y, learning_rates=RATES[:2], num_steps=5)])
    with pytest.raises(ValueError, match="empty"):
        concatenate([])
    with pytest.raises(TypeError, match=r"take\(result, \[i\]\)"):
        take(a, 0)  # an integer would drop the first axis
