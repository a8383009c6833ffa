"""Early exit (jaxgd.tuning.segments): a sweep run in segments, finished runs leaving the batch,
gives every run the values of the plain scan (to rounding: ``ULPS``) and its very verdicts;
successive halving prunes."""

import jax
import numpy as np
import pytest

import jaxgd
from jaxgd.pipeline.options import Options, make_config
from jaxgd.tuning import segments
from tests.conftest import compiles
from tests.ulps import assert_close_ulps

FIELDS = ("losses", "final_loss", "converged_step", "diverged", "diverged_step", "stalled")


def _data(dtype=np.float64, n=24, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.array([1.0, 2.0, 0.5])[:d]
    y = X @ np.arange(1.0, d + 1) + 0.5 + 0.1 * rng.normal(size=n)
    return X.astype(dtype), y.astype(dtype)


# Rates from crawling (never converges in 300 steps) over fast to diverging (stable limit of
# plain GD on these data is about 0.45; adam diverges only far above it).
RATES = [1e-3, 0.02, 0.05, 0.1, 0.2, 0.3, 0.6, 1.5]


def _pair(run, **kwargs):
    """The same sweep segmented and as one plain scan (segment_steps >= num_steps)."""
    segmented = run(segment_steps=kwargs.pop("segment_steps", 32), **kwargs)
    plain = run(segment_steps=kwargs["num_steps"], **kwargs)
    return segmented, plain


#: Segments run other programs than the plain scan (a segment's scan, batches re-packed to
#: other sizes), and XLA may sum a dot product in another order for another batch size or
#: program, by what the CPU at hand vectorizes (seen: 1 ulp, the direct engine in float64;
#: up to 4 ulps, the eigen engine on CPUs with AVX2 and AVX-512). Stable descent damps a
#: difference made once, but one made at every step piles up along a history: a 1-ulp
#: change of the learning rate (such a bias at every step) moves these histories by up to
#: 81 ulps (the adam grid). Hence 128 ulps (at most 1.5e-5 relative in float32, 2.8e-14 in
#: float64); a wrong value is off by far more.
ULPS = 128


def _close(a, b, err_msg=""):
    assert_close_ulps(a, b, ULPS, err_msg=err_msg)


def _assert_same(segmented, plain):
    """Every per-run field equal: floats within ``ULPS`` (NaN where NaN), steps and verdicts
    exactly (the data keep every run's loss far from a verdict's threshold)."""
    for name in (*FIELDS, "params", "snapshots"):
        for a, b in zip(jax.tree_util.tree_leaves(getattr(segmented, name)),
                        jax.tree_util.tree_leaves(getattr(plain, name)), strict=True):
            a, b = np.asarray(a), np.asarray(b)
            assert a.shape == b.shape and a.dtype == b.dtype, name
            _close(a, b, err_msg=name)
    assert (np.asarray(plain.steps_run) == plain.num_steps).all()
    assert (np.asarray(plain.pruned_step) == -1).all()


@pytest.mark.parametrize("engine", ["eigen", "gram", "direct"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_segments_equal_the_plain_scan(engine, dtype):
    X, y = _data(dtype)
    run = lambda segment_steps, **k: jaxgd.sweep(  # noqa: E731
        X, y, learning_rates=RATES, engine=engine, **k,
        stopping=jaxgd.Stopping(early_exit=True, segment_steps=segment_steps))
    with jax.enable_x64(dtype == np.float64):
        segmented, plain = _pair(run, num_steps=256)
    # Within ULPS for every engine: even the eigen engine's elementwise step and d-term
    # loss are compiled anew for each batch size (bit for bit on some CPUs, not on all).
    _assert_same(segmented, plain)
    # Some runs converged early, some diverged, one crawled to the end: all three kinds left
    # (or stayed) and the saving is real.
    assert segmented.converged.any() and segmented.diverged.any()
    assert not (segmented.converged | segmented.diverged).all()
    steps = np.asarray(segmented.steps_run)
    assert steps.max() == 256 and steps.min() < 256
    assert segmented.run_steps_executed < segmented.run_steps_scheduled == 256 * len(RATES)
    # A finished run was computed up to the end of the segment in which it finished.
    done = (segmented.converged | segmented.diverged) & (steps < 256)
    assert (steps[done] % 32 == 0).all()


def test_adam_grid_with_seeds_log_every_snapshots_and_chunks():
    X, y = _data(np.float32)
    run = lambda segment_steps, **k: jaxgd.grid_sweep(  # noqa: E731
        X, y, grid={"learning_rate": [0.01, 0.1, 0.5, 3.0], "seed": [0, 1, 2]},
        optimizer="adam", stopping=jaxgd.Stopping(early_exit=True, segment_steps=segment_steps),
        record=jaxgd.Record(log_every=4, snapshot_steps=[0, 10, 50, 150, 203]),
        placement=jaxgd.Placement(chunk_size=5), engine="gram", **k)
    segmented, plain = _pair(run, num_steps=203, segment_steps=24)  # 203: not a multiple
    _assert_same(segmented, plain)
    assert segmented.losses.shape == (4, 3, 51) and segmented.converged.any()
    assert (np.asarray(segmented.steps_run) < 203).any()
    assert segmented.run_steps_scheduled == 12 * 203


def test_under_jit_falls_back_to_the_plain_scan():
    X, y = _data(np.float32)

    def sweep(segment_steps):
        @jax.jit
        def run(rates):
            result = jaxgd.grid_sweep(X, y, grid={"learning_rate": rates}, num_steps=64,
                                      stopping=jaxgd.Stopping(early_exit=True,
                                                              segment_steps=segment_steps))
            return result.losses, result.steps_run

        return run(np.asarray([0.05, 0.3, 1.5], np.float32))

    (losses, steps), (plain, _) = sweep(16), sweep(64)
    np.testing.assert_array_equal(losses, plain)
    assert (np.asarray(steps) == 64).all()  # no run left early: one plain scan


def test_successive_halving_keeps_the_best_third_at_each_rung():
    X, y = _data(np.float64)
    rates = np.geomspace(1e-4, 0.3, 9)  # slow to fast, all stable, none converges by 30
    result = jaxgd.sweep(X, y, learning_rates=rates, num_steps=200,
                         stopping=jaxgd.Stopping(pruning=jaxgd.Halving(rate=3, min_steps=10),
                                                 segment_steps=10),
                         engine="gram")
    pruned = np.asarray(result.pruned_step)
    # Rungs at 10, 30, 90: 9 -> 3 -> 1 runs go on; the losers are the slow rates.
    assert sorted(pruned.tolist()) == [-1, 10, 10, 10, 10, 10, 10, 30, 30]
    order = np.argsort(-rates)
    assert pruned[order[0]] == -1 and (pruned[order[1:3]] == 30).all()
    np.testing.assert_array_equal(result.steps_run, np.where(pruned >= 0, pruned, 200))
    assert result.run_steps_executed == 6 * 10 + 2 * 30 + 200
    # A pruned run is frozen: its history repeats its final loss after the rung, and up to
    # the rung it is the plain run's history.
    plain = jaxgd.sweep(X, y, learning_rates=rates, num_steps=200, engine="gram")
    for r in np.flatnonzero(pruned >= 0):
        _close(result.losses[r, :pruned[r]], plain.losses[r, :pruned[r]])
        assert (result.losses[r, pruned[r]:] == result.final_loss[r]).all()
    best = int(np.argmax(rates))
    _close(result.losses[best], plain.losses[best])


def test_selection_ranks_points_by_their_mean_loss_at_the_rung():
    # Runs 0-1 are point 0, runs 2-3 point 1, ...; run 5 diverged (inf) and rules its point
    # out; run 6 is done (frozen), so only its partner, run 7, is pruned with it.
    at_rung = np.array([1.0, 3.0, 0.5, 0.5, 0.1, np.inf, 4.0, 4.0])
    points = np.arange(8) // 2
    np.testing.assert_array_equal(segments.selection_loss(at_rung, points),
                                  [2.0, 0.5, np.inf, 4.0])
    done = np.array([False] * 6 + [True, False])
    losing = segments._losing(at_rung, points, np.arange(8), done,
                              segments.Plan(2, "halving", 2, 2))
    assert losing.tolist() == [False, False, False, False, True, True, False, True]
    # Without folds every run is a point; a NaN loss ranks last, ties keep the lower index.
    losing = segments._losing(np.array([1.0, 3.0, np.nan, 1.0]), np.arange(4), np.arange(4),
                              np.zeros(4, bool), segments.Plan(2, "halving", 2, 2))
    assert losing.tolist() == [False, True, True, False]


@pytest.mark.parametrize("held", [None, 0.25])
def test_halving_ranks_by_the_loss_at_the_rung_whatever_log_every(held):
    # With log_every=10 = min_steps the first rung, step 10, used to read the history's
    # entry 0 (the loss before any update, equal for every rate of one seed): the stable
    # sort kept the three slowest rates and pruned the best. The ranking now reads the loop
    # state at the rung, so with the rungs (10, 30, 90) on logged steps log_every=10 prunes
    # exactly as log_every=1 does, and its histories are log_every=1's, every 10th entry.
    X, y = _data(np.float64)
    rates = np.geomspace(1e-4, 0.1, 9)  # slow to fast, all stable, none converges by 270
    run = {k: jaxgd.sweep(X, y, learning_rates=rates, num_steps=270,
                          stopping=jaxgd.Stopping(pruning=jaxgd.Halving()),
                          record=jaxgd.Record(log_every=k),
                          validation=None if held is None else jaxgd.Holdout(held),
                          engine="gram")
           for k in (1, 10)}
    pruned = np.asarray(run[10].pruned_step)
    np.testing.assert_array_equal(pruned, run[1].pruned_step)
    np.testing.assert_array_equal(run[10].steps_run, run[1].steps_run)
    assert pruned.tolist() == [10] * 6 + [30, 30, -1]  # the fastest rate survives
    names = ("losses",) if held is None else ("losses", "validation_losses")
    for name in names:
        _close(getattr(run[10], name), np.asarray(getattr(run[1], name))[:, ::10], name)


@pytest.mark.parametrize(("options", "message"), [
    ({"pruning": "hyperband"}, "pruning must be one of"),
    ({"pruning": "halving", "halving_rate": 1}, "halving_rate"),
    ({"pruning": "halving", "min_steps": 0}, "min_steps"),
    ({"stop_at_convergence": True, "segment_steps": 0}, "segment_steps"),
    ({"segment_steps": 10}, "segment_steps needs stop_at_convergence"),
])
def test_bad_options_are_named(options, message):
    options = Options(num_steps=100, **options)
    with pytest.raises(ValueError, match=message):
        segments.make_plan(options, make_config(options))


def test_plain_runs_report_every_step_scheduled():
    X, y = _data(np.float32)
    result = jaxgd.sweep(X, y, learning_rates=[0.1, 0.2], num_steps=20)
    assert result.run_steps_executed == result.run_steps_scheduled == 40
    fit = jaxgd.fit(X, y, learning_rate=0.1, num_steps=20)
    assert int(fit.steps_run) == 20 and int(fit.pruned_step) == -1
    assert result.run(1).num_steps == 20


def test_early_exit_runs_the_plain_scan_where_segments_would_not_pay(monkeypatch):
    # 640 steps of 2 runs on 3 features: ~10⁵ multiply-adds, far below PAYS_FROM. The plain
    # scan freezes the converged runs all the same, in one program (no segment programs).
    X, y = _data(np.float32)
    assert segments.work("eigen", len(y), 3, 2, 640) < segments.PAYS_FROM
    segmented = segments.run_segments

    def refused(*args, **kwargs):
        raise AssertionError("ran in segments")

    monkeypatch.setattr(segments, "run_segments", refused)
    run = jaxgd.sweep(X, y, learning_rates=[0.2, 0.3], num_steps=640,
                      stopping=jaxgd.Stopping(early_exit=True), engine="eigen")
    assert run.converged.all() and (np.asarray(run.steps_run) == 640).all()
    assert int(jaxgd.fit(X, y, learning_rate=0.2, num_steps=640,
                         stopping=jaxgd.Stopping(early_exit=True),
                         engine="eigen").steps_run) == 640
    # Asked for, segments run whatever the work.
    monkeypatch.setattr(segments, "run_segments", segmented)
    asked = jaxgd.sweep(X, y, learning_rates=[0.2, 0.3], num_steps=640,
                        stopping=jaxgd.Stopping(early_exit=True, segment_steps=20), engine="eigen")
    assert (np.asarray(asked.steps_run) < 640).all()
    np.testing.assert_array_equal(asked.converged_step, run.converged_step)


def test_fit_stops_computing_once_converged(monkeypatch):
    monkeypatch.setattr(segments, "PAYS_FROM", 0.0)  # segments whatever the work
    X, y = _data(np.float32)
    run = jaxgd.fit(X, y, learning_rate=0.2, num_steps=640,
                    stopping=jaxgd.Stopping(early_exit=True),
                    engine="eigen")
    plain = jaxgd.sweep(X, y, learning_rates=[0.2], num_steps=640,
                        stopping=jaxgd.Stopping(early_exit=True, segment_steps=640),
                        engine="eigen").run(0)
    assert bool(run.converged) and int(run.steps_run) < 640
    for name in ("losses", "final_loss", "converged_step", "params"):
        for a, b in zip(jax.tree_util.tree_leaves(getattr(run, name)),
                        jax.tree_util.tree_leaves(getattr(plain, name)), strict=True):
            if np.asarray(a).dtype.kind == "f":
                _close(a, b, err_msg=name)
            else:
                np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("log_every, segment", [(1, 20), (30, 30)])
def test_fit_runs_in_segments_of_the_default_length_only(log_every, segment, monkeypatch):
    # As the README says: fit has no segment_steps; its segments are 1/32 of num_steps
    # (640 / 32 = 20), rounded up to a whole number of logged steps, and a converged run
    # stops at the end of the segment in which it converged (where segments pay: here
    # forced, the run being too small for them to).
    monkeypatch.setattr(segments, "PAYS_FROM", 0.0)
    X, y = _data(np.float32)
    run = jaxgd.fit(X, y, learning_rate=0.2, num_steps=640,
                    stopping=jaxgd.Stopping(early_exit=True),
                    record=jaxgd.Record(log_every=log_every),
                    engine="eigen")
    steps = int(run.steps_run)
    assert bool(run.converged) and steps < 640 and steps % segment == 0
    same = jaxgd.sweep(X, y, learning_rates=[0.2], num_steps=640,
                       stopping=jaxgd.Stopping(early_exit=True, segment_steps=segment),
                       record=jaxgd.Record(log_every=log_every),
                       engine="eigen").run(0)
    assert int(same.steps_run) == steps
    with pytest.raises(ValueError, match=r"fit takes no Stopping\.segment_steps"):
        jaxgd.fit(X, y, learning_rate=0.2, num_steps=640,
                  stopping=jaxgd.Stopping(early_exit=True, segment_steps=64))


def test_a_second_segmented_sweep_compiles_nothing(monkeypatch):
    monkeypatch.setattr(segments, "MIN_BATCH", 2)  # re-pack 8 runs down to 4 and 2 too
    X, y = _data(np.float32)
    run = lambda: jaxgd.sweep(X, y, learning_rates=RATES, num_steps=256,  # noqa: E731
                              stopping=jaxgd.Stopping(early_exit=True, segment_steps=32),
                              engine="eigen")
    first = run()
    assert len(set(np.asarray(first.steps_run).tolist())) >= 3  # left in several segments
    with compiles() as later:
        second = run()
    assert later == []
    np.testing.assert_array_equal(second.losses, first.losses)


def test_unroll_reaches_the_segments_and_changes_no_number():
    # unroll is a RunConfig field: the segments' runs scan with it, the snapshots of their
    # traced step counter still come from the cond, and every value is that of unroll=1
    # (floats within ULPS: an unrolled body is another program, which XLA may fuse
    # otherwise; steps and verdicts exactly).
    X, y = _data()
    runs = {u: jaxgd.sweep(X, y, learning_rates=RATES, num_steps=60,
                           stopping=jaxgd.Stopping(early_exit=True, segment_steps=8),
                           record=jaxgd.Record(snapshot_steps=(0, 7, 16, 60)),
                           placement=jaxgd.Placement(unroll=u))
            for u in (1, 4)}
    for field in (*FIELDS, "snapshots", "steps_run"):
        for a, b in zip(jax.tree_util.tree_leaves(getattr(runs[4], field)),
                        jax.tree_util.tree_leaves(getattr(runs[1], field)), strict=True):
            _close(a, b, err_msg=field)
