import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd import LinearParams, descend, fit, mse
from jaxgd.api.settings import group
from jaxgd.core.optimizers import OPTIMIZERS, make_spec

X = np.array([[-1.0, 0.5], [0.0, -1.0], [1.0, 2.0], [2.0, 0.0]])
Y = np.array([1.0, 3.0, 5.0, 6.0])

REFERENCES = {
    "sgd": lambda: optax.sgd(0.05),
    "momentum": lambda: optax.sgd(0.05, momentum=0.8),
    "nesterov": lambda: optax.sgd(0.05, momentum=0.8, nesterov=True),
    "adam": lambda: optax.adam(0.05, b1=0.8),
    "adamw": lambda: optax.adamw(0.05, weight_decay=0.01),
    "rmsprop": lambda: optax.rmsprop(0.05, decay=0.8),
    "adagrad": lambda: optax.adagrad(0.05),
}
SETTINGS = {"momentum": {"momentum": 0.8}, "nesterov": {"momentum": 0.8}, "adam": {"b1": 0.8},
            "adamw": {"weight_decay": 0.01}, "rmsprop": {"decay": 0.8}}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_named_optimizers_are_the_optax_ones(name):
    # Oracle: descend with the optax optimizer built by hand, from zeros. Same float32 ops,
    # but the named one receives its numbers as traced inputs, so XLA cannot fold constants
    # such as Adam's bias corrections 1 - b**t: a few ulps per step, under 5e-5 over 50 steps.
    assert set(REFERENCES) == set(OPTIMIZERS)
    ours = fit(X, Y, learning_rate=0.05, num_steps=50,
               optimizer=jaxgd.Optimizer(name, **SETTINGS.get(name, {})), init=0.0, engine="direct")
    start = LinearParams(jnp.zeros(2), jnp.float32(0.0))
    theirs = descend(lambda p: mse(p, jnp.asarray(X, jnp.float32), jnp.asarray(Y, jnp.float32)),
                     start, REFERENCES[name](), 50)
    np.testing.assert_allclose(ours.losses, theirs.losses, rtol=5e-5)


@pytest.mark.parametrize(
    ("schedule", "steps", "hyper", "expected"),
    [
        ("constant", None, {}, [0.1, 0.1, 0.1]),
        ("exponential_decay", {"transition_steps": 10}, {"decay_rate": 0.5}, [0.1, 0.05, 0.025]),
        ("cosine_decay", {"decay_steps": 20}, {"alpha": 0.0}, [0.1, 0.05, 0.0]),
        ("warmup_cosine", {"warmup_steps": 10, "decay_steps": 20}, {}, [0.0, 0.1, 0.0]),
    ],
)
def test_schedules(schedule, steps, hyper, expected):
    spec = make_spec("sgd", schedule, steps, num_steps=20)
    opt = spec.build({"learning_rate": 0.1, **hyper})
    params = jnp.zeros(1)
    state = opt.init(params)
    got = []
    for count in range(21):  # sgd's update is -rate·gradient: a gradient of -1 reads the rate
        update, state = opt.update(-jnp.ones(1), state, params)
        if count in (0, 10, 20):
            got.append(float(update[0]))
    np.testing.assert_allclose(got, expected, atol=1e-7)


def test_schedule_hyperparameters_can_be_traced():
    spec = make_spec("adam", "exponential_decay", {"transition_steps": 5}, num_steps=10)

    def first_update(rate, decay):
        opt = spec.build({"learning_rate": rate, "decay_rate": decay})
        return opt.update(jnp.ones(2), opt.init(jnp.zeros(2)))[0]

    out = jax.vmap(first_update)(jnp.array([0.1, 0.2]), jnp.array([0.5, 0.9]))
    assert out.shape == (2, 2) and np.isfinite(out).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"optimizer": "adma"}, r"unknown optimizer 'adma'. Did you mean 'adam'\? Valid: sgd"),
        ({"schedule": "cosine"}, r"unknown schedule 'cosine'. Did you mean 'cosine_decay'\?"),
        ({"optimizer": "adam", "hyperparameters": {"beta1": 0.9}},
         r"adam with schedule constant has no hyperparameter 'beta1'.*Valid: learning_rate, b1"),
        ({"optimizer": "momentum", "hyperparameters": {"momentum": 1.5}},
         r"momentum must be in \[0, 1\); bad value 1.5"),
        ({"schedule": "cosine_decay", "schedule_steps": {"warmup_steps": 3}},
         r"schedule 'cosine_decay' takes no \['warmup_steps'\]"),
        ({"schedule": "exponential_decay", "schedule_steps": {"transition_steps": 0}},
         "transition_steps must be an integer >= 1"),
        ({"hyperparameters": {"learning_rate": 0.1}}, "give learning_rate as its own argument"),
        ({"l2": -1.0}, "l2 must be finite and >= 0"),
    ],
)
def test_bad_optimizer_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):  # the old flat spellings, grouped here
        fit(X, Y, learning_rate=0.1, num_steps=3, **group(kwargs))


def test_schedule_steps_take_numpy_integers():
    # Step counts computed with NumPy (np.int64) are integers like any other.
    a = fit(X, Y, learning_rate=0.1, num_steps=6,
            optimizer=jaxgd.Optimizer(schedule="exponential_decay",
                                      schedule_steps={"transition_steps": np.int64(3)}))
    b = fit(X, Y, learning_rate=0.1, num_steps=6,
            optimizer=jaxgd.Optimizer(schedule="exponential_decay",
                                      schedule_steps={"transition_steps": 3}))
    np.testing.assert_array_equal(a.losses, b.losses)
