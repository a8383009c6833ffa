import jax
import numpy as np
import pytest

import jaxgd
from jaxgd import fit, grid_sweep, sweep
from jaxgd.api.settings import group
from jaxgd.core.minibatch import epoch_order, steps_per_epoch
from tests.ulps import assert_close_ulps


def test_every_row_once_per_epoch_and_a_new_order_each_epoch():
    first = epoch_order(jax.random.key(3), 0, 10, 4)
    second = epoch_order(jax.random.key(3), 1, 10, 4)
    assert first.rows.shape == (3, 4) and steps_per_epoch(10, 4) == 3
    for order in (first, second):
        seen = np.asarray(order.rows)[np.asarray(order.real)]
        assert sorted(seen.tolist()) == list(range(10))  # each row exactly once
        assert np.asarray(order.real).sum(axis=1).tolist() == [4, 4, 2]  # the partial last
    assert not np.array_equal(first.rows, second.rows)


def test_batch_size_n_is_full_batch_gradient_descent_exactly(problem):
    X, y = problem
    full = fit(X, y, learning_rate=0.1, num_steps=40, engine="direct")
    mini = fit(X, y, learning_rate=0.1, batches=jaxgd.MiniBatches(batch_size=len(y), epochs=40))
    # The same steps in another program (a gathered batch, and the epoch loop): XLA may
    # pick another matrix kernel or summation order for it, by the device and the CPU at
    # hand (seen: 1 ulp on an H100, 4 ulps on a CPU limited to AVX, bit for bit with AVX2).
    # A 1-ulp change of the learning rate (a bias at every step) moves these 40 losses by
    # 4 ulps: within 64. The convergence step exactly: these losses do not flatten out near
    # the tolerance, so an ulp cannot move it.
    same = lambda a, b: assert_close_ulps(a, b, 64)  # noqa: E731
    same(mini.losses, full.losses)
    same(mini.params.weight, full.params.weight)
    same(mini.epoch_losses[:-1], full.losses)
    assert int(mini.converged_step) == int(full.converged_step)


def test_small_batches_reach_the_neighbourhood_of_the_optimum(problem):
    X, y = problem  # 64 rows: batches of 10 leave a partial batch of 4 each epoch
    result = fit(X, y, learning_rate=0.05, batches=jaxgd.MiniBatches(batch_size=10, epochs=60))
    assert result.losses.shape == (60 * 7,) and result.epoch_losses.shape == (61,)
    assert result.epoch_losses[-1] < 0.02 * result.epoch_losses[0]
    assert float(result.gap) < 0.01  # SGD noise keeps it near, not at, the optimum
    other = fit(X, y, learning_rate=0.05,
                batches=jaxgd.MiniBatches(batch_size=10, epochs=60, seed=9))
    assert not np.array_equal(other.losses, result.losses)  # the batch order matters


def test_minibatch_sweeps_and_grids_over_batch_order(problem):
    X, y = problem
    runs = sweep(X, y, learning_rates=[0.01, 0.05], seeds=[0, 1],
                 batches=jaxgd.MiniBatches(batch_size=16, epochs=5))
    assert runs.losses.shape == (2, 2, 20) and runs.epoch_losses.shape == (2, 2, 6)
    one = fit(X, y, learning_rate=0.05, seed=1, batches=jaxgd.MiniBatches(batch_size=16, epochs=5))
    np.testing.assert_allclose(runs.losses[1, 1], one.losses, rtol=1e-5)
    orders = grid_sweep(X, y, grid={"batch_seed": [0, 1, 2]}, learning_rate=0.05,
                        batches=jaxgd.MiniBatches(batch_size=16, epochs=5))
    assert orders.losses.shape == (3, 20)
    assert not np.array_equal(orders.losses[0], orders.losses[1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0, "epochs": 2}, "batch_size must be >= 1"),
        ({"batch_size": 65, "epochs": 2}, r"batch_size must be <= the number of rows \(64\)"),
        ({"batch_size": 8, "epochs": 0}, "epochs must be >= 1"),
        ({"batch_size": 8, "epochs": 2, "num_steps": 10}, "leave num_steps out"),
        ({"batch_size": 8, "epochs": 2, "engine": "gram"}, "mini-batch SGD needs engine"),
        ({"batch_size": 8, "epochs": 2, "stop_at_convergence": True}, "full-batch runs"),
        ({}, "give num_steps"),
    ],
)
def test_bad_minibatch_settings(problem, kwargs, message):
    X, y = problem
    with pytest.raises(ValueError, match=message):  # the old flat spellings, grouped here
        fit(X, y, learning_rate=0.1, **group(kwargs))


def test_a_first_batch_with_near_zero_loss_does_not_make_a_healthy_run_diverge():
    # Half the targets are 0, so single-row batches often start near 0 loss; divergence is
    # judged against the loss on all the data (learning rate 1/100 of 2/λmax).
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 1))
    y = np.maximum(0.0, 5 * X[:, 0])
    runs = sweep(X, y, learning_rates=[0.01], seeds=list(range(8)),
                 batches=jaxgd.MiniBatches(batch_size=1, epochs=5))
    assert not np.asarray(runs.diverged).any()
