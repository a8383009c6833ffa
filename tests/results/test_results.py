"""Every result type the library returns is a pytree of arrays, with one grid protocol.

Issue #23, item 4: ``tree_map(lambda a: a.mean(), result)`` must work on every result (it
raised on a Python float or string leaf), results must pass through the caller's ``jit``
and ``vmap``, and ``SweepResult`` answers ``axes`` and ``point`` as ``GridResult`` does.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from tests.conftest import well_conditioned

X64, Y64 = well_conditioned(5, n=40, d=2)
X, Y = X64.astype(np.float32), Y64.astype(np.float32)


def _results():
    """One of each public result type, by name (some hold others: an LrRange its sweep and
    Stability, a refined GridResult its Refinement and refined runs)."""
    return {
        "descent": lambda: jaxgd.descend(lambda p: (p - 3.0) ** 2, jnp.float32(0.0),
                                         optax.sgd(0.25), 20),
        "fit": lambda: jaxgd.fit(X, Y, learning_rate=0.1, num_steps=20,
                                 validation=jaxgd.Holdout(0.25)),
        "sweep": lambda: jaxgd.sweep(X, Y, learning_rates=[0.05, 0.1], seeds=[0, 1],
                                     num_steps=20),
        "grid": lambda: jaxgd.grid_sweep(X, Y, grid={"l2": [0.0, 0.1]}, learning_rate=0.1,
                                         optimizer="momentum", num_steps=20),
        "refined": lambda: jaxgd.grid_sweep(
            X, Y, num_steps=20, sample=jaxgd.Sample({"learning_rate": ("log", 1e-3, 0.3)}, 4),
                                            refine={"top": 1, "steps": 1, "backtracks": 1}),
        "stability": lambda: jaxgd.stability(X64, optimizer="momentum", momentum=0.5),
        "lr_range": lambda: jaxgd.lr_range(X, Y, num_steps=30, num_rates=3),
        "solve": lambda: jaxgd.solve(X64, Y64),
        "trajectory": lambda: jaxgd.exact_trajectory(X64, Y64, jaxgd.init_params(0, 2), 0.1,
                                                     10),
    }


@pytest.mark.parametrize("name", list(_results()))
def test_every_leaf_of_every_result_is_an_array(name):
    result = _results()[name]()
    leaves = jax.tree_util.tree_leaves_with_path(result)
    assert leaves
    not_arrays = [jax.tree_util.keystr(path) for path, leaf in leaves
                  if not isinstance(leaf, jax.Array | np.ndarray)]
    assert not not_arrays, f"{type(result).__name__} leaves that are no arrays: {not_arrays}"
    # The README's promise: array methods over every leaf, the result rebuilt as its type.
    means = jax.tree_util.tree_map(lambda a: a.mean(), result)
    assert type(means) is type(result)
    assert all(np.ndim(leaf) == 0 for leaf in jax.tree_util.tree_leaves(means))
    # Through the caller's jit and back: the same structure, static metadata and values.
    out = jax.jit(lambda r: r)(result)
    assert type(out) is type(result)
    assert jax.tree_util.tree_structure(out) == jax.tree_util.tree_structure(result)
    for a, b in zip(jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(result),
                    strict=True):
        # x64 is off: float64 host leaves come back float32, so compare at float32's eps.
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                                   rtol=2e-7)


def test_static_metadata_stays_out_of_the_leaves():
    limits = jaxgd.stability(X64, optimizer="nesterov", momentum=0.5)
    doubled = jax.tree_util.tree_map(lambda a: 2 * a, limits)
    assert doubled.optimizer == "nesterov" and float(doubled.momentum) == 1.0
    grid = jaxgd.grid_sweep(X, Y, grid={"learning_rate": [0.05, 0.1]}, seed=3, num_steps=10)
    assert set(grid.fixed) == {"seed", "l2"}
    assert grid.fixed["seed"].dtype.kind == "i" and int(grid.fixed["seed"]) == 3
    assert grid.run((1,)).learning_rate == np.float32(0.1)  # fixed and values still read
    # Unflattening rebuilds what it is given, unconverted (JAX unflattens with placeholders
    # and vmap's in_axes specs): a spec of ints stays ints.
    spec = jax.tree_util.tree_map(lambda _: 0, grid)
    assert type(spec.fixed["seed"]) is int and type(spec.values["learning_rate"]) is int
    assert all(type(a) is int for a in jax.tree_util.tree_leaves(spec))


def test_a_result_made_inside_jit_and_vmap_comes_out_whole():
    def search(rate):
        return jaxgd.grid_sweep(X, Y, grid={"l2": [0.0, 0.1]}, learning_rate=rate,
                                num_steps=30, stopping=jaxgd.Stopping(reference=False))

    rates = jnp.asarray([0.05, 0.1])
    out = jax.jit(jax.vmap(search))(rates)
    assert type(out) is jaxgd.GridResult and out.axes == ("l2",)
    assert out.final_loss.shape == (2, 2) and out.fixed["learning_rate"].shape == (2,)
    eager = search(0.1)
    np.testing.assert_allclose(out.final_loss[1], eager.final_loss, rtol=1e-5)
    np.testing.assert_array_equal(out.fixed["seed"], [0, 0])


def test_a_sweep_answers_axes_and_point_as_a_grid_does():
    sweep = jaxgd.sweep(X, Y, learning_rates=[0.05, 0.1, 0.2], seeds=[7, 9], num_steps=20)
    grid = sweep.as_grid()
    protocol = jaxgd.results.result.Grid  # the methods and attributes both answer
    assert isinstance(sweep, protocol) and isinstance(grid, protocol)
    assert sweep.axes == grid.axes == ("learning_rate", "seed")
    for index in np.ndindex(sweep.final_loss.shape):
        assert sweep.point(index) == grid.point(index)
    assert sweep.point((2, 1)) == {"learning_rate": pytest.approx(0.2), "seed": 9}
    assert sweep.point(sweep.best()) == grid.point(grid.best())
    plain = jaxgd.sweep(X, Y, learning_rates=[0.05, 0.1], num_steps=20)
    assert plain.axes == ("learning_rate",) and plain.point(1) == plain.as_grid().point(1)
    folds = jaxgd.sweep(X, Y, learning_rates=[0.05, 0.1], validation=jaxgd.KFolds(2), num_steps=20)
    assert folds.axes == ("learning_rate", "fold")
    # best() leaves the fold out (a point is judged over its folds): point names the rate.
    assert folds.point(folds.best()) == folds.as_grid().point(folds.best())
    assert set(folds.point(folds.best())) == {"learning_rate"}


def test_errors_read_like_the_dict_they_hold():
    errors = jaxgd.fit(X, Y, learning_rate=0.1, num_steps=20, validation=jaxgd.Holdout(0.25)).errors
    assert repr(errors.keys()) == "dict_keys(['training', 'validation'])"
    assert list(errors.values()) == [errors["training"], errors["validation"]]
    assert dict(errors.items()) == {"training": errors["training"],
                                    "validation": errors["validation"]}
    assert repr(errors) == repr({"training": errors["training"],
                                 "validation": errors["validation"]})
    assert "LazyErrors" not in repr(errors) + repr(errors.keys()) + repr(errors.items())
