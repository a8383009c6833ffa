"""fit, sweep and grid_sweep inside the caller's jit, vmap, grad, jvp and jacfwd."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd import LinearParams
from tests.conftest import well_conditioned

X64, Y64 = well_conditioned(3, n=60, d=3)
X, Y = X64.astype(np.float32), Y64.astype(np.float32)


def test_fit_runs_under_jit_with_a_traced_learning_rate():
    # The whole result out of the caller's jit: the program of test_a_result_passes_through_
    # jit_and_tree_map below, compiled once for both.
    traced = jax.jit(lambda lr: jaxgd.fit(X, Y, learning_rate=lr, num_steps=100))
    eager = jaxgd.fit(X, Y, learning_rate=0.1, num_steps=100).final_loss
    # The same program inside another jit: equal to float rounding (XLA may fuse otherwise).
    np.testing.assert_allclose(traced(0.1).final_loss, eager, rtol=1e-6)


def test_fit_vmaps_over_bootstrap_resamples():
    rng = np.random.default_rng(0)
    rows = rng.integers(0, X.shape[0], size=(4, X.shape[0]))
    Xs, ys = X[rows], Y[rows]
    weights = jax.vmap(lambda a, b: jaxgd.fit(a, b, learning_rate=0.1,
                                              num_steps=200).params.weight)(Xs, ys)
    assert weights.shape == (4, 3)
    for i in range(4):  # traced data run on the direct engine; each resample as an eager fit
        one = jaxgd.fit(Xs[i], ys[i], learning_rate=0.1, num_steps=200, engine="direct")
        np.testing.assert_allclose(weights[i], one.params.weight, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("engine", ["gram", "eigen"])
def test_moment_engines_compute_their_moments_inside_the_traced_program(engine):
    with jax.enable_x64(True):
        run = lambda a, b: jaxgd.fit(a, b, learning_rate=0.1, num_steps=150,  # noqa: E731
                                     engine=engine).losses
        traced = jax.jit(run)(X64, Y64)
        eager = jaxgd.fit(X64, Y64, learning_rate=0.1, num_steps=150, engine=engine).losses
        np.testing.assert_allclose(traced, eager, rtol=1e-10)


def test_grad_of_the_final_loss_with_respect_to_the_learning_rate():
    grad = jax.grad(lambda lr: jaxgd.fit(X, Y, learning_rate=lr, num_steps=50).final_loss)
    assert np.isfinite(grad(0.05)) and float(grad(0.05)) < 0  # a larger step ends lower


def test_a_result_passes_through_jit_and_tree_map():
    result = jaxgd.fit(X, Y, learning_rate=0.1, num_steps=100)
    doubled = jax.jit(lambda r: r.final_loss * 2)(result)
    np.testing.assert_allclose(doubled, 2 * result.final_loss, rtol=1e-7)
    sweep = jaxgd.sweep(X, Y, learning_rates=[0.01, 0.1], seeds=[0, 1], num_steps=100)
    first = jax.tree_util.tree_map(lambda a: a[0], sweep)
    assert type(first) is jaxgd.SweepResult and first.engine == sweep.engine
    np.testing.assert_array_equal(first.losses, sweep.losses[0])
    assert first.optimal_loss == sweep.optimal_loss  # static metadata rides along
    # A whole result out of the caller's jit, rebuilt with its metadata.
    out = jax.jit(lambda lr: jaxgd.fit(X, Y, learning_rate=lr, num_steps=100))(0.1)
    assert out.engine == result.engine and out.optimal_loss == result.optimal_loss
    leaves = jax.tree_util.tree_leaves(sweep)
    assert all(isinstance(leaf, jax.Array | np.ndarray) for leaf in leaves)


def test_grid_results_keep_their_axes_as_metadata():
    grid = jaxgd.grid_sweep(X, Y, grid={"learning_rate": [0.05, 0.1], "l2": [0.0, 0.1]},
                            num_steps=50)
    again = jax.tree_util.tree_map(lambda a: a, grid)
    assert again.axes == ("learning_rate", "l2") and again.optimal_loss.shape == (1, 2)
    assert again.best() == grid.best()


def test_a_sweep_with_traced_learning_rates_is_one_program():
    rates = jnp.asarray([0.01, 0.1, 0.3], jnp.float32)
    traced = jax.jit(lambda r: jaxgd.sweep(X, Y, learning_rates=r, num_steps=80).losses)(rates)
    eager = jaxgd.sweep(X, Y, learning_rates=[0.01, 0.1, 0.3], num_steps=80).losses
    np.testing.assert_allclose(traced, eager, rtol=1e-6)


def test_traced_tolerances_give_the_eager_verdicts():
    def steps(tol, factor):
        return jaxgd.fit(X, Y, learning_rate=0.1, num_steps=400,
                         stopping=jaxgd.Stopping(tol=tol, divergence_factor=factor)).converged_step

    for tol in (1e-4, 1e-6):
        assert int(jax.jit(steps)(tol, 1e4)) == int(steps(tol, 1e4))


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_runs_above_their_stability_limit_get_the_same_verdict_inside_a_transformation(
        optimizer):
    # Found by a hostile review: with the learning rate traced, the "known to be above its
    # stability limit" flag was always False, so the same run diverged at step 2 directly
    # and at step 9 under jit (and its hypergradient was off by 5 orders of magnitude).
    factor = 2.0 if optimizer == "sgd" else 3.0  # momentum 0.5: 2(1 + 0.5)
    rates = np.array([0.5, 1.05, 1.5]) * factor / 2 * jaxgd.stability(X).max_learning_rate
    one = lambda lr: jaxgd.fit(X, Y, learning_rate=lr, num_steps=200,  # noqa: E731
                               optimizer=jaxgd.Optimizer(optimizer, **{"momentum": 0.5}
                               if optimizer == "momentum" else {}))
    direct = [int(one(float(lr)).diverged_step) for lr in rates]
    assert direct[0] == -1 and direct[1] >= 0 and direct[2] >= 0
    assert [int(jax.jit(one)(lr).diverged_step) for lr in rates] == direct
    assert jax.vmap(one)(rates).diverged_step.tolist() == direct


def test_k_folds_with_traced_hyperparameters_run_as_untraced():
    # Once refused; the fold ids are fixed on the host, so traced rates run the same folds
    # (float32: vmap and jit may reorder sums, a few ulps).
    run = lambda lrs: jaxgd.sweep(X, Y, learning_rates=lrs, num_steps=5,  # noqa: E731
                                  validation=jaxgd.KFolds(3))
    traced = jax.jit(lambda lrs: run(lrs).final_validation_loss)(jnp.array([0.1, 0.2]))
    np.testing.assert_allclose(traced, run([0.1, 0.2]).final_validation_loss, rtol=1e-5)


def test_value_checks_still_run_on_concrete_values_inside_a_transformation():
    with pytest.raises(ValueError, match="NaN or infinite"):
        jax.jit(lambda lr: jaxgd.fit(np.full((3, 1), np.nan), np.ones(3), learning_rate=lr,
                                     num_steps=5).final_loss)(0.1)
    with pytest.raises(ValueError, match="single number"):
        jax.jit(lambda lr: jaxgd.fit(X, Y, learning_rate=lr, num_steps=5).final_loss)(
            jnp.ones(2))
    with pytest.raises(ValueError, match="2-D"):
        jax.vmap(lambda a: jaxgd.fit(a, Y, learning_rate=0.1, num_steps=5).final_loss)(X)


# Hypergradients, float64. Central differences with step h carry an error ~h² times the
# third derivative (tiny for these smooth maps) plus rounding ~eps·loss/h; h = 1e-5 relative
# leaves both near 1e-9, so rtol 1e-6 is loose enough for either and tight enough to fail a
# wrong derivative.

def _central(f, x, h):
    return (f(x + h) - f(x - h)) / (2 * h)


def test_hypergradient_of_plain_descent_matches_the_closed_form_trajectory():
    with jax.enable_x64(True):
        start = LinearParams(np.zeros(3), np.float64(0.0))

        def final(lr):
            return jaxgd.fit(X64, Y64, learning_rate=lr, num_steps=40, init=0.0,
                             engine="direct").final_loss

        def exact(lr):
            return jaxgd.exact_trajectory(X64, Y64, start, lr, 40).final_loss

        lr = 0.07
        reverse = float(jax.grad(final)(lr))
        _, forward = jax.jvp(final, (lr,), (1.0,))
        np.testing.assert_allclose(reverse, _central(exact, lr, 1e-6), rtol=1e-6)
        np.testing.assert_allclose(float(forward), reverse, rtol=1e-10)


@pytest.mark.parametrize("engine", ["direct", "gram", "eigen"])
def test_hypergradients_agree_across_engines_and_with_finite_differences(engine):
    with jax.enable_x64(True):
        def final(lr):
            return jaxgd.fit(X64, Y64, learning_rate=lr, num_steps=60, optimizer="momentum",
                             engine=engine).final_loss

        lr = 0.05
        np.testing.assert_allclose(float(jax.grad(final)(lr)),
                                   _central(lambda v: float(final(v)), lr, 1e-7), rtol=1e-5)


# Adam's two hyperparameters in one case: one gradient and one forward-mode program serve
# both (each a compile of its own otherwise), each checked against its own differences.
@pytest.mark.parametrize("names,optimizer", [(("l2",), "sgd"), (("momentum",), "momentum"),
                                             (("b1", "eps"), "adam")],
                         ids=["l2-sgd", "momentum", "b1-eps-adam"])
def test_hypergradients_of_l2_and_optimizer_hyperparameters(names, optimizer):
    with jax.enable_x64(True):
        def final(values):
            l2 = values.get("l2", 0.0)
            hyper = {name: value for name, value in values.items() if name != "l2"}
            # Few steps, small rate: the run is still on its way, so the loss depends on it.
            return jaxgd.fit(X64, Y64, learning_rate=0.02, num_steps=12,
                             optimizer=jaxgd.Optimizer(optimizer, **hyper),
                             l2=l2).final_loss

        points = {name: {"l2": 0.1, "momentum": 0.5, "b1": 0.8, "eps": 1e-3}[name]
                  for name in names}
        reverse = jax.grad(final)(points)
        for name, point in points.items():
            numeric = _central(lambda v, name=name: float(final({**points, name: v})), point,
                               1e-6 * max(point, 1e-2))
            along = {other: float(other == name) for other in points}
            _, forward = jax.jvp(final, (points,), (along,))
            np.testing.assert_allclose(float(reverse[name]), numeric, rtol=1e-5, err_msg=name)
            np.testing.assert_allclose(float(forward), float(reverse[name]), rtol=1e-8,
                                       err_msg=name)


def test_per_run_hypergradients_of_a_sweep_by_forward_mode():
    with jax.enable_x64(True):
        rates = jnp.asarray([0.01, 0.05, 0.1])

        def finals(r):
            return jaxgd.sweep(X64, Y64, learning_rates=r, num_steps=50).final_loss

        jacobian = jax.jacfwd(finals)(rates)
        assert jacobian.shape == (3, 3)
        np.testing.assert_allclose(jacobian - jnp.diag(jnp.diag(jacobian)), 0.0)  # independent
        for i, rate in enumerate([0.01, 0.05, 0.1]):
            one = lambda v: float(jaxgd.fit(X64, Y64, learning_rate=v,  # noqa: E731
                                            num_steps=50).final_loss)
            np.testing.assert_allclose(jacobian[i, i], _central(one, rate, 1e-7), rtol=1e-5)


# descend: losses with aux outputs, and optax's extra arguments.

def test_descend_records_aux_and_feeds_optax_extra_arguments():
    def loss(p):
        return jnp.sum((p - 3.0) ** 2), {"distance": jnp.abs(p - 3.0).sum()}

    run = jaxgd.descend(loss, jnp.zeros(2), optax.sgd(0.1), 30, has_aux=True, log_every=3)
    assert run.aux["distance"].shape == run.losses.shape == (10,)
    np.testing.assert_allclose(run.aux["distance"] ** 2 / 2, run.losses, rtol=1e-5)
    lbfgs = jaxgd.descend(lambda p: jnp.sum((p - 3.0) ** 2), jnp.zeros(2), optax.lbfgs(), 10)
    np.testing.assert_allclose(lbfgs.params, 3.0, rtol=1e-6)
    # A transformation that needs value, grad and value_fn (it fails without them): a step
    # of -0.1·grad scaled by value_fn(params) / value = 1 is plain sgd(0.1).
    def update(updates, state, params=None, *, value, grad, value_fn, **extra):
        ratio = value_fn(params) / value
        return jax.tree_util.tree_map(lambda g: -0.1 * g * ratio, grad), state

    needy = optax.GradientTransformationExtraArgs(lambda params: (), update)
    loss = lambda p: jnp.sum((p - 3.0) ** 2)  # noqa: E731
    ran = jaxgd.descend(loss, jnp.zeros(2), needy, 20)
    plain = jaxgd.descend(loss, jnp.zeros(2), optax.sgd(0.1), 20)
    np.testing.assert_allclose(ran.losses, plain.losses, rtol=1e-6)


# The gram engine in float32: written around the optimum, no cancellation.

def _high_r2_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 5)).astype(np.float32)
    y = X @ np.array([30.0, -20, 10, 5, 1]) + 10 + 0.01 * rng.normal(size=2000)
    return X, y.astype(np.float32)


def test_gram_losses_never_fall_below_the_optimum_in_float32():
    X, y = _high_r2_data()
    kwargs = dict(learning_rate=0.05, num_steps=20000, optimizer="adam")
    gram = jaxgd.fit(X, y, **kwargs)
    direct = jaxgd.fit(X, y, engine="direct", **kwargs)
    assert gram.engine == "gram"
    optimum = np.float32(gram.optimal_loss)
    eps = np.finfo(np.float32).eps
    # The float32 loss of any point is L* plus squares: at most a few ulps below L*.
    assert np.min(gram.losses) >= optimum * (1 - 4 * eps)
    assert bool(gram.converged) and bool(direct.converged)
    # Adam hovers near the optimum; both verdicts land on the same stretch (within 5%).
    assert abs(int(gram.converged_step) - int(direct.converged_step)) < 0.05 * int(
        direct.converged_step)
    np.testing.assert_allclose(gram.final_loss, direct.final_loss, rtol=0.05)


@pytest.mark.parametrize("engine", ["gram", "eigen", "direct"])
def test_every_engine_reaches_the_optimum_of_a_near_exact_fit_in_float32(engine):
    X, y = _high_r2_data()
    grid = ({"l2": [0.0, 1e-3]} if engine != "eigen" else {"learning_rate": [0.1, 0.3]})
    run = jaxgd.grid_sweep(X, y, grid=grid, num_steps=3000, engine=engine,
                           learning_rate=0.1 if engine != "eigen" else None)
    final, optimal = np.asarray(run.final_loss), np.broadcast_to(run.optimal_loss, (2,))
    # float32 rounding of an MSE over 2000 rows: ~1e-5 relative for the direct engine's sum.
    np.testing.assert_allclose(final, optimal, rtol=1e-4)
    assert bool(np.all(run.converged))
