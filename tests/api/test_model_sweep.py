"""A user's own model (``jaxgd.Model``) in fit, sweep and grid_sweep, against plain optax loops.

The oracle is the loop anyone would write: ``jax.value_and_grad`` of the model's loss, an optax
update, ``lax.scan`` under ``jax.jit`` (vmapped over the learning rates for a sweep, as the
sweep vmaps its runs: the same program shape, so the same bits).
"""

import functools

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd.core import minibatch
from jaxgd.pipeline import holdout
from jaxgd.theory import sharpness
from tests.conftest import COMPILE_EVENT, compiles

N, D, STEPS = 48, 3, 100
RATES = [0.1, 0.5, 2.0]


def _data(dtype=np.float32):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, D))
    logits = X @ np.array([1.5, -2.0, 0.5]) + 0.3
    y = (logits + 0.5 * rng.standard_normal(N) > 0).astype(np.float64)
    return X.astype(dtype), y.astype(dtype)


def logistic_loss(params, batch):
    """Binary cross-entropy of logits X @ w + b, a mean over the rows."""
    X, y = batch
    z = X @ params["w"] + params["b"]
    return jnp.mean(jnp.logaddexp(0.0, z) - y * z)


def logistic_predict(params, X):
    return jax.nn.sigmoid(X @ params["w"] + params["b"])


def mlp_predict(params, X):
    hidden = jnp.tanh(X @ params["W1"] + params["b1"])
    return hidden @ params["w2"] + params["b2"]


def mlp_loss(params, batch):
    X, y = batch
    return jnp.mean((mlp_predict(params, X) - y) ** 2)


@functools.cache  # one Model per dtype: the tests that share a program's shape share its compile
def logistic(dtype=jnp.float32):
    init = {"w": jnp.zeros(D, dtype), "b": jnp.zeros((), dtype)}
    return jaxgd.Model(logistic_loss, init, predict=logistic_predict)


@functools.cache
def mlp(dtype=jnp.float32):
    k1, k2 = jax.random.split(jax.random.key(1))
    init = {"W1": 0.5 * jax.random.normal(k1, (D, 8), dtype), "b1": jnp.zeros(8, dtype),
            "w2": 0.5 * jax.random.normal(k2, (8,), dtype), "b2": jnp.zeros((), dtype)}
    return jaxgd.Model(mlp_loss, init, predict=mlp_predict)


def plain_loop(loss, params0, X, y, make_optimizer, num_steps=STEPS):
    """The oracle: ``run(rate, start=params0) -> (final params, loss history)``, jit + scan +
    optax."""
    batch = (jnp.asarray(X), jnp.asarray(y))

    def run(rate, start=None):
        params0_ = params0 if start is None else start
        optimizer = make_optimizer(rate)

        def step(carry, _):
            params, state = carry
            value, grads = jax.value_and_grad(loss)(params, batch)
            updates, state = optimizer.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), value

        (params, _), losses = jax.lax.scan(step, (params0_, optimizer.init(params0_)), None,
                                           length=num_steps)
        return params, losses

    return run


def _numpy_predict(params, X):
    """The oracle's predictions in float64 NumPy, runs first: the MLP's or the logistic's."""
    X = np.asarray(X, np.float64)
    p = {name: np.asarray(leaf, np.float64) for name, leaf in params.items()}
    if "W1" in p:
        hidden = np.tanh(np.einsum("nd,...dh->...nh", X, p["W1"]) + p["b1"][..., None, :])
        return np.einsum("...nh,...h->...n", hidden, p["w2"]) + p["b2"][..., None]
    logits = np.einsum("nd,...d->...n", X, p["w"]) + p["b"][..., None]
    return 1.0 / (1.0 + np.exp(-logits))


def _equal(tree_a, tree_b):
    leaves_a, leaves_b = jax.tree_util.tree_leaves(tree_a), jax.tree_util.tree_leaves(tree_b)
    assert len(leaves_a) == len(leaves_b)
    for a, b in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _adam(hyper):
    """optax.adam with its hyperparameters as arrays, as jaxgd passes them (traced, so that a
    grid over them compiles once); Python-float constants let XLA fold ``b2**t`` otherwise."""
    rate, b1, b2, eps = hyper
    return optax.adam(rate, b1=b1, b2=b2, eps=eps)


def _adam_values(rates, dtype):
    size = np.shape(rates)
    return tuple(jnp.asarray(np.broadcast_to(v, size), dtype)
                 for v in (rates, 0.9, 0.999, 1e-8))


@pytest.mark.parametrize(("make", "rates"), [(logistic, RATES), (mlp, [0.05, 0.2, 0.5])])
def test_every_member_of_a_sweep_is_the_plain_optax_loop_bit_for_bit(x64, make, rates):
    dtype = jnp.float64 if x64 else jnp.float32
    X, y = _data(dtype)
    model = make(dtype)
    result = jaxgd.sweep(X, y, model=model, learning_rates=rates, num_steps=STEPS)
    run = plain_loop(model.loss, model.init, X, y, optax.sgd)
    params, losses = jax.jit(jax.vmap(run))(jnp.asarray(rates, dtype))
    assert result.losses.dtype == dtype
    _equal(result.losses, losses)
    _equal(result.params, params)
    assert result.optimal_loss is None
    assert result.engine == "direct" and not np.asarray(result.stalled).any()
    # errors: MSE, RMSE, MAE of the model's predictions against y, in float64 (oracle: NumPy
    # on the final parameters); for the MLP, whose loss is the MSE, its final loss.
    residual = _numpy_predict(result.params, X) - np.asarray(y, np.float64)
    rtol = 1e-5 if dtype == jnp.float32 else 1e-12
    training = result.errors["training"]
    np.testing.assert_allclose(training["mse"], np.mean(residual**2, axis=-1), rtol=rtol)
    np.testing.assert_allclose(training["mae"], np.mean(np.abs(residual), axis=-1), rtol=rtol)
    np.testing.assert_allclose(training["rmse"], np.sqrt(training["mse"]), rtol=1e-15)
    if make is mlp:
        np.testing.assert_allclose(training["mse"], result.final_loss, rtol=rtol)
    assert result.errors["validation"] is None


def test_adam_fit_is_the_plain_loop_bit_for_bit_and_its_sweep_within_ulps():
    dtype = jnp.float32  # (both dtypes: the sgd test above; one here keeps the suite short)
    X, y = _data(dtype)
    model, rates = mlp(dtype), [0.01, 0.05, 0.2]
    run = plain_loop(model.loss, model.init, X, y, _adam)
    one = jaxgd.fit(X, y, model=model, learning_rate=rates[1], num_steps=STEPS,
                    optimizer="adam")
    params, losses = jax.jit(run)(_adam_values(rates[1], dtype))
    _equal(one.losses, losses)
    _equal(one.params, params)
    # Vmapped, XLA may fuse the MLP's batched products otherwise in the two programs: the
    # same arithmetic to an ulp or so per step (measured: at most 1 ulp in float32).
    result = jaxgd.sweep(X, y, model=model, learning_rates=rates, num_steps=STEPS,
                         optimizer="adam")
    params, losses = jax.jit(jax.vmap(run))(_adam_values(rates, dtype))
    np.testing.assert_allclose(result.losses, losses, rtol=8 * jnp.finfo(dtype).eps)


def test_verdicts_without_an_optimum_converged_and_diverged():
    X, y = _data()
    # Without an optimum, converged means flat: a relative change under tol for patience steps.
    result = jaxgd.sweep(X, y, model=mlp(), learning_rates=[0.3, 50.0], num_steps=200,
                         stopping=jaxgd.Stopping(tol=3e-3))
    assert result.converged.tolist() == [True, False]
    assert result.diverged.tolist() == [False, True]
    assert result.best() == (0,)
    with pytest.raises(ValueError, match="no known optimum"):
        result.gap  # noqa: B018


def test_held_out_losses_are_the_models_loss_on_the_held_rows():
    X, y = _data()
    model = logistic()
    X_val, y_val = X[:16] + 0.25, y[:16]
    result = jaxgd.sweep(X, y, model=model, learning_rates=RATES, num_steps=STEPS,
                         validation=(X_val, y_val))
    held = (jnp.asarray(X_val), jnp.asarray(y_val))
    first = logistic_loss(model.init, held)
    np.testing.assert_allclose(result.validation_losses[:, 0], np.full(3, first), rtol=1e-6)
    final = jax.vmap(lambda p: logistic_loss(p, held))(result.params)
    np.testing.assert_allclose(result.final_validation_loss, final, rtol=1e-6)
    # The held-out history follows the plain loop's parameters at every step.
    run = plain_loop(model.loss, model.init, X, y, optax.sgd, num_steps=STEPS)
    # (vmapped over RATES: the program of the oracle of the sweep test above, not compiled
    # again)
    params, _ = jax.jit(jax.vmap(run))(jnp.asarray(RATES, jnp.float32))
    params = jax.tree_util.tree_map(lambda leaf: leaf[1], params)
    np.testing.assert_allclose(result.final_validation_loss[1], logistic_loss(params, held),
                               rtol=1e-6)
    # errors on the held-out rows: the predicted probabilities' MSE (Brier score) and MAE.
    residual = _numpy_predict(result.params, X_val) - y_val
    np.testing.assert_allclose(result.errors["validation"]["mse"],
                               np.mean(residual**2, axis=-1), rtol=1e-5)
    np.testing.assert_allclose(result.run((2,)).errors["validation"]["mae"],
                               np.mean(np.abs(residual[2])), rtol=1e-5)


def test_k_folds_train_each_fold_on_its_rows_and_hold_out_the_rest():
    X, y = _data()
    model = logistic()
    result = jaxgd.sweep(X, y, model=model, learning_rates=RATES[:2], num_steps=STEPS,
                         validation=jaxgd.KFolds(3))
    assert result.losses.shape == (2, 3, STEPS)
    ids = holdout.fold_ids(N, 3, 0)
    for fold in range(3):
        train, held = ids != fold, ids == fold
        run = plain_loop(model.loss, model.init, X[train], y[train], optax.sgd)
        params, losses = jax.jit(jax.vmap(run))(jnp.asarray(RATES[:2], jnp.float32))
        np.testing.assert_allclose(result.losses[:, fold], losses, rtol=2e-5)
        rows = (X[held], y[held])
        held_loss = jax.vmap(logistic_loss, in_axes=(0, None))(params, rows)
        np.testing.assert_allclose(result.final_validation_loss[:, fold], held_loss,
                                   rtol=2e-5)
        # errors: each fold's runs on its held-out and its training rows.
        at = jax.tree_util.tree_map(lambda leaf, f=fold: leaf[:, f], result.params)
        for side, rows in (("validation", held), ("training", train)):
            residual = _numpy_predict(at, X[rows]) - y[rows]
            np.testing.assert_allclose(result.errors[side]["mse"][:, fold],
                                       np.mean(residual**2, axis=-1), rtol=1e-5)
    assert len(result.best()) == 1


def test_early_exit_and_pruning_give_the_full_runs_verdicts():
    X, y = _data()
    model = mlp()
    rates = [0.03, 0.3, 1.0, 50.0]
    full = jaxgd.sweep(X, y, model=model, learning_rates=rates, num_steps=STEPS,
                       stopping=jaxgd.Stopping(tol=3e-3))
    early = jaxgd.sweep(X, y, model=model, learning_rates=rates, num_steps=STEPS,
                        stopping=jaxgd.Stopping(tol=3e-3, early_exit=True, segment_steps=20))
    for name in ("converged_step", "diverged", "diverged_step"):
        np.testing.assert_array_equal(getattr(early, name), getattr(full, name))
    done = np.asarray(full.converged_step) >= 0
    assert done.any() and np.asarray(early.steps_run)[done].min() < STEPS
    pruned = jaxgd.sweep(X, y, model=model, learning_rates=rates, num_steps=STEPS,
                         stopping=jaxgd.Stopping(tol=3e-3,
                                                 pruning=jaxgd.Halving(rate=2, min_steps=20)))
    assert (np.asarray(pruned.pruned_step) >= 0).any()
    kept = np.asarray(pruned.pruned_step) < 0
    np.testing.assert_array_equal(np.asarray(pruned.losses)[kept],
                                  np.asarray(full.losses)[kept])


@pytest.mark.parametrize("batch_size", [16, 20])  # 20: the last batch of an epoch is padded
def test_mini_batches_are_the_plain_loop_over_the_same_batches_bit_for_bit(batch_size):
    X, y = _data()
    model, per_epoch = logistic(), minibatch.steps_per_epoch(N, batch_size)
    one = jaxgd.fit(X, y, model=model, learning_rate=0.5,
                    batches=jaxgd.MiniBatches(batch_size=batch_size, epochs=4, seed=3))
    key = jax.random.fold_in(jax.random.key(3), 1)  # the order jaxgd draws (core.minibatch)
    X, y = jnp.asarray(X), jnp.asarray(y)

    def batch_loss(params, t):
        order = minibatch.epoch_order(key, t // per_epoch, N, batch_size)
        rows, real = order.rows[t % per_epoch], order.real[t % per_epoch]
        if N % batch_size == 0:
            return logistic_loss(params, (X[rows], y[rows]))
        one_row = jax.vmap(lambda x, t: logistic_loss(params, (x[None], t[None])))(X[rows],
                                                                                  y[rows])
        weights = real.astype(one_row.dtype)
        return jnp.sum(one_row * weights) / jnp.sum(weights)

    def run(rate):
        optimizer = optax.sgd(rate)

        def step(carry, t):
            params, state = carry
            value, grads = jax.value_and_grad(batch_loss)(params, t)
            updates, state = optimizer.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), value

        return jax.lax.scan(step, (model.init, optimizer.init(model.init)),
                            jnp.arange(4 * per_epoch))

    (params, _), losses = jax.jit(run)(jnp.float32(0.5))
    _equal(one.losses, losses)
    _equal(one.params, params)
    np.testing.assert_allclose(one.epoch_losses[-1], logistic_loss(params, (X, y)), rtol=1e-6)


def test_grid_and_search_over_optimizer_settings():
    X, y = _data()
    model = logistic()
    grid = jaxgd.grid_sweep(X, y, model=model, optimizer="momentum", num_steps=50,
                            grid={"learning_rate": [0.1, 0.5], "momentum": [0.0, 0.9]})
    assert grid.losses.shape == (2, 2, 50)
    run = plain_loop(model.loss, model.init, X, y,
                     lambda rate: optax.sgd(rate, momentum=0.9), num_steps=50)
    _, losses = jax.jit(run)(jnp.float32(0.5))
    np.testing.assert_allclose(grid.losses[1, 1], losses, rtol=1e-6)
    drawn = jaxgd.grid_sweep(X, y, model=model, num_steps=50, grid={"seed": [0]},
                             sample=jaxgd.Sample({"learning_rate": ("log", 0.01, 1.0)}, 4))
    assert drawn.losses.shape == (4, 1, 50) and drawn.predict(X).shape == (4, 1, N)


def test_hypergradient_through_a_sweep_matches_the_plain_loop():
    X, y = _data()
    model = logistic()
    run = plain_loop(model.loss, model.init, X, y, optax.sgd, num_steps=20)
    ours = jax.grad(lambda rates: jaxgd.sweep(X, y, model=model, learning_rates=rates,
                                              num_steps=20).final_loss.sum())
    theirs = jax.grad(lambda rates: jax.vmap(
        lambda rate: model.loss(run(rate)[0], (X, y)))(rates).sum())
    rates = jnp.asarray([0.1, 0.5], jnp.float32)
    np.testing.assert_allclose(ours(rates), theirs(rates), rtol=1e-5)


def test_grad_with_respect_to_the_start_through_fit_and_sweep(x64):
    """The start enters the program as data: ``jax.grad``, ``jit`` and ``vmap`` with respect
    to it, against the plain loop's gradient and (float64) central differences."""
    dtype, steps, rate = (jnp.float64 if x64 else jnp.float32), 20, 0.5
    X, y = _data(dtype)
    model = logistic(dtype)
    start = {"w": jnp.asarray([0.3, -0.2, 0.1], dtype), "b": jnp.asarray(0.05, dtype)}

    def final(p0):
        return jaxgd.fit(X, y, model=model, init=p0, learning_rate=rate,
                         num_steps=steps).final_loss

    run = plain_loop(model.loss, model.init, X, y, optax.sgd, num_steps=steps)
    oracle = jax.grad(lambda p0: model.loss(run(jnp.asarray(rate, dtype), p0)[0], (X, y)))
    ours, theirs = jax.grad(final)(start), oracle(start)
    # The same arithmetic in two programs: to rounding (float32: measured 4e-7 relative).
    rtol = 1e-5 if dtype == jnp.float32 else 1e-12
    for a, b in zip(jax.tree_util.tree_leaves(ours), jax.tree_util.tree_leaves(theirs),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol)
    if not x64:  # (jit, vmap and a sweep: the same plumbing in both dtypes, run once)
        np.testing.assert_allclose(jax.jit(final)(start), final(start), rtol=rtol)
        starts = jax.tree_util.tree_map(lambda leaf: jnp.stack([leaf, 2 * leaf]), start)
        np.testing.assert_allclose(jax.vmap(final)(starts)[1],
                                   final(jax.tree_util.tree_map(lambda leaf: 2 * leaf, start)),
                                   rtol=rtol)
        # A sweep's runs share the start: the gradient of their sum is the sum of theirs.
        rates = jnp.asarray([0.1, rate], dtype)
        swept = jax.grad(lambda p0: jaxgd.sweep(X, y, model=model, init=p0, num_steps=steps,
                                                learning_rates=rates).final_loss.sum())(start)
        summed = jax.grad(lambda p0: sum(model.loss(run(r, p0)[0], (X, y))
                                         for r in rates))(start)
        for a, b in zip(jax.tree_util.tree_leaves(swept), jax.tree_util.tree_leaves(summed),
                        strict=True):
            np.testing.assert_allclose(a, b, rtol=rtol)
        return
    # Central differences in float64, h = 1e-5: truncation ~h² and rounding ~eps/h, both
    # under 1e-9 on a loss of ~0.5; every call reuses one compiled program (init is data).
    flat, unravel = jax.flatten_util.ravel_pytree(start)
    h = 1e-5
    steps_to = [(unravel(np.asarray(flat) + e), unravel(np.asarray(flat) - e))
                for e in h * np.eye(flat.size)]
    final(start)
    with compiles() as events:
        values = [(final(up), final(down)) for up, down in steps_to]
    assert COMPILE_EVENT not in events
    differences = [(float(up) - float(down)) / (2 * h) for up, down in values]
    np.testing.assert_allclose(jax.flatten_util.ravel_pytree(ours)[0], differences, atol=1e-9)


def test_init_continues_a_sweep_run_by_run():
    X, y = _data()
    model = logistic()
    first = jaxgd.sweep(X, y, model=model, learning_rates=RATES, num_steps=STEPS)
    more = jaxgd.sweep(X, y, model=model, learning_rates=RATES, num_steps=STEPS,
                       init=first.params)
    run = plain_loop(model.loss, model.init, X, y, optax.sgd)
    params, losses = jax.jit(jax.vmap(run))(jnp.asarray(RATES, jnp.float32), first.params)
    _equal(more.losses, losses)
    _equal(more.params, params)
    np.testing.assert_allclose(more.losses[:, 0], first.final_loss, rtol=1e-6)


def test_refine_steps_a_models_drawn_hyperparameters_by_hypergradients(x64):
    dtype = jnp.float64 if x64 else jnp.float32
    X, y = _data(dtype)
    model, space = logistic(dtype), {"learning_rate": ("log", 0.01, 1.0)}
    step = 1e-3 if x64 else 0.1  # float64: one short step, checked against differences
    result = jaxgd.grid_sweep(X, y, model=model, num_steps=20, grid={"seed": [0]},
                              sample=jaxgd.Sample(space, 4),
                              refine={"top": 2, "steps": 1 if x64 else 3,
                                      "learning_rate": step})
    refined = result.refined
    assert np.all(np.diff(refined.objective, axis=1) <= 0)  # accepted steps only lower it
    assert refined.objective[:, -1].min() < result.final_loss.min()
    # The refined runs are the end points run in full, with the model's predictions.
    np.testing.assert_allclose(refined.runs.final_loss, refined.objective[:, -1], rtol=1e-6)
    assert refined.runs.model is model and refined.runs.predict(X).shape == (2, N)
    if not x64:
        return
    r = jaxgd.tuning.search.Range("log", 0.01, 1.0)
    u0 = float(r.to_unit(refined.path["learning_rate"][0, 0]))

    def loss(u):
        return float(jaxgd.fit(X, y, model=model, learning_rate=r.from_unit(u),
                               num_steps=20).final_loss)

    h = 1e-6  # central differences in float64: error ~h² times the third derivative + ulp/h
    finite = (loss(u0 + h) - loss(u0 - h)) / (2 * h)
    np.testing.assert_allclose(refined.gradient["learning_rate"][0, 0], finite, rtol=1e-6)


def test_track_sharpness_of_a_model_is_the_dense_hessians_top_eigenvalue(x64):
    """Adam's preconditioned sharpness of a model, by power iteration on Hessian-vector
    products at every step, against the oracle: the plain optax loop and the dense Hessian's
    λmax (``jax.hessian``, ``eigvalsh``) at the same parameters."""
    dtype, steps = (jnp.float64 if x64 else jnp.float32), 30
    X, y = _data(dtype)
    model, rates = mlp(dtype), jnp.asarray([0.01, 0.1], dtype)
    result = jaxgd.sweep(X, y, model=model, learning_rates=rates, num_steps=steps,
                         optimizer="adam", record=jaxgd.Record(track_sharpness=True))

    def dense(rate):
        optimizer = optax.adam(rate)

        def step(carry, _):
            params, state = carry
            updates, state = optimizer.update(jax.grad(model.loss)(params, (X, y)), state,
                                              params)
            params = optax.apply_updates(params, updates)
            flat, unravel = jax.flatten_util.ravel_pytree(params)
            hessian = jax.hessian(lambda f: model.loss(unravel(f), (X, y)))(flat)
            nu = jax.flatten_util.ravel_pytree(state[0].nu)[0]
            return (params, state), sharpness.preconditioned_sharpness(
                hessian, nu, state[0].count, rate, 0.999, 1e-8)

        return jax.lax.scan(step, (model.init, optimizer.init(model.init)), None,
                            length=steps)[1]

    # 32 power iterations: measured within 1.5e-4 (float64) and 2e-5 (float32) of λmax.
    np.testing.assert_allclose(result.observed, jax.jit(jax.vmap(dense))(rates), rtol=1e-3)


def test_predict_uses_the_models_predict_and_refuses_without_one():
    X, y = _data()
    result = jaxgd.sweep(X, y, model=logistic(), learning_rates=RATES, num_steps=STEPS)
    expected = jax.vmap(lambda p: logistic_predict(p, X))(result.params)
    np.testing.assert_array_equal(result.predict(X), expected)
    np.testing.assert_allclose(result.run((1,)).predict(X), expected[1], rtol=1e-6)
    bare = jaxgd.Model(logistic_loss, logistic().init)
    result = jaxgd.fit(X, y, model=bare, learning_rate=0.1, num_steps=5)
    assert result.errors is None  # no predictions to measure: its losses are final_loss's
    with pytest.raises(ValueError, match="no predict function"):
        result.predict(X)
    wide = jaxgd.Model(logistic_loss, logistic().init,
                       predict=lambda p, X: jnp.stack([X @ p["w"], X @ p["w"]], axis=-1))
    with pytest.raises(ValueError, match="one prediction per row"):
        jaxgd.fit(X, y, model=wide, learning_rate=0.1, num_steps=5).errors["training"]


@pytest.mark.parametrize(("keywords", "error", "match"), [
    ({"engine": "gram"}, ValueError, "moments"),
    ({"engine": "eigen-fused"}, ValueError, "moments"),
    ({"l2": 0.1}, ValueError, "penalty"),
    ({"init": 0.5}, ValueError, "scale of linear regression's random start"),
    ({"init": jaxgd.LinearParams(np.zeros(D), np.float32(0.0))}, TypeError,
     "structure of the model's init"),
    ({"init": {"w": np.zeros(D + 1), "b": np.zeros(())}}, ValueError, "expected the model's"),
    ({"init": {"w": np.zeros(D), "b": np.array(np.nan)}}, ValueError, "NaN"),
    ({"init": {"w": np.zeros(D, np.int32), "b": np.zeros(())}}, TypeError, "floats"),
])
def test_settings_a_model_does_not_take_are_refused(keywords, error, match):
    X, y = _data()
    settings = {"learning_rate": 0.1, "num_steps": 5, **keywords}
    with pytest.raises(error, match=match):
        jaxgd.fit(X, y, model=logistic(), **settings)


def test_bad_models_are_refused_by_name(tmp_path):
    X, y = _data()
    with pytest.raises(TypeError, match="model must be a jaxgd"):
        jaxgd.fit(X, y, model=logistic_loss, learning_rate=0.1, num_steps=5)
    with pytest.raises(TypeError, match="loss must be a function"):
        jaxgd.Model(None, {"w": jnp.zeros(D)})
    with pytest.raises(TypeError, match="must be floats"):
        jaxgd.Model(logistic_loss, {"w": jnp.zeros(D, jnp.int32)})
    with pytest.raises(ValueError, match="traced start as fit's, sweep's or grid_sweep's init="):
        jax.jit(lambda w: jaxgd.Model(logistic_loss, {"w": w, "b": 0.0}))(jnp.zeros(D))
    with pytest.raises(ValueError, match="l2"):
        jaxgd.grid_sweep(X, y, model=logistic(), num_steps=5, learning_rate=0.1,
                         grid={"l2": [0.0, 0.1]})
    result = jaxgd.fit(X, y, model=logistic(), learning_rate=0.1, num_steps=5)
    with pytest.raises(TypeError, match="model="):
        result.save(tmp_path / "run")
    with pytest.raises(ValueError, match="own pytree"):
        result.named_params()


def test_data_without_rows_are_refused(tmp_path):
    X, y = _data()
    np.save(tmp_path / "rows.npy", np.column_stack([X, y]))
    rows = jaxgd.datasets.npy_rows(tmp_path / "rows.npy")
    for call in (jaxgd.fit, jaxgd.grid_sweep):
        settings = {"learning_rate": 0.1} if call is jaxgd.fit else {
            "grid": {"learning_rate": [0.1]}}
        with pytest.raises(ValueError, match="trains on the rows"):
            call(rows, None, model=logistic(), num_steps=5, **settings)
