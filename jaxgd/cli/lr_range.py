"""``jaxgd lr-range CONFIG``: the learning-rate range test (``jaxgd.lr_range``) on a config's
data, optimizer and settings.

The config's own learning rates are replaced by the test's candidates; everything else
(data, scaling, optimizer and its hyperparameters, schedule, steps, mini-batches, engine)
is the config's. A grid over other hyperparameters (``optimizer.grid``) is tested at its
first point, a seed list at its first seed: the range test is about the learning rate.
Mini-batch configs sweep their mini-batch runs, so the range is empirical; the full-batch
limit is printed beside it for reference. With ``data.validation_fraction`` the test trains
on the split's training rows, as ``jaxgd run`` does, so its limit is the run's; it refuses
``data.k_folds``, whose k folds train on k sets of rows, each with its own limit. With
``--out DIR`` the findings go to a results folder (lr_range.json, lr_range.png), written as
``jaxgd run`` writes: atomically, under the folder's lock, replacing only a folder jaxgd
wrote and only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from jaxgd.cli import results
from jaxgd.cli.config import Config, ConfigError
from jaxgd.cli.interrupt import check, interruptible
from jaxgd.cli.shipped import load_config

JSON = "lr_range.json"
FIGURE = "lr_range.png"


def command(args: argparse.Namespace) -> int:
    """Runs the range test; prints its table; writes ``--out`` when given."""
    from jaxgd.cli import lock

    config, stem = load_config(args.config, args.set)
    out_dir = None
    if args.out is not None:
        if not args.out.strip():
            raise ConfigError("--out is empty: give a folder, or leave --out out")
        out_dir = Path(args.out)
        results.check_path(out_dir)
        results.check_destination(out_dir, args.overwrite, _inputs(args, config))
        results.check_writable(out_dir)
    # The sweep is one compiled loop, which holds its thread until it ends: in a helper
    # thread, as jaxgd run's chunks, so that Ctrl-C or SIGTERM ends the command at once.
    found, fixed, rows, warnings = interruptible(
        lambda: _run(config, args.num_rates, args.target))
    check()
    if not args.quiet:  # as jaxgd run says them, in the config's words
        for warning in warnings:
            print(f"jaxgd: warning: {warning}", file=sys.stderr)
    record = {**_record(found, fixed, config, stem), **rows}
    if out_dir is not None:
        with lock.locked(out_dir), results.staging(out_dir, args.overwrite,
                                                   inputs=_inputs(args, config)) as folder:
            check()  # between the files, as jaxgd run: nothing is kept after a signal
            results.write_atomic(folder / JSON, results.to_json(record).encode())
            check()
            _figure(folder, record, config)
            check()  # the last moment: after the commit, the folder is written
    if not args.quiet:
        _print(record, found)
        if out_dir is not None:
            print(f"results: {out_dir}")
    return 0


def _inputs(args: argparse.Namespace, config: Config) -> list[Path]:
    paths = [Path(args.config)] if args.config and Path(args.config).is_file() else []
    return paths + ([Path(config.data.path)] if config.data.path is not None else [])


def _run(config: Config, num_rates: int, target: float):
    """The config's data and settings, its grid at the first point, through lr_range."""
    from jaxgd import lr_range
    from jaxgd.api.settings import group
    from jaxgd.cli.plan import prepare
    from jaxgd.cli.settings import api_arguments, conditioning_said, reworded

    if config.data.k_folds is not None:
        raise ConfigError("lr-range: data.k_folds trains each fold on other rows, each with "
                          "its own limit, and the range test trains one set of rows: leave "
                          "data.k_folds out, or give data.validation_fraction to test on a "
                          "split's training rows")
    plan = prepare(config)
    _check_memory(config, plan, num_rates)
    options = api_arguments(config, plan.num_steps, "lr_range")
    fixed = {name: values[0] for name, values in plan.grid.items()}
    options["hyperparameters"].update(
        {k: v for k, v in fixed.items() if k not in ("l2", "batch_seed")})
    if "l2" in fixed:
        options["l2"] = fixed["l2"]
    if "batch_seed" in fixed:
        options["batch_seed"] = fixed["batch_seed"]
    # The rows jaxgd run would train on: held-out rows are not trained on, and their
    # curvature is not the runs'.
    X, y = plan.split()[0] if plan.held_out else plan.train_data
    try:
        with conditioning_said():  # the plan's warnings say it, not the library's copies
            found = lr_range(X, y, seed=plan.seeds[0], num_rates=num_rates, target=target,
                             **group(options))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"lr-range: {reworded(error)}") from None
    rows = {"training_rows": int(X.shape[0]), "rows": plan.n_rows} if plan.held_out else {}
    return found, {**fixed, "seed": plan.seeds[0]}, rows, plan.warnings


def _check_memory(config: Config, plan, num_rates: int) -> None:
    """Refuses candidates whose runs would not fit in this machine's memory, before one is
    built: ``prepare`` counts the config's own learning rates, and the test runs
    ``--num-rates`` others (10⁹ of them used to die in np.geomspace, 2000 × 10⁶ steps
    allocating 7.46 GiB). The same stages as ``jaxgd run``'s, one run per candidate (the
    grid's first point, the first seed) and all of them one sweep."""
    import dataclasses

    from jaxgd import LrRange
    from jaxgd.cli.data import check_stages
    from jaxgd.cli.plan import memory_stages

    runs = num_rates + len(LrRange.BRACKET) + 1  # and the limit's neighbours and the fastest rate
    # Its one figure draws a point per candidate, not every run's curve as jaxgd run's do.
    drawn = dataclasses.replace(config, output=dataclasses.replace(config.output, figures=()))
    check_stages(memory_stages(drawn, plan.n_rows, len(plan.dataset.feature_names),
                               plan.num_steps, runs, runs, plan.streamed,
                               f"--num-rates {num_rates} learning rates (and up to "
                               f"{runs - num_rates} near the limit) × {plan.num_steps} steps"))


def _record(found, fixed: dict[str, Any], config: Config, stem: str) -> dict[str, Any]:
    return {"config": stem, "title": config.title, "optimizer": config.optimizer.name,
            "fixed": fixed, **found.summary()}


def _figure(folder: Path, record: dict[str, Any], config: Config) -> None:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        print('jaxgd: figure skipped: it needs matplotlib (pip install "jaxgd[plot]")',
              file=sys.stderr)
        return
    from jaxgd.figures import lr_range as figure
    from jaxgd.figures import save_figure

    save_figure(figure.draw(record, title=record["title"] or record["config"]),
                folder / FIGURE, config.output.dpi)


def _print(record: dict[str, Any], found) -> None:
    marks = {"max_stable": "max stable", "fastest": "fastest", "suggested": "suggested"}
    print(f"{'learning rate':>14}{'final loss':>14}{'gap/initial':>13}{'steps to target':>17}"
          f"{'diverged':>10}")
    edge = record["max_stable"] if record["exact"] else None
    for row in record["candidates"]:
        if edge is not None and row["learning_rate"] > edge:  # the theory's limit, in place
            print(f"{'-' * 14} max stable {edge:.4g} ({record['limit_name']}, exact)")
            edge = None
        loss = "inf/nan" if row["final_loss"] is None else f"{row['final_loss']:.6g}"
        gap = "-" if row["relative_gap"] is None else f"{row['relative_gap']:.3g}"
        steps = row["steps_to_target"] if row["steps_to_target"] >= 0 else "-"
        notes = [label for key, label in marks.items() if record[key] == row["learning_rate"]]
        print(f"{row['learning_rate']:>14.4g}{loss:>14}{gap:>13}{steps!s:>17}"
              f"{'yes' if row['diverged'] else 'no':>10}"
              f"{'  ← ' + ', '.join(notes) if notes else ''}")
    fixed = ", ".join(f"{k} = {v:g}" for k, v in record["fixed"].items())
    print(f"optimizer {record['optimizer']} ({fixed})")
    if "training_rows" in record:
        print(f"trained on the {record['training_rows']} training rows of {record['rows']} "
              "(data.validation_fraction: the held-out rows are not trained on)")
    print(found.describe())
    if not found.exact and record["limit"] is not None:
        print(f"full-batch limit {record['limit_name']} = {record['limit']:.4g} (for "
              "reference: this run's schedule or mini-batches make the range empirical)")


def add_parser(commands) -> None:
    """The ``lr-range`` subcommand, on ``jaxgd``'s subparsers."""
    parser = commands.add_parser(
        "lr-range", help="find the usable learning rates of a config, all at once",
        description="The learning-rate range test: every candidate rate as one sweep on the "
                    "config's data and settings; the largest stable rate, the fastest and "
                    "a suggested one (exact for sgd, momentum and nesterov).")
    parser.add_argument("config", nargs="?", metavar="CONFIG",
                        help="a TOML file, or the name of a shipped config")
    parser.add_argument("--out", metavar="DIR",
                        help="also write lr_range.json and lr_range.png to this folder")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set train.num_steps=500")
    parser.add_argument("--num-rates", type=whole_number_at_least(2), default=25, metavar="N",
                        help="log-spaced candidate rates (default 25, plus the limit's "
                             "neighbours when it is known)")
    parser.add_argument("--target", type=float, default=1e-3, metavar="GAP",
                        help="suggested: the rate first reaching this fraction of its "
                             "initial gap to the optimum (default 0.001)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing results folder that jaxgd wrote")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.set_defaults(handler=command)


def whole_number_at_least(minimum: int):
    """An argparse ``type``: a whole number of at least ``minimum`` (``jaxgd run`` uses it
    for --chunk-size too)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse
