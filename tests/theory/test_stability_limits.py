"""Exact stability limits and fastest rates for sgd, momentum and Nesterov, checked against
plain optax runs that share no code with ``jaxgd.stability``."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from tests.conftest import COURSE_CARS_X, COURSE_CARS_Y

X, Y = jnp.asarray(COURSE_CARS_X), jnp.asarray(COURSE_CARS_Y)
OPTAX = {"sgd": lambda lr, beta: optax.sgd(lr),
         "momentum": lambda lr, beta: optax.sgd(lr, momentum=beta),
         "nesterov": lambda lr, beta: optax.sgd(lr, momentum=beta, nesterov=True)}


def _plain(optimizer, rate, beta, steps):
    loss = lambda p: jnp.mean((X @ p[:-1] + p[-1] - Y) ** 2)  # noqa: E731
    return jaxgd.descend(loss, jnp.zeros(2), OPTAX[optimizer](rate, beta), steps,
                         divergence_factor=jnp.inf)


@pytest.mark.parametrize("optimizer,beta", [("sgd", 0.0), ("momentum", 0.5),
                                            ("momentum", 0.9), ("nesterov", 0.5),
                                            ("nesterov", 0.9)])
def test_the_first_diverging_rate_of_a_fine_sweep_is_within_1_percent(optimizer, beta):
    limit = jaxgd.stability(COURSE_CARS_X, optimizer=optimizer,
                            momentum=beta).max_learning_rate
    # Rates 0.5% apart around the prediction: the last that settles and the first that
    # grows bracket it, so the empirical edge lies within 1% of it.
    for factor, grows in ((0.995, False), (1.005, True)):
        run = _plain(optimizer, factor * limit, beta, 6000)
        last = float(run.final_loss)
        assert (not np.isfinite(last) or last > float(run.losses[0])) == grows, factor


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov"])
def test_the_fastest_rate_converges_sooner_than_its_neighbours(optimizer):
    hyper = {} if optimizer == "sgd" else {"momentum": 0.5}
    limits = jaxgd.stability(COURSE_CARS_X, optimizer=optimizer, **hyper)
    steps = {}
    for factor in (0.6, 1.0, 1.4):
        rate = min(factor * limits.fastest_learning_rate, 0.999 * limits.max_learning_rate)
        run = jaxgd.fit(COURSE_CARS_X, COURSE_CARS_Y, learning_rate=rate, num_steps=4000,
                        optimizer=jaxgd.Optimizer(optimizer, **hyper), init=0.0)
        assert bool(run.converged), (optimizer, factor)
        steps[factor] = int(run.converged_step)
    assert steps[1.0] < steps[0.6] and steps[1.0] < steps[1.4], steps


def test_predicted_rates_match_the_measured_contraction():
    limits = jaxgd.stability(COURSE_CARS_X)
    rate = 0.5 * limits.max_learning_rate
    slowest = float(np.max(limits.rates(rate)))
    run = _plain("sgd", rate, 0.0, 400)
    optimum = jaxgd.solve(COURSE_CARS_X, COURSE_CARS_Y).loss
    gaps = np.asarray(run.losses, np.float64) - optimum
    measured = (gaps[300] / gaps[200]) ** (1 / 100)  # the loss's gap shrinks by ρ² a step
    np.testing.assert_allclose(measured, slowest ** 2, rtol=1e-3)


@pytest.mark.parametrize("momentum", [0.9, 0.5, 1e-3])
def test_momentum_with_plain_gradient_descent_is_refused_by_name(momentum):
    # sgd has no β: a momentum given with it would be silently dropped, and the limit
    # returned would not be the one the caller asked about.
    with pytest.raises(ValueError, match=r"momentum.*'sgd'.*'momentum' or 'nesterov'"):
        jaxgd.stability(COURSE_CARS_X, optimizer="sgd", momentum=momentum)


def test_a_zero_momentum_with_plain_gradient_descent_is_what_sgd_has():
    # β = 0 is sgd's own (Stability.momentum), so a Stability's fields given back are fine.
    plain = jaxgd.stability(COURSE_CARS_X)
    again = jaxgd.stability(COURSE_CARS_X, optimizer=plain.optimizer, momentum=plain.momentum)
    assert again.max_learning_rate == plain.max_learning_rate and again.momentum == 0.0
