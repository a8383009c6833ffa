"""The ``jaxgd`` command: ``run`` a config, ``plot`` a results folder again, ``lr-range`` (the
learning-rate range test, ``jaxgd.cli.lr_range``), ``info``, ``bench``.

Exit status: 0 on success, 2 on a usage or config error (a message on stderr, no traceback,
no output folder), 1 on an unexpected failure, 130 when interrupted with Ctrl-C, 143 when
stopped by SIGTERM. A stopped run keeps its finished chunks: ``jaxgd run ... --resume``
finishes it (see ``jaxgd.cli.checkpoint``).

The only path a run writes to is ``--out`` (default ``runs/CONFIG_NAME``); a config names
no output paths, and the figures' file names come from a fixed list.

The command line is built on the library and never the other way round: ``config`` reads and
checks a TOML config, ``settings`` turns it into the library's keyword arguments (and the
library's refusals back into config keys), ``plan`` loads the data and plans the chunks
(``data``, ``chunking``), ``execute`` runs them through the public API and rebuilds the
whole run's ``GridResult``, ``record`` gathers history.npz and summary.json (the library's
``jaxgd.results.saving.encode`` adds the result, so ``jaxgd.load`` opens the folder),
``results`` writes the results folder, ``lock`` keeps a second run off the same folder,
``checkpoint`` saves each chunk for ``--resume``, ``interrupt`` handles Ctrl-C and SIGTERM,
``timing`` and ``environment`` say how long and on what. ``jaxgd bench`` loads the benchmark harness
(``jaxgd._bench``) only when it runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import traceback
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from jaxgd.cli import compile_cache, lr_range, results
from jaxgd.cli import config as config_module
from jaxgd.cli.chunking import CHUNK_RUNS
from jaxgd.cli.config import Config, ConfigError
from jaxgd.cli.interrupt import Stopped, check, interruptible, stop_signals
from jaxgd.cli.shipped import DEFAULT_CONFIG, load_config, shipped_configs
from jaxgd.core import progress
from jaxgd.pipeline import sharding

__all__ = ["build_parser", "load_config", "main", "shipped_configs"]

TABLE_ROWS = 20  # a sweep of thousands prints its best rows and says where the rest are
#: Runs × steps from which a run on a terminal shows a progress bar: about a second or more
#: of descent on a CPU core; shorter runs are over before a bar would say anything.
PROGRESS_WORK = 10**8


def _saved_run(args: argparse.Namespace, config: Config, out_dir: Path,
               inputs: Sequence[Path]):
    """For ``--resume``: the stopped run in ``out_dir`` and its chunk size, after checking
    that this command may finish it; otherwise (None, ``--chunk-size``)."""
    from jaxgd.cli import checkpoint

    if not args.resume:
        results.check_destination(out_dir, args.overwrite, inputs)  # before minutes of work
        return None, args.chunk_size
    results.check_inputs(out_dir, inputs)
    saved = checkpoint.Checkpoint.open(out_dir)
    if config.train.pruning and saved.num_chunks > 1:  # by an older jaxgd (see chunking)
        raise checkpoint.ResumeError(
            f"{out_dir} was started in {saved.num_chunks} chunks, but successive halving "
            "(train.pruning) ranks the whole sweep at once and runs as one chunk: chunks "
            "ranked apart cannot be finished; pass --overwrite instead of --resume to start "
            "again")
    if args.chunk_size is not None:
        asked = min(args.chunk_size, config.num_rates)  # as plan.prepare does
        if asked != saved.chunk_size:
            raise checkpoint.ResumeError(
                f"{out_dir} was started with --chunk-size {saved.chunk_size}, not {asked}: "
                "resume without --chunk-size, or with the same size")
    if saved.manifest.get("replaces"):
        foreign = results.foreign_entries(out_dir)
        if foreign is not None:
            raise checkpoint.ResumeError(
                f"{out_dir} is no longer a folder jaxgd wrote ({foreign}): move those files "
                "away, then resume")
    elif not results.is_unfinished(out_dir):
        others = sorted(p.name for p in out_dir.iterdir() if p.name != results.PARTIAL)
        raise checkpoint.ResumeError(
            f"{out_dir} holds other files beside the unfinished run ({', '.join(others)}): "
            "move them away, then resume")
    return saved, saved.chunk_size


def _inputs(args: argparse.Namespace, config: Config) -> list[Path]:
    """The files a run reads: its config file (unless shipped) and its data file."""
    paths = [Path(args.config)] if args.config and Path(args.config).is_file() else []
    return paths + ([Path(config.data.path)] if config.data.path is not None else [])


def command_run(args: argparse.Namespace) -> int:
    from jaxgd.cli import lock

    config, stem = load_config(args.config, args.set)
    if args.out is not None and not args.out.strip():
        raise ConfigError("--out is empty: give a folder, or leave --out out for "
                          f"runs/{stem}")
    out_dir = Path(args.out) if args.out else Path("runs") / stem
    results.check_path(out_dir)
    inputs = _inputs(args, config)
    if not args.resume:
        results.check_destination(out_dir, args.overwrite, inputs)  # before taking the lock
    results.check_writable(out_dir)
    with lock.locked(out_dir) as held:  # one run at a time writes out_dir
        for name in results.sweep_staging(out_dir):
            print(f"jaxgd: removed {out_dir.parent / name}, left by a stopped run",
                  file=sys.stderr)
        return _run_locked(args, config, out_dir, inputs, held.release)


def _run_locked(args: argparse.Namespace, config: Config, out_dir: Path,
                inputs: Sequence[Path], release) -> int:
    from jaxgd.cli import checkpoint, execute

    saved, chunk_size = _saved_run(args, config, out_dir, inputs)
    # Loading and parsing the data can take minutes: in the helper thread, like the chunks.
    plan, fingerprint = interruptible(lambda: _prepared(config, chunk_size),
                                      before_exit=release)
    check()
    if saved is not None:
        saved.check(fingerprint)
        for name in saved.remove_temporary():
            print(f"jaxgd: removed {name}, left half-written by the stopped run",
                  file=sys.stderr)
        for index in saved.done():  # before minutes of work: each saved chunk is whole
            execute.check_chunk(plan, index, saved.load(index),
                                str(saved.folder / checkpoint.chunk_name(index)))
    else:
        saved = checkpoint.Checkpoint.start(out_dir, fingerprint, replaces=args.overwrite)
    if not args.quiet:
        for warning in plan.warnings:
            print(f"jaxgd: warning: {warning}", file=sys.stderr)
    todo = saved.missing()
    if args.resume and not args.quiet:
        print(f"jaxgd: resuming {out_dir}: {plan.num_chunks - len(todo)} of {plan.num_chunks}"
              " chunks were done", file=sys.stderr)
    steps = plan.num_steps
    bar = progress.ProgressBar(steps * max(len(todo), 1),
                               enabled=_shows_progress(args, plan, len(todo)))

    def work() -> execute.RunRecord:
        for position, index in enumerate(todo):
            base = position * steps
            report = (lambda done, base=base: bar(base + min(done, steps))) if (
                bar.enabled) else None
            saved.save(index, execute.run_chunk(plan, index, report))
        return execute.assemble(plan, [saved.load(i) for i in range(plan.num_chunks)],
                                [str(saved.folder / checkpoint.chunk_name(i))
                                 for i in range(plan.num_chunks)])

    stopped_message = partial(_kept, plan, saved, out_dir)

    try:
        record = interruptible(work, stopped_message, before_exit=release)
    finally:
        bar.close()
    overwrite = args.overwrite or bool(saved.manifest.get("replaces"))
    try:  # on the main thread, checking for a signal between files and before the commit
        with results.staging(out_dir, overwrite, replace_partial=True,
                             inputs=inputs) as folder:
            check()
            results.write_folder(folder, record.history, record.summary)
            check()
            results.write_losses_csv(folder, record.history)
            check()
            figure_names = _draw(folder, record.history, record.meta, config)
            check()  # the last moment: after the commit, the run is done
    except KeyboardInterrupt as error:  # while writing: the chunks are all saved
        status = error.status if isinstance(error, Stopped) else 130
        print(f"jaxgd: {'stopped' if status != 130 else 'interrupted'} while writing the "
              f"results; {stopped_message()}", file=sys.stderr)
        return status
    except OSError as error:  # a full disk, a folder made read-only meanwhile
        raise ConfigError(f"cannot write the results to {out_dir}: "
                          f"{error.strerror or error}; {stopped_message()}") from None
    if not args.quiet:
        _print_table(record.summary)
        print(f"results: {out_dir}")
        for name in figure_names:
            print(f"figure: {out_dir / name}")
    return 0


def _shows_progress(args: argparse.Namespace, plan, chunks: int) -> bool:
    """A progress bar with ``--progress``; on a terminal, only for a run long enough to
    watch. Its reports are host callbacks compiled into the program, and JAX keeps no
    program with a callback in its persistent cache (``jaxgd.cli.compile_cache``): a short
    run without a bar loads its programs on the next run instead of compiling them."""
    if args.progress:
        return True
    if args.quiet or not sys.stderr.isatty():
        return False
    runs = plan.chunk_size * math.prod(len(v) for v in plan.grid.values()) * len(plan.seeds)
    return chunks * runs * plan.num_steps >= PROGRESS_WORK


def _kept(plan, saved, out_dir: Path) -> str:
    """What a stopped run kept: its saved chunks and how to finish them, or nothing."""
    done = len(saved.done())
    if not done and plan.config.train.pruning:  # one chunk: see jaxgd.cli.chunking
        return ("nothing was written: successive halving (train.pruning) ranks the whole "
                "sweep at once, so it runs as one chunk and keeps nothing until that ends; "
                "run the same command again (without --resume)")
    if not done:
        return "nothing was written"
    return (f"{done} of {plan.num_chunks} chunks are saved in {out_dir}: run the same "
            "command with --resume to finish")


def _prepared(config: Config, chunk_size: int | None):
    """The run's plan and its fingerprint (which hashes the data)."""
    from jaxgd.cli import plan as plans

    plan = plans.prepare(config, chunk_size)
    return plan, plan.fingerprint()


def command_plot(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    try:
        history, summary = results.read(run_dir)
    except (FileNotFoundError, results.ResultsError) as error:
        raise ConfigError(str(error)) from None
    where = f"{run_dir / results.SUMMARY}"
    try:
        config = config_module.from_dict(summary["config"], source=where)
        meta = _meta(summary)
    except KeyError as error:
        raise ConfigError(f"{where} is not a jaxgd summary: it has no {error}") from None
    except (TypeError, AttributeError) as error:
        raise ConfigError(f"{where} is not a jaxgd summary: {error}") from None
    if not _has_matplotlib():
        raise ConfigError('jaxgd plot needs matplotlib: pip install "jaxgd[plot]"')
    try:
        names = _draw(run_dir, history, meta, config)
    except (KeyError, ValueError, IndexError) as error:
        raise ConfigError(f"cannot draw the figures of {run_dir}: its history.npz does not "
                          f"fit its summary.json ({type(error).__name__}: {error})") from None
    except OSError as error:  # a read-only folder, a full disk
        raise ConfigError(f"cannot write the figures to {run_dir}: "
                          f"{error.strerror or error}") from None
    for name in names:
        print(f"figure: {run_dir / name}")
    return 0


def command_info(_: argparse.Namespace) -> int:
    from jaxgd.cli.environment import device_info, versions

    for name, version in versions().items():
        print(f"{name:8} {version}")
    device = device_info()
    print(f"backend  {device['backend']} ({device['device_kind']})")
    print(f"devices  {', '.join(device['devices'])}")
    print(f"cache    {compile_cache.describe(compile_cache.enable())}")
    return 0


def command_bench(args: argparse.Namespace) -> int:
    if args.out is not None:  # before minutes of measuring, not after
        out = Path(args.out)
        if not args.out.strip():
            raise ConfigError("--out '' must be a folder (it is empty)")
        results.check_path(out)  # before looking at it: its name may not fit
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {args.out!r} must be a folder (it is a file)")
        results.check_out(out, args.overwrite)  # the rules of jaxgd run --out
    # The harness and its heavy baselines (torch, scikit-learn) load only when it runs.
    from jaxgd import _bench

    return _bench.main(args)


def _meta(summary: dict) -> dict:
    from jaxgd.cli.plan import drawn_limit_label

    data = summary["data"]
    config = summary["config"]
    return {
        "title": config.get("title") or f"{data['dataset']}: {', '.join(data['features'])}"
                                         f" → {data['target']}",
        "feature_names": data["features"],
        "target_name": data["target"],
        "max_learning_rate": summary["stability"]["max_learning_rate"]
        if config["optimizer"]["name"] == summary["stability"].get("optimizer", "sgd")
        else None,
        # per_fold: a k-fold run's limits, of which the smallest is the one drawn
        "limit_label": drawn_limit_label(summary["stability"].get("limit", "2/λmax"),
                                         len(summary["stability"].get("per_fold") or ())),
        "optimizer": config["optimizer"]["name"],
    }


def _has_matplotlib() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def _draw(folder: Path, history, meta, config: Config) -> list[str]:
    if not config.output.figures:
        return []
    if not _has_matplotlib():
        print('jaxgd: figures skipped: they need matplotlib (pip install "jaxgd[plot]"); '
              "the results are saved, and `jaxgd plot` draws them later", file=sys.stderr)
        return []
    from jaxgd import figures

    unknown = [name for name in config.output.figures if name not in figures.FIGURES]
    if unknown:  # the config refuses these too; file names come only from the fixed list
        raise ConfigError(f"unknown figures {unknown}: choose from {', '.join(figures.FIGURES)}")
    drawn = figures.draw_all(history, meta, config.output.figures,
                             log_scale=config.output.log_scale)
    view = figures.base.runs_view(history)
    for name in config.output.figures:
        if name not in drawn:  # asked for, but it does not apply to this run: say why
            print(f"jaxgd: figure {name} not drawn: "
                  f"{figures.skip_reason(name, view, meta)}", file=sys.stderr)
    names = []
    for name, figure in drawn.items():
        figures.save_figure(figure, Path(folder) / f"{name}.png", config.output.dpi)
        names.append(f"{name}.png")
    return names


def _print_table(summary: dict) -> None:
    runs = summary["runs"]
    drawn = [name for name in summary.get("sample", {}).get("values", {})
             if name != "learning_rate"]  # drawn with the learning rate (optimizer.sample)
    axes = drawn + [axis for axis in summary.get("grid", {}).get("axes", ["learning_rate",
                                                                          "seed"])
                    if axis not in ("learning_rate", "seed")]
    seeds = len({run["seed"] for run in runs}) > 1
    held = summary.get("validation") is not None
    ranked = "final_validation_loss" if held else "final_loss"
    shown = runs
    if len(runs) > TABLE_ROWS:
        order = sorted(runs, key=lambda r: (r["diverged"], r[ranked] is None,
                                            r[ranked] or 0.0))
        shown = order[:TABLE_ROWS]
    widths = {axis: max(len(axis) + 2, 10) for axis in axes}
    header = f"{'learning rate':>14}" + "".join(f"{axis:>{widths[axis]}}" for axis in axes) + (
        f"{'seed':>6}" if seeds else "")
    extra = f"{'val loss':>14}{'val RMSE':>12}" if held else ""
    print(f"{header}{'final loss':>14}{extra}{'converged at':>14}{'diverged':>10}")
    for run in shown:
        loss = _number(run["final_loss"])
        if held:
            loss += _number(run["final_validation_loss"]) + _number(run["validation_rmse"], 12)
        step = run["converged_step"] if run["converged_step"] >= 0 else (
            "stalled" if run.get("stalled") else "-")
        if run.get("pruned_step", -1) >= 0:  # stopped by successive halving
            step = f"pruned {run['pruned_step']}"
        seed = f"{run['seed']:>6}" if seeds else ""
        others = "".join(f"{run[axis]:>{widths[axis]}.4g}" for axis in axes)
        print(f"{run['learning_rate']:>14.4g}{others}{seed}{loss}{step!s:>14}"
              f"{'yes' if run['diverged'] else 'no':>10}")
    if len(runs) > len(shown):
        print(f"... the {len(shown)} best of {len(runs)} runs; all are in summary.json")
    _print_explanations(runs)
    best = summary["best_run"]
    optimum = summary["least_squares"]
    if best is None:
        print("every run diverged: no best run (try smaller learning rates)")
        return
    if isinstance(optimum, list):  # one optimum per l2 of the grid: the best run's
        optimum = next((o for o in optimum if o["l2"] == best.get("l2")), optimum[0])
    terms = " ".join(f"{w:+.6g}·[{name}]" for name, w in best["weight"].items())
    where = "".join(f", {axis} {best[axis]:.4g}" for axis in axes if axis != "fold")
    print(f"best run: learning rate {best['learning_rate']:.4g}{where}: "
          f"{summary['data']['target']} ≈ {terms} {best['bias']:+.6g}")
    ridge = bool(optimum.get("l2"))
    print(f"          {'MSE + l2·‖w‖²' if ridge else 'MSE'} {best['final_loss']:.6g}; "
          f"{'ridge optimum' if ridge else 'least squares'} {optimum['loss']:.6g} "
          f"(gap {best['gap_to_optimum']:.3g}); "
          f"{summary['stability'].get('limit', '2/λmax')} = "
          f"{summary['stability']['max_learning_rate']:.4g}{_limit_rows(summary)}")
    if held:
        _print_held_out(best, summary["validation"])
    if summary.get("refined"):
        _print_refined(summary["refined"])
    if summary.get("sharpness"):
        _print_sharpness(summary["sharpness"], best)
    training = summary.get("training", {})
    if "run_steps_executed" in training:
        executed, scheduled = training["run_steps_executed"], training["run_steps_scheduled"]
        print(f"run-steps: {executed:,} executed of {scheduled:,} scheduled "
              f"({executed / max(scheduled, 1):.1%})")
    timing = summary["timing_seconds"]
    print(f"time: {timing['total']:.2f} s ({timing['compile']:.2f} s compiling)")


def _number(value, width: int = 14) -> str:
    return f"{'inf/nan' if value is None else f'{value:.6g}':>{width}}"


def _print_sharpness(block: dict, best: dict) -> None:
    """How many runs' sharpness reached Adam's threshold (``optimizer.track_sharpness``)."""
    threshold = " (of each run's b1)" if block["threshold"] is None else (
        f" = {block['threshold']:.4g}")
    peak = best.get("max_sharpness")
    print(f"sharpness: {block['runs_reaching_threshold']} of {block['runs']} runs reached "
          f"Adam's threshold 2(1+b1)/(1−b1){threshold}; the best run's largest: "
          f"{'inf/nan' if peak is None else f'{peak:.4g}'}")


def _print_refined(refined: dict) -> None:
    """One line per refined point (``optimizer.refine``), and whether one beats the sweep's
    best run (which stays the best run: the one whose path and figures were recorded)."""
    objective = refined["objective"]
    if not refined["points"]:
        print(refined.get("note", "not refined"))
        return
    print(f"refined ({objective}, {refined['settings']['steps']} steps from the sweep's "
          f"{len(refined['points'])} best runs, {refined['seconds']:.2f} s):")
    for row in refined["points"]:
        start, end = row["start"], row["end"]
        moved = ", ".join(f"{name} {start[name]:.4g} → {end[name]:.4g}"
                          for name in refined["moved"])
        print(f"  {moved}, seed {start['seed']}: {objective} "
              f"{row['objective_before']:.6g} → {row['objective_after']:.6g} "
              f"({row['steps_accepted']} of {row['steps']} steps taken)")
    if refined.get("beats_sweep"):
        print(f"  a refined point beats the sweep's best run: {objective} "
              f"{refined['refined_best_objective']:.6g} < {refined['sweep_best_objective']:.6g}"
              " (summary.json's best_run stays the sweep's)")
    else:
        print(f"  no refined point beats the sweep's best run ({objective} "
              f"{refined['sweep_best_objective']:.6g})")


def _limit_rows(summary: dict) -> str:
    """Which rows the printed limit is of, when the runs do not train on all of them."""
    stability = summary["stability"]
    if stability.get("rows") != "training":
        return ""
    folds = stability.get("per_fold")
    return (f" (the smallest of the {len(folds)} folds' training rows: fold "
            f"{stability['fold']}'s)" if folds else " (of the training rows)")


def _print_held_out(best: dict, validation: dict) -> None:
    """The best run's held-out errors: it was picked by its held-out loss."""
    mean = "mean_" if validation.get("k_folds") else ""
    over = f" (mean over {validation['k_folds']} folds)" if mean else ""
    value = lambda name: _number(best.get(f"{mean}{name}"), 0)  # noqa: E731
    print(f"          selected by validation loss{over}: MSE {value('final_validation_loss')}, "
          f"RMSE {value('validation_rmse')}, MAE {value('validation_mae')}; training RMSE "
          f"{value('training_rmse')}, MAE {value('training_mae')}")
EXPLAINED_ROWS = 5  # diverged runs explained in the printout; summary.json explains all


def _print_explanations(runs: Sequence[dict]) -> None:
    fell = [run for run in runs if run.get("explanation")]
    for run in fell[:EXPLAINED_ROWS]:
        print(f"  {run['explanation']}")
    if len(fell) > EXPLAINED_ROWS:
        print(f"  ... and {len(fell) - EXPLAINED_ROWS} more diverged runs, each explained in "
              "summary.json")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxgd", description="Linear regression by gradient descent in JAX.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a config and write a results folder",
                              description="Run what a TOML config describes (one fit or a "
                                          "sweep) and write a results folder.")
    run.add_argument("config", nargs="?", metavar="CONFIG",
                     help="a TOML file, or the name of a shipped config "
                          f"(default: {DEFAULT_CONFIG})")
    run.add_argument("--out", metavar="DIR", help="results folder (default: runs/CONFIG_NAME)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key, e.g. --set train.num_steps=500 (repeatable)")
    run.add_argument("--quiet", action="store_true", help="print nothing but errors")
    run.add_argument("--progress", action="store_true",
                     help="show the progress bar even when stderr is not a terminal")
    again = run.add_mutually_exclusive_group()
    again.add_argument("--overwrite", action="store_true",
                       help="replace an existing results folder (or start an unfinished run "
                            "again)")
    again.add_argument("--resume", action="store_true",
                       help="finish a stopped run in --out: only its missing chunks run, and "
                            "the results equal those of an uninterrupted run")
    run.add_argument("--chunk-size", type=lr_range.whole_number_at_least(1), metavar="N",
                     help="learning rates per chunk (each with every point of the rest "
                          "of the grid), each chunk saved as soon as it is done (default: "
                          f"all, or about {CHUNK_RUNS} runs' worth when the grid is larger; "
                          "always all with train.pruning, which ranks the whole sweep)")
    run.set_defaults(handler=command_run)

    plot = commands.add_parser("plot", help="redraw the figures of a results folder",
                               description="Redraw every figure from a saved results folder, "
                                           "without training again.")
    plot.add_argument("run_dir", metavar="RUN_DIR")
    plot.set_defaults(handler=command_plot)

    lr_range.add_parser(commands)

    info = commands.add_parser("info", help="versions, backend and devices",
                               description="Print jaxgd, JAX, jaxlib and optax versions, the "
                                           "backend and its devices.")
    info.set_defaults(handler=command_info)

    bench = commands.add_parser(
        "bench", help="time jaxgd against NumPy, PyTorch, plain JAX and scikit-learn",
        description="Benchmark jaxgd's sweeps against the same gradient descent written in "
                    "NumPy, PyTorch, plain JAX and scikit-learn, and against this machine's "
                    "measured limits, and the fixed costs around the compute (first calls, "
                    "compiles, imports) in fresh processes. Quick (~5 min on 2 cores) unless "
                    "--full (~20 min).")
    bench.add_argument("--full", action="store_true",
                       help="more repeats, larger scaling curves, fewer extrapolations")
    bench.add_argument("--out", metavar="DIR",
                       help="also write bench.json, report.md and scaling.png to this "
                            "results folder")
    bench.add_argument("--overwrite", action="store_true",
                       help="replace an existing results folder that jaxgd wrote")
    bench.set_defaults(handler=command_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jaxgd`` console script and ``python -m jaxgd``."""
    args = build_parser().parse_args(argv)
    sharding.use_every_core()  # before the first computation, or it changes nothing
    if args.handler in (command_run, lr_range.command):  # not bench: it times compiles
        compile_cache.enable()
    try:
        # Polled where the work runs in a helper thread (interruptible): a signal handler
        # that raised could not reach a main thread held by a compiled loop.
        with stop_signals(polled=args.handler in (command_run, lr_range.command)):
            return args.handler(args)
    except (ConfigError, results.ResultsExistError, results.DestinationError) as error:
        print(f"jaxgd: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:
        status = error.status if isinstance(error, Stopped) else 130
        print(f"jaxgd: {'stopped' if status != 130 else 'interrupted'}; nothing was written",
              file=sys.stderr)
        return status
    except Exception:  # an unexpected failure: keep the traceback for the bug report
        traceback.print_exc()
        return 1
