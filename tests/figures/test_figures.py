"""The figures: each is drawn from a results record, saved as a reproducible PNG, and never
fails on diverged runs or NaN losses."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import jaxgd
from jaxgd import (
    Standardizer,
    figures,
    solve,
    stability,
    sweep,
    unstandardize_params,
)
from jaxgd.core.params import LinearParams
from tests.conftest import COURSE_CARS_X, COURSE_CARS_Y, well_conditioned

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NUM_STEPS = 200
SNAPSHOTS = (0, 100, 200)
# Dense, roughly geometric steps for the descent path, with the snapshots among them.
PATH_STEPS = tuple(sorted({0, *np.unique(np.geomspace(1, NUM_STEPS, 24).astype(int)),
                           *SNAPSHOTS}))


def make_record(X, y, rates, *, feature_names, target_name, title, seeds=(0, 1)):
    """A results record as the command line saves it: a sweep on standardized features,
    parameters mapped back to original units."""
    scaler = Standardizer.fit(X)
    Xs = scaler.transform(X)
    result = sweep(Xs, y, learning_rates=rates, num_steps=NUM_STEPS, seeds=list(seeds),
                   record=jaxgd.Record(snapshot_steps=PATH_STEPS))
    params = unstandardize_params(
        LinearParams(np.asarray(result.snapshots.weight, np.float64),
                     np.asarray(result.snapshots.bias, np.float64)), scaler)
    weight, bias = np.asarray(params.weight), np.asarray(params.bias)  # (K, S, Q[, d])
    with np.errstate(all="ignore"):
        residual = np.einsum("nd,ksqd->ksqn", X, weight) + bias[..., None] - y
        snapshot_loss = np.mean(residual**2, axis=-1)
    final = np.asarray(result.final_loss, np.float64)
    diverged = np.asarray(result.diverged)
    usable = ~diverged & np.isfinite(final)
    if usable.any():
        best = np.unravel_index(np.argmin(np.where(usable, final, np.inf)), final.shape)
    else:
        best = (-1, -1)
    pick = [PATH_STEPS.index(step) for step in SNAPSHOTS]
    optimum = solve(X, y)
    history = {
        "learning_rates": np.asarray(result.learning_rates, np.float64),
        "seeds": np.asarray(result.seeds, np.int64),
        "losses": np.asarray(result.losses, np.float64),
        "final_loss": final,
        "converged_step": np.asarray(result.converged_step, np.int64),
        "diverged": diverged,
        "diverged_step": np.asarray(result.diverged_step, np.int64),
        "best_index": np.asarray(best, np.int64),
        "snapshot_steps": np.asarray(SNAPSHOTS, np.int64),
        "snapshot_weight": weight[:, :, pick],
        "snapshot_bias": bias[:, :, pick],
        "snapshot_loss": snapshot_loss[:, :, pick],
        "path_steps": np.asarray(PATH_STEPS, np.int64),
        "path_weight": weight[best] if best[0] >= 0 else np.full((len(PATH_STEPS), X.shape[1]),
                                                                 np.nan),
        "path_bias": bias[best] if best[0] >= 0 else np.full(len(PATH_STEPS), np.nan),
        "X": np.asarray(X, np.float64),
        "y": np.asarray(y, np.float64),
        "optimum_weight": np.asarray(optimum.params.weight),
        "optimum_bias": np.asarray(optimum.params.bias),
        "optimal_loss": np.asarray(optimum.loss),
    }
    meta = {
        "feature_names": list(feature_names),
        "target_name": target_name,
        "max_learning_rate": stability(Xs).max_learning_rate,
        "title": title,
        "optimizer": "sgd",
    }
    return history, meta


@pytest.fixture(scope="module")
def cars_record():
    """The course's seven cars; 0.3 and 0.9 converge, 0.005 crawls, 1.5 diverges (2/λmax = 1)."""
    return make_record(COURSE_CARS_X, COURSE_CARS_Y, [0.005, 0.05, 0.3, 0.9, 1.5],
                       feature_names=["pounds (1000s)"], target_name="mpg",
                       title="Course cars: pounds → mpg")


@pytest.fixture(scope="module")
def two_feature_record():
    X, y = well_conditioned(1, n=64, d=2)
    return make_record(X, y, [0.05, 0.5, 1.5], feature_names=["a", "b"], target_name="y",
                       title="Synthetic: a, b → y")


@pytest.fixture(scope="module")
def all_diverged_record():
    return make_record(COURSE_CARS_X, COURSE_CARS_Y, [1.5, 3.0], feature_names=["pounds"],
                       target_name="mpg", title="Course cars, every run diverged")


def test_the_record_has_a_diverged_run_with_nan_losses(cars_record):
    history, _ = cars_record
    assert history["diverged"][-1].all() and np.isnan(history["losses"][-1]).any()
    assert (history["converged_step"][0] == -1).all()  # 0.005 crawls
    assert tuple(history["best_index"]) != (-1, -1)


def test_every_figure_is_drawn_and_saved_as_a_reproducible_png(cars_record, tmp_path):
    history, meta = cars_record
    drawn = figures.draw_all(history, meta)
    assert tuple(drawn) == figures.FIGURES
    for name, fig in drawn.items():
        path = figures.save_figure(fig, tmp_path / f"{name}.png", dpi=100)
        data = path.read_bytes()
        assert data[:8] == PNG_MAGIC, name
        assert len(data) > 10_000, name
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert width == round(fig.get_figwidth() * 100), name
        assert height == round(fig.get_figheight() * 100), name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.png" for n in drawn)
    # The same record drawn again gives the same bytes, and so does saving a figure again.
    for name, fig in figures.draw_all(history, meta).items():
        again = figures.save_figure(fig, tmp_path / "again.png").read_bytes()
        assert again == (tmp_path / f"{name}.png").read_bytes(), name
    surface = drawn["loss_surface"]  # 3-D axes: the layout moves after the first draw
    resaved = figures.save_figure(surface, tmp_path / "again.png").read_bytes()
    assert resaved == (tmp_path / "loss_surface.png").read_bytes()


def test_pngs_are_identical_across_processes(cars_record, tmp_path):
    history, meta = cars_record
    path = tmp_path / "curve.png"
    figures.save_figure(figures.draw("sweep_summary", history, meta), path)
    np.savez(tmp_path / "history.npz", **history)
    script = textwrap.dedent(f"""
        import json, sys, numpy as np
        from jaxgd import figures
        history = dict(np.load({str(tmp_path / "history.npz")!r}, allow_pickle=False))
        meta = json.loads(sys.argv[1])
        figures.save_figure(figures.draw("sweep_summary", history, meta), sys.argv[2])
    """)
    import json

    other = tmp_path / "other.png"
    # Arrays as lists (a stability limit is a 0-d array), as the results folder stores them.
    text = json.dumps(meta, default=lambda a: np.asarray(a).tolist())
    subprocess.run([sys.executable, "-c", script, text, str(other)], check=True)
    assert other.read_bytes() == path.read_bytes()


def test_save_is_atomic_and_leaves_no_temporary_files(cars_record, tmp_path):
    history, meta = cars_record
    fig = figures.draw("loss_curve", history, meta)
    target = tmp_path / "sub" / "loss.png"
    figures.save_figure(fig, target)
    figures.save_figure(fig, target)  # replaces the existing file
    assert [p.name for p in target.parent.iterdir()] == ["loss.png"]
    with pytest.raises(ValueError, match=r"\.png"):
        figures.save_figure(fig, tmp_path / "loss.pdf")


def test_the_surface_is_skipped_for_two_features(two_feature_record, tmp_path):
    history, meta = two_feature_record
    assert "2" in figures.skip_reason("loss_surface", history, meta)
    drawn = figures.draw_all(history, meta)
    assert "loss_surface" not in drawn
    assert set(drawn) == set(figures.FIGURES) - {"loss_surface"}
    with pytest.raises(ValueError, match="1 feature"):
        figures.draw("loss_surface", history, meta)
    # With two features the snapshots plot actual against predicted.
    ax = drawn["snapshots"].axes[0]
    assert ax.get_xlabel() == "predicted y" and ax.get_ylabel() == "actual y"
    for name, fig in drawn.items():
        assert figures.save_figure(fig, tmp_path / f"{name}.png").stat().st_size > 10_000


def test_every_run_diverged_draws_the_sweep_figures_only(all_diverged_record, tmp_path):
    history, meta = all_diverged_record
    assert tuple(history["best_index"]) == (-1, -1) and history["diverged"].all()
    drawn = figures.draw_all(history, meta)
    assert {"sweep_curves", "sweep_summary"} <= set(drawn)
    assert not {"loss_curve", "snapshots"} & set(drawn)
    for name, fig in drawn.items():
        assert figures.save_figure(fig, tmp_path / f"{name}.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match="diverged"):
        figures.draw("loss_curve", history, meta)


def test_a_single_run_has_no_sweep_figures(cars_record):
    history, meta = cars_record
    k, s = history["best_index"]
    single = dict(history)
    for key in ("losses", "final_loss", "converged_step", "diverged", "diverged_step",
                "snapshot_weight", "snapshot_bias", "snapshot_loss"):
        single[key] = history[key][k : k + 1, s : s + 1]
    single.update(learning_rates=history["learning_rates"][k : k + 1],
                  seeds=history["seeds"][s : s + 1], best_index=np.array([0, 0]))
    drawn = figures.draw_all(single, meta)
    assert set(drawn) == {"loss_curve", "snapshots", "loss_surface"}


def test_nan_and_inf_never_crash_nor_stretch_the_axes(cars_record):
    history, meta = dict(cars_record[0]), dict(cars_record[1])
    losses = history["losses"].copy()
    losses[0, 0, 5] = np.inf
    losses[1, 1, 7:] = np.nan
    history["losses"] = losses
    history["final_loss"] = np.where(np.arange(2) == 1, np.nan, history["final_loss"])
    meta.update(max_learning_rate=None, optimizer="adam")
    for log_scale in (True, False):
        drawn = figures.draw_all(history, meta, log_scale=log_scale)
        assert set(drawn) == set(figures.FIGURES)
        for fig in drawn.values():
            fig.canvas.draw()  # renders without raising
            for ax in fig.axes:
                assert np.isfinite(ax.get_ylim()).all() and np.isfinite(ax.get_xlim()).all()
        top = drawn["sweep_curves"].axes[0].get_ylim()[1]
        assert top < 1e4 * np.nanmax(history["losses"][..., 0])


def test_the_loss_curve_marks_convergence_and_the_optimum(cars_record):
    history, meta = cars_record
    fig = figures.draw("loss_curve", history, meta)
    ax = fig.axes[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    k, s = history["best_index"]
    assert any(f"converged at step {history['converged_step'][k, s]}" in t for t in labels)
    assert any("least-squares optimum" in t for t in labels)
    assert ax.get_yscale() == "log"
    assert "η = " in ax.get_title()
    assert figures.draw("loss_curve", history, meta, log_scale=False).axes[0].get_yscale() \
        == "linear"


def test_snapshot_panels_are_titled_by_step_and_mse(cars_record):
    history, meta = cars_record
    fig = figures.draw("snapshots", history, meta)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert [t.split(" — ")[0] for t in titles] == [f"step {s}" for s in SNAPSHOTS]
    assert all(" — MSE " in t for t in titles)
    assert fig.axes[0].get_xlabel() == "pounds (1000s)"
    # MSE falls from beginning to end, as in the course's three pictures.
    k, s = history["best_index"]
    assert np.all(np.diff(history["snapshot_loss"][k, s]) <= 1e-9)


def test_the_surface_grid_covers_the_path_and_the_optimum(cars_record):
    history, meta = cars_record
    fig = figures.draw("loss_surface", history, meta)
    contour = fig.axes[1]
    (w_lo, w_hi), (b_lo, b_hi) = contour.get_xlim(), contour.get_ylim()
    for w, b in [*zip(history["path_weight"][:, 0], history["path_bias"], strict=True),
                 (history["optimum_weight"][0], history["optimum_bias"])]:
        assert w_lo < w < w_hi and b_lo < b < b_hi


def test_the_closed_form_surface_matches_the_mse():
    from jaxgd.figures.loss_surface import Moments

    rng = np.random.default_rng(0)
    x, y = rng.normal(3000, 800, 50), rng.normal(23, 7, 50)
    w, b = rng.normal(0, 0.01, 7), rng.normal(40, 5, 7)
    direct = np.mean((np.outer(w, x) + b[:, None] - y) ** 2, axis=1)
    np.testing.assert_allclose(Moments(x, y).mse(w, b), direct, rtol=1e-9)


def test_unknown_figure_names_are_refused(cars_record):
    history, meta = cars_record
    with pytest.raises(ValueError, match="loss_curve, snapshots"):
        figures.draw("histogram", history, meta)
    with pytest.raises(ValueError, match="unknown figure"):
        figures.draw_all(history, meta, which=["loss_curve", "nope"])


def test_drawing_touches_no_global_matplotlib_state(cars_record):
    import matplotlib

    history, meta = cars_record
    before = dict(matplotlib.rcParams)
    figures.draw_all(history, meta)
    assert dict(matplotlib.rcParams) == before


def test_without_matplotlib_the_import_error_says_what_to_install():
    script = textwrap.dedent("""
        import sys
        sys.modules["matplotlib"] = None
        import jaxgd                      # the core never needs matplotlib
        try:
            import jaxgd.figures
        except ImportError as error:
            print(error)
        else:
            raise SystemExit("no ImportError")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == 'install the plot extra: pip install "jaxgd[plot]"'


def test_the_core_package_does_not_import_matplotlib():
    script = "import sys, jaxgd; print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"


def test_a_dollar_in_the_title_is_shown_not_read_as_mathtext():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from jaxgd.figures import base

    fig = plt.figure()
    base.suptitle(fig, {"title": "Price in $ per $x$"})
    fig.canvas.draw()  # mathtext with an odd number of "$" would raise here
    assert fig._suptitle.get_text() == r"Price in \$ per \$x\$"
    plt.close(fig)
