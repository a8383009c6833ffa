"""Bad input a hostile review found: each gets a TypeError or ValueError naming the argument,
raised at the edge (never an error from inside JAX, NumPy or optax, never a silent result)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd import descend, fit, sweep
from jaxgd.api.settings import group
from jaxgd.core.snapshots import check_snapshot_steps

X, Y = np.array([[-1.0], [0.0], [1.0], [2.0]]), np.array([1.0, 3.0, 5.0, 7.1])
FIT = {"learning_rate": 0.1, "num_steps": 5}


@pytest.fixture(scope="module")
def swept():
    return sweep(X, Y, learning_rates=[0.1, 0.3], num_steps=5)


def test_run_takes_numpy_and_jax_integers_as_an_index(swept):
    # np.argmin is the natural call; it raised "iteration over a 0-d array" from inside JAX.
    assert int(np.argmin(swept.final_loss)) == 1
    expected = swept.run((1,)).final_loss
    for index in (np.argmin(swept.final_loss), jnp.argmin(swept.final_loss), np.array(1),
                  np.int32(1), [jnp.int32(1)], np.array([1])):
        assert swept.run(index).final_loss == expected
    grid = swept.as_grid()
    assert grid.run(np.int64(1)).final_loss == expected
    assert grid.point(np.int64(1)) == {"learning_rate": pytest.approx(0.3)}


@pytest.mark.parametrize(
    ("index", "match"),
    [
        (1.0, "index must be an integer, got float 1.0"),
        (True, "index must be an integer, got bool True"),
        (np.float64(1.0), "index must be an integer, got float64"),
        ((np.array(0.0),), r"index\[0\] must be an integer, got float 0.0"),
        ("1", "index must be an integer, got str '1'"),
    ],
)
def test_run_refuses_indices_that_are_not_integers(swept, index, match):
    with pytest.raises(TypeError, match=match):
        swept.run(index)
    with pytest.raises(TypeError, match=match):
        swept.as_grid().run(index)


def test_engine_and_sharding_mode_must_be_names():
    for engine in (None, 3):
        with pytest.raises(TypeError, match=f"engine must be one of auto, .*, got "
                                            f"{type(engine).__name__} {engine}"):
            fit(X, Y, engine=engine, **FIT)
    with pytest.raises(ValueError, match=r"Placement\.sharding must be one of runs, rows, none, "
                                         r"got 'bad'"):
        sweep(X, Y, learning_rates=[0.1], num_steps=5, placement=jaxgd.Placement(sharding="bad"))
    with pytest.raises(TypeError, match=r"Placement\.sharding must be one of .*, got NoneType"):
        sweep(X, Y, learning_rates=[0.1], num_steps=5, placement=jaxgd.Placement(sharding=None))


def test_hyperparameters_and_schedule_steps_must_be_mappings():
    with pytest.raises(TypeError, match=r"hyperparameters must be a mapping of names to "
                                        r"values \(a dict, e.g. \{'b1': 0.5\}\), got list"):
        fit(X, Y, **group({"optimizer": "adam", "hyperparameters": [("b1", 0.5)]}), **FIT)
    with pytest.raises(TypeError, match=r"schedule_steps must be a mapping .*, got int 5"):
        fit(X, Y, optimizer=jaxgd.Optimizer(schedule="cosine_decay", schedule_steps=5), **FIT)


@pytest.mark.parametrize(
    ("steps", "match"),
    [
        (3, r"snapshot_steps must be a list of steps \(e.g. \[0, 10\]\), got int 3"),
        ("12", "snapshot_steps must be a list of steps"),
        (np.array(2), "snapshot_steps must be a list of steps"),
        ([2.5], r"snapshot_steps\[0\] must be an integer, got float 2.5"),  # was step 2
        ([1, 2.0], r"snapshot_steps\[1\] must be an integer, got float 2.0"),
        ([True], r"snapshot_steps\[0\] must be an integer, got bool"),
    ],
)
def test_snapshot_steps_must_be_a_list_of_whole_steps(steps, match):
    with pytest.raises(TypeError, match=match):
        fit(X, Y, record=jaxgd.Record(snapshot_steps=steps), **FIT)
    with pytest.raises(TypeError, match=match):
        descend(lambda p: p**2, 1.0, optax.sgd(0.1), 5, snapshot_steps=steps)


def test_snapshot_steps_may_be_numpy_integers_but_not_floats():
    with pytest.raises(TypeError, match=r"snapshot_steps\[0\] must be an integer"):
        check_snapshot_steps(np.array([2.5]), 5)
    assert check_snapshot_steps(np.array([3, 1]), 5) == (1, 3)
    assert check_snapshot_steps([np.int64(2), jnp.int32(0), 2], 5) == (0, 2)
    run = fit(X, Y, record=jaxgd.Record(snapshot_steps=np.array([1, 3])), **FIT)
    assert run.snapshot_steps.tolist() == [1, 3]


def test_static_arguments_under_tracing_are_named_static():
    static = r"is static \(.*\), but it is traced here \(inside the caller's jit, vmap or grad"
    with pytest.raises(TypeError, match="snapshot_steps " + static):
        jax.jit(lambda s: fit(X, Y, record=jaxgd.Record(snapshot_steps=[s]), **FIT).final_loss)(2)
    with pytest.raises(TypeError, match="snapshot_steps " + static):
        jax.jit(lambda s: descend(lambda p: p**2, 1.0, optax.sgd(0.1), 5,
                                  snapshot_steps=s).final_loss)(jnp.array([2]))
    with pytest.raises(TypeError, match="num_steps " + static):
        jax.jit(lambda n: fit(X, Y, learning_rate=0.1, num_steps=n).final_loss)(5)
    with pytest.raises(TypeError, match="batch_size " + static):
        jax.jit(lambda b: fit(X, Y, learning_rate=0.1,
                              batches=jaxgd.MiniBatches(batch_size=b, epochs=2)).final_loss)(2)
    with pytest.raises(TypeError, match="num_steps " + static):
        jax.jit(lambda n: descend(lambda p: p**2, 1.0, optax.sgd(0.1), n).final_loss)(5)
    with pytest.raises(TypeError, match="Stopping.early_exit " + static):
        jax.jit(lambda s: fit(X, Y, stopping=jaxgd.Stopping(early_exit=s), **FIT).final_loss)(True)


def test_traced_seeds_point_to_a_sweep_over_seeds():
    with pytest.raises(TypeError, match=r"seed must be concrete \(not traced\): it is traced "
                                        r"here .*sweep\(seeds=\[...\]\)"):
        jax.vmap(lambda s: fit(X, Y, seed=s, **FIT).final_loss)(jnp.arange(2))


def test_descend_names_a_loss_of_the_wrong_form():
    sgd = optax.sgd(0.1)
    with pytest.raises(TypeError, match=r"with has_aux=True loss_fn must return \(loss, aux\), "
                                        r"got an array of shape \(\) and dtype float32"):
        descend(lambda p: p**2, 1.0, sgd, 5, has_aux=True)
    with pytest.raises(TypeError, match=r"loss_fn must return a scalar float loss, got a tuple "
                                        r"of 2; for \(loss, aux\) pass has_aux=True"):
        descend(lambda p: (p**2, p), 1.0, sgd, 5)
    with pytest.raises(TypeError, match=r"scalar float loss, got an array of shape \(2,\)"):
        descend(lambda p: p**2, jnp.ones(2), sgd, 5)
    with pytest.raises(TypeError, match="loss_fn must be a function of the parameters"):
        descend(3.0, 1.0, sgd, 5)


def test_descend_names_an_optimizer_that_is_not_one():
    with pytest.raises(TypeError, match=r"optimizer must be an optax GradientTransformation "
                                        r".*got the function optax.sgd, which builds one: call "
                                        r"it with a learning rate, e.g. optax.sgd\(0.1\)"):
        descend(lambda p: p**2, 1.0, optax.sgd, 5)
    with pytest.raises(TypeError, match=r"optimizer must be an optax .*got str 'sgd'"):
        descend(lambda p: p**2, 1.0, "sgd", 5)


@pytest.mark.parametrize("name", ["reference", "early_exit"])
@pytest.mark.parametrize("value", ["false", 0, None, np.array([True])])
def test_switches_must_be_true_or_false(name, value):
    # "false" was taken as True.
    with pytest.raises(TypeError, match=f"Stopping.{name} must be True or False, got "):
        jaxgd.Stopping(**{name: value})


def test_switches_are_one_check_numpy_bools_included():
    for name in ("stop_at_convergence", "has_aux", "monotone"):
        with pytest.raises(TypeError, match=f"{name} must be True or False, got str 'no'"):
            descend(lambda p: p**2, 1.0, optax.sgd(0.1), 5, **{name: "no"})
    with pytest.raises(TypeError, match="track_sharpness must be True or False, got str"):
        # the same check, the same words
        fit(X, Y, record=jaxgd.Record(track_sharpness="yes"), **FIT)
    run = fit(X, Y, stopping=jaxgd.Stopping(reference=np.bool_(False), early_exit=np.bool_(False)),
              **FIT)
    assert run.optimal_loss is None
    assert fit(X, Y, stopping=jaxgd.Stopping(reference=jnp.bool_(True)),
               **FIT).optimal_loss is not None


def test_minibatch_runs_count_epochs_not_num_steps():
    with pytest.raises(ValueError, match="with batch_size and epochs, leave num_steps out"):
        fit(X, Y, learning_rate=0.1, batches=jaxgd.MiniBatches(2, epochs=3), num_steps=10)
