"""The fused path (jaxgd.engines.fused) against the scan path and the closed-form trajectory.

On this CPU the kernel runs in Pallas's interpreter, which evaluates the very kernel body a
GPU would compile (same jaxpr: loss, gradient, optax update, monitor), so these tests cover
its logic, not its Triton/Mosaic lowering. Interpreting is slow: few steps, few runs.

Tolerances: both paths trace the same operations in the same order; they are compiled into
different XLA programs (a fori_loop in a kernel against a scan), whose fusions may round a
step's loss differently by an ulp or two. Descent below the stability limit forgets such
noise, so float32 histories agree to 1e-6 relative (plus 1e-7 absolute for terms near 0),
float64 to 1e-12; verdict steps must be equal.

The held-out loss at each logged step is computed in the kernel from the held-out moments
term by term (the eigen coordinates mapped back as θ = Qz one product at a time), where
the scan path maps back with one matrix product and sums the quadratic form in XLA's own
order: each rounds differently. That rounding is of the parameters' and the data's scale
(about 1 here), not of the held-out loss, which falls toward 0.01 as the runs approach the
held-out optimum: compared in ulps (tests/ulps.py) with a floor of 1.0, within 8 ulps
(seen: 3 in float32 and float64, where the same losses are up to 79 ulps apart at their
own magnitude). The final held-out loss is the scan path's own function of the final
parameters, computed outside the kernel: compared like the parameters.
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd import LinearParams, exact_trajectory, fit, grid_sweep, sweep
from jaxgd.api.settings import group
from jaxgd.engines import engine as engines
from jaxgd.engines import fused
from jaxgd.pipeline import holdout, training
from jaxgd.pipeline.options import Options, make_config
from tests.conftest import well_conditioned
from tests.ulps import assert_close_ulps

FIELDS = ("losses", "final_loss", "converged_step", "diverged", "diverged_step", "stalled",
          "snapshot_steps", "loss_steps")
#: Small to large, the last two above the stability limit (λmax ≈ 2.6 here: 2/λ ≈ 0.77).
RATES = [0.01, 0.1, 0.5, 0.9, 3.0]


def assert_same_runs(a, b, rtol, atol):
    assert a.losses.shape == b.losses.shape
    for name in FIELDS:
        np.testing.assert_allclose(np.asarray(getattr(a, name), float),
                                   np.asarray(getattr(b, name), float), rtol=rtol, atol=atol,
                                   equal_nan=True, err_msg=name)
    for name in ("params", "snapshots"):
        for x, y in zip(getattr(a, name), getattr(b, name), strict=True):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=name)


# Each engine with each of its optimizers here, and in float32 and float64 (each case
# compiles for ~10 s here): eigen-fused runs sgd and momentum, gram-fused adam and sgd.
@pytest.mark.parametrize("engine, optimizer, x64", [
    ("eigen", "sgd", True), ("eigen", "momentum", False),
    ("gram", "adam", False), ("gram", "sgd", True)])
def test_fused_runs_match_the_scan_path(engine, optimizer, x64):
    X, y = well_conditioned(1, n=40, d=3)
    rtol, atol = (1e-12, 1e-14) if x64 else (1e-6, 1e-7)
    options = {"learning_rates": RATES, "seeds": [0, 1], "num_steps": 40,
               "stopping": jaxgd.Stopping(tol=1e-4, patience=3),
               "record": jaxgd.Record(log_every=3, snapshot_steps=(0, 5, 40)),
               "optimizer": optimizer}
    with jax.enable_x64(x64):  # K = 10 runs: one block of 16, 6 of them padding
        scan = sweep(X, y, engine=engine, **options)
        one = sweep(X, y, engine=f"{engine}-fused", **options)
    assert one.engine == f"{engine}-fused" and one.losses.dtype == scan.losses.dtype
    assert one.losses.shape == (5, 2, 14)  # 40 steps logged every 3: the last block padded
    assert_same_runs(one, scan, rtol, atol)
    assert not one.diverged[0].any()
    if optimizer != "adam":  # above the limit: the monitor's verdicts are exercised too
        assert one.diverged[-1].all()


def test_several_blocks_and_stop_at_convergence(monkeypatch):
    # 11 runs in blocks of 4: three kernel programs, the last with one padding run.
    monkeypatch.setattr(fused, "BLOCK_RUNS", 4)
    X, y = well_conditioned(2, n=30, d=2)
    options = {"learning_rates": np.geomspace(0.02, 2.0, 11), "num_steps": 37,
               "stopping": jaxgd.Stopping(early_exit=True, tol=1e-4, patience=4)}
    scan = sweep(X, y, engine="eigen", **options)
    one = sweep(X, y, engine="eigen-fused", **options)
    assert_same_runs(one, scan, 1e-6, 1e-7)
    assert one.converged.any() and one.diverged.any()


@pytest.mark.parametrize("x64", [False, True], ids=["float32", "float64"])
def test_fused_sgd_follows_the_closed_form(x64):
    # The float64 closed form (jaxgd.theory.trajectory) from a zero start. float64: the eigenbasis
    # is exact to ~1e-15, 30 steps compound it: 1e-10. float32: the loss's own rounding,
    # about 1e-7 of the loss each step, compounding over 30 stable steps: 1e-5.
    X, y = well_conditioned(3, n=50, d=4)
    with jax.enable_x64(x64):
        run = fit(X, y, learning_rate=0.3, num_steps=30, init=0.0, engine="eigen-fused")
    start = LinearParams(np.zeros(4), np.float64(0.0))
    exact = exact_trajectory(X, y, start, 0.3, 30)
    np.testing.assert_allclose(run.losses, exact.losses, rtol=1e-10 if x64 else 1e-5)


def test_auto_picks_the_fused_path_on_an_accelerator_only(monkeypatch):
    assert engines.choose_engine("auto", 392, 7, 1000, 64) == "eigen"  # this CPU
    X, y = well_conditioned(4, n=20, d=2)
    on_cpu = sweep(X, y, learning_rates=[0.1, 0.5], num_steps=6)
    assert on_cpu.engine == "eigen"
    monkeypatch.setattr(engines, "on_accelerator", lambda: True)
    faked = sweep(X, y, learning_rates=[0.1, 0.5], num_steps=6)  # interpreted: still a CPU
    assert faked.engine == "eigen-fused"
    np.testing.assert_allclose(faked.losses, on_cpu.losses, rtol=1e-6)
    assert engines.choose_engine("auto", 392, 7, 1000, 64) == "eigen-fused"
    assert engines.choose_engine("auto", 392, 7, 1000, 64, "adam") == "gram-fused"
    assert engines.choose_engine("auto", 392, 20, 1000, 64) == "eigen"  # too wide
    assert engines.choose_engine("auto", 10, 500, 1000, 1) == "direct"
    assert engines.choose_engine("eigen", 392, 7, 1000, 64) == "eigen"  # asked for: kept


def test_fused_engines_refuse_what_they_cannot_run():
    X, y = well_conditioned(5, n=40, d=16)
    with pytest.raises(ValueError, match="at most 15 features; this model has 16: use "
                                         "engine='gram'"):
        fit(X, y, learning_rate=0.1, num_steps=3, engine="gram-fused")
    with pytest.raises(ValueError, match="engine='eigen-fused' is exact only for sgd"):
        fit(X[:, :2], y, learning_rate=0.1, num_steps=3, engine="eigen-fused",
            optimizer="adam")
    with pytest.raises(ValueError, match="mini-batch SGD needs engine='direct'"):
        fit(X[:, :2], y, learning_rate=0.1, engine="eigen-fused",
            batches=jaxgd.MiniBatches(batch_size=8, epochs=1))


def test_fused_path_composes_with_jit_vmap_and_grad():
    X, y = well_conditioned(6, n=30, d=2)
    rates = jnp.asarray([[0.05, 0.2, 0.4], [0.1, 0.3, 0.6]])

    def losses(rates, engine):
        return sweep(X, y, learning_rates=rates, num_steps=12, engine=engine).losses

    # vmap over sweeps: a second run axis, merged into the kernel's one.
    nested = {e: jax.jit(jax.vmap(lambda r, e=e: losses(r, e)))(rates)
              for e in ("eigen", "eigen-fused")}
    np.testing.assert_allclose(nested["eigen-fused"], nested["eigen"], rtol=1e-6)

    # grad differentiates the scan path: the same derivative as the scan engine's.
    def total(rates, engine):
        return sweep(X, y, learning_rates=rates, num_steps=12, engine=engine,
                     stopping=jaxgd.Stopping(reference=False)).final_loss.sum()

    grads = {e: jax.grad(total)(rates[0], e) for e in ("eigen", "eigen-fused")}
    np.testing.assert_allclose(grads["eigen-fused"], grads["eigen"], rtol=1e-6)
    assert np.all(np.isfinite(grads["eigen"])) and np.any(grads["eigen"] != 0)


def test_grid_sweep_over_an_optimizer_hyperparameter():
    # The momentum is a per-run input of the kernel, like the learning rate.
    X, y = well_conditioned(9, n=30, d=2)
    grid = {"learning_rate": [0.05, 0.3], "momentum": [0.0, 0.5, 0.9]}
    runs = {e: grid_sweep(X, y, grid=grid, optimizer="nesterov", num_steps=15, engine=e)
            for e in ("eigen", "eigen-fused")}
    assert runs["eigen-fused"].losses.shape == (2, 3, 15)
    assert_same_runs(runs["eigen-fused"], runs["eigen"], 1e-6, 1e-7)


def test_data_batched_by_the_caller_take_the_scan_path():
    # One dataset per run (a bootstrap under vmap) has no single table of constants for the
    # kernel: those runs go through the scan path, with the same numbers.
    X, y = well_conditioned(7, n=30, d=2)
    ys = jnp.stack([y, 2 * y])

    def run(y, engine):
        return fit(X, y, learning_rate=0.2, num_steps=10, engine=engine,
                   stopping=jaxgd.Stopping(reference=False)).losses

    both = {e: jax.vmap(lambda y, e=e: run(y, e))(ys) for e in ("gram", "gram-fused")}
    np.testing.assert_allclose(both["gram-fused"], both["gram"], rtol=1e-6)


@pytest.mark.parametrize("engine, optimizer", [("eigen-fused", "momentum"),
                                               ("gram-fused", "adam")])
def test_the_kernel_lowers_to_triton(engine, optimizer):
    # What this CPU can check of the GPU path: the whole sweep, kernel included, lowers for
    # CUDA, and the kernel becomes one Triton call (Pallas's Triton lowering accepts every
    # operation of its body: the loss's gradient, the optax update, the monitor). Compiling
    # that Triton IR to PTX and running it needs a GPU.
    X, y = well_conditioned(8, n=30, d=3)

    def losses(rates):
        return sweep(X, y, learning_rates=rates, num_steps=20, optimizer=optimizer,
                     engine=engine, record=jaxgd.Record(log_every=3)).losses

    lowered = jax.jit(losses).trace(jnp.asarray([0.1, 0.2, 0.3]))
    text = lowered.lower(lowering_platforms=("cuda",)).as_text()
    assert text.count("custom_call @__gpu$xla.gpu.triton") == 1


def assert_same_held_out(a, b, rtol, atol):
    assert a.validation_losses.shape == b.validation_losses.shape
    assert a.validation_losses.dtype == b.validation_losses.dtype
    assert_close_ulps(a.validation_losses, b.validation_losses, 8, floor=1.0,
                      err_msg="validation_losses")
    np.testing.assert_allclose(a.final_validation_loss, b.final_validation_loss, rtol=rtol,
                               atol=atol, err_msg="final_validation_loss")
    for side in ("training", "validation"):  # float64 on the host, from the parameters
        for metric, value in a.errors[side].items():
            np.testing.assert_allclose(value, b.errors[side][metric], rtol=rtol, atol=atol,
                                       err_msg=f"errors {side} {metric}")


def _validation_rows(n=12, d=3):
    X, y = well_conditioned(11, n=n, d=d)
    return X, y


# The three ways of holding rows out, each engine and dtype at least once: gram's in float32
# with the caller's own rows in test_fit_with_held_out_rows_in_the_kernel below, eigen's
# with them in test_several_blocks_of_folds_and_nested_vmap.
@pytest.mark.parametrize("engine, optimizer, x64, held", [
    ("eigen", "sgd", False, "validation_fraction"), ("eigen", "momentum", True, "k_folds"),
    ("gram", "adam", True, "k_folds")])
def test_held_out_losses_match_the_scan_path(engine, optimizer, x64, held):
    X, y = well_conditioned(1, n=40, d=3)
    held_out = {"validation_fraction": {"validation_fraction": 0.25},
                "k_folds": {"k_folds": 3},
                "validation": {"validation": _validation_rows()}}[held]
    rtol, atol = (1e-12, 1e-14) if x64 else (1e-6, 1e-7)
    # The last rate diverges (NaN held-out losses after the blow-up, a NaN final one); 20
    # steps logged every 3, the last block padded.
    options = group(dict(learning_rates=[0.05, 0.5, 3.0], num_steps=20, optimizer=optimizer,
                         log_every=3, tol=1e-4, patience=3, **held_out))  # grouped here
    with jax.enable_x64(x64):
        scan = sweep(X, y, engine=engine, **options)
        one = sweep(X, y, engine=f"{engine}-fused", **options)
    assert one.engine == f"{engine}-fused"
    folds = (3,) if held == "k_folds" else ()
    assert one.validation_losses.shape == (3, *folds, 7)  # a history per run (and fold)
    assert_same_runs(one, scan, rtol, atol)
    assert_same_held_out(one, scan, rtol, atol)
    assert np.isfinite(one.validation_losses[:2]).all()
    if optimizer != "adam":
        assert np.isnan(one.final_validation_loss[-1]).all()
    assert one.best() == scan.best() and one.best("training") == scan.best("training")


def test_fit_with_held_out_rows_in_the_kernel():
    # One run, not under vmap: the kernel's single-run path, with the caller's own rows.
    X, y = well_conditioned(2, n=30, d=2)
    options = dict(learning_rate=0.3, num_steps=9, validation=_validation_rows(d=2))
    runs = {e: fit(X, y, engine=e, **options) for e in ("gram", "gram-fused")}
    assert runs["gram-fused"].engine == "gram-fused"
    assert runs["gram-fused"].validation_losses.shape == (9,)
    assert_same_held_out(runs["gram-fused"], runs["gram"], 1e-6, 1e-7)
    np.testing.assert_allclose(runs["gram-fused"].losses, runs["gram"].losses, rtol=1e-6)


def test_several_blocks_of_folds_and_nested_vmap(monkeypatch):
    # 7 rates x 3 folds = 21 runs in blocks of 8, each run's fold gathered for it: three
    # kernel programs, folds mixed within a block; and a vmap over sweeps around it.
    monkeypatch.setattr(fused, "BLOCK_RUNS", 8)
    X, y = well_conditioned(3, n=30, d=2)
    options = {"learning_rates": np.geomspace(0.02, 1.0, 7), "num_steps": 8,
               "validation": jaxgd.KFolds(3)}
    scan = sweep(X, y, engine="eigen", **options)
    one = sweep(X, y, engine="eigen-fused", **options)
    assert_same_runs(one, scan, 1e-6, 1e-7)
    assert_same_held_out(one, scan, 1e-6, 1e-7)
    # Held-out rows given, rates batched by the caller's vmap: a second run axis.
    rates = jnp.asarray([[0.05, 0.2], [0.1, 0.4]])
    held = _validation_rows(d=2)

    def held_losses(rates, engine):
        return sweep(X, y, learning_rates=rates, num_steps=8, engine=engine,
                     validation=held, stopping=jaxgd.Stopping(reference=False)).validation_losses

    nested = {e: jax.vmap(lambda r, e=e: held_losses(r, e))(rates)
              for e in ("eigen", "eigen-fused")}
    assert_close_ulps(nested["eigen-fused"], nested["eigen"], 8, floor=1.0)


def test_traced_held_out_rows_take_the_scan_path():
    # Rows traced by the caller's jit stay rows (no host moments), which the kernel cannot
    # read: the run takes the scan path, with the scan engine's numbers.
    X, y = well_conditioned(4, n=30, d=2)
    X_val, y_val = _validation_rows(d=2)

    def held_losses(X_val, engine):
        return fit(X, y, learning_rate=0.3, num_steps=6, engine=engine,
                   stopping=jaxgd.Stopping(reference=False),
                   validation=(X_val, y_val)).validation_losses

    both = {e: jax.jit(lambda v, e=e: held_losses(v, e))(X_val) for e in ("gram", "gram-fused")}
    np.testing.assert_array_equal(both["gram-fused"], both["gram"])


def test_the_kernel_lowers_to_triton_with_held_out_data():
    # As above, with the held-out loss in the kernel: a validation split, and k folds with
    # per-run constants (train under vmap, as grid_sweep runs it: a sweep with k_folds needs
    # concrete hyperparameters, so it cannot be traced whole).
    X, y = well_conditioned(8, n=30, d=3)

    def held_losses(rates):
        return sweep(X, y, learning_rates=rates, num_steps=20, optimizer="momentum",
                     engine="eigen-fused", record=jaxgd.Record(log_every=3),
                     validation=jaxgd.Holdout(0.3)).losses

    text = jax.jit(held_losses).trace(jnp.asarray([0.1, 0.2, 0.3])).lower(
        lowering_platforms=("cuda",)).as_text()
    assert text.count("custom_call @__gpu$xla.gpu.triton") == 1
    data, held, _ = holdout.fold_data("gram-fused", X, y,
                                      holdout.Folds(holdout.fold_ids(30, 3), 3), 0.0)
    config = make_config(Options(num_steps=20, optimizer="adam", log_every=3))
    hyper = {"learning_rate": jnp.asarray([0.1, 0.2, 0.3]), "seed": jnp.zeros(3, jnp.uint32),
             "l2": jnp.zeros(3), "tol": jnp.full(3, 1e-4),
             "divergence_factor": jnp.full(3, 10.0), "fold": jnp.arange(3, dtype=jnp.int32)}
    run = jax.jit(jax.vmap(partial(training.train, engines.GRAM_FUSED, data, config=config,
                                   held=held)))
    text = run.trace(hyper).lower(lowering_platforms=("cuda",)).as_text()
    assert text.count("custom_call @__gpu$xla.gpu.triton") == 1


def test_grad_of_the_held_out_loss_differentiates_the_scan_path():
    # Tuning on held-out loss: jax.grad of a fused sweep's final held-out loss is the scan
    # engine's derivative (custom_jvp), the held-out data carried with it.
    X, y = well_conditioned(5, n=30, d=2)
    held = _validation_rows(d=2)

    def total(rates, engine):
        return sweep(X, y, learning_rates=rates, num_steps=10, engine=engine, validation=held,
                     stopping=jaxgd.Stopping(reference=False)).final_validation_loss.sum()

    rates = jnp.asarray([0.05, 0.2, 0.4])
    grads = {e: jax.grad(total)(rates, e) for e in ("gram", "gram-fused")}
    np.testing.assert_allclose(grads["gram-fused"], grads["gram"], rtol=1e-6)
    assert np.all(np.isfinite(grads["gram"])) and np.any(grads["gram"] != 0)
