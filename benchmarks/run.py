"""Runs the benchmark harness of ``jaxgd/_bench/`` and writes its results.

``python -m benchmarks.run [--full] [--out DIR] [--write-md]`` from the repository root:

- quick by default (about 5 minutes on 2 cores), ``--full`` for more repeats and longer
  scaling curves (about 20 minutes);
- ``DIR`` (default ``benchmarks/results``) gets ``bench.json`` (every measurement),
  ``report.md`` and ``scaling.png``, as a results folder of ``jaxgd run`` (``--overwrite``
  replaces one written before);
- ``--write-md`` also writes ``BENCHMARKS.md`` at the repository root and the plot it shows,
  ``benchmarks/scaling.png``, each atomically (a temporary file, then a rename), keeping the
  page's hand-written sections (``hand_written``);
- ``--from-json FILE`` measures nothing: it renders the tables, report and plot again from
  a ``bench.json`` written before.

The installed command ``jaxgd bench`` runs the same harness.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from jaxgd._bench import (
    FULL,
    PRESETS,
    QUICK,
    plot_scaling,
    report_text,
    run_benchmarks,
    summary_text,
    wait_until_quiet,
    write_outputs,
)
from jaxgd.cli.results import DestinationError, ResultsExistError, check_out, write_atomic
from jaxgd.pipeline.sharding import use_every_core

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["main", "run_benchmarks"]


#: The heading from which BENCHMARKS.md is written by hand, and kept when it is regenerated.
HAND_WRITTEN = "written by hand"


def hand_written(page: Path) -> str:
    """The hand-written end of ``page`` (from the first heading that says so), or ""."""
    if not page.is_file():
        return ""
    lines = page.read_text().splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.startswith("## ") and HAND_WRITTEN in line:
            return "\n" + "".join(lines[index:])
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the full benchmark (~20 min)")
    parser.add_argument("--mode", choices=sorted(PRESETS), help="a preset by name "
                        "(smoke is seconds, for trying the harness)")
    parser.add_argument("--out", metavar="DIR", default=str(ROOT / "benchmarks" / "results"),
                        help="folder for bench.json, report.md, scaling.png")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing results folder that jaxgd wrote")
    parser.add_argument("--write-md", action="store_true",
                        help="also write BENCHMARKS.md at the repository root")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to this long for other processes to leave the "
                             "CPUs (timings of NumPy and PyTorch suffer most from them)")
    parser.add_argument("--from-json", metavar="FILE",
                        help="render the outputs from a saved bench.json instead of measuring")
    args = parser.parse_args(argv)
    try:  # before minutes of measuring
        check_out(Path(args.out), args.overwrite)
    except (ResultsExistError, DestinationError) as error:
        parser.error(str(error))  # exit 2, as jaxgd's own refusals
    use_every_core()  # jaxgd's sweeps spread over every core, as `jaxgd bench` does
    if args.wait_quiet > 0:
        wait_until_quiet(args.wait_quiet, log=lambda line: print(line, file=sys.stderr))
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
    else:
        config = PRESETS[args.mode] if args.mode else (FULL if args.full else QUICK)
        results = run_benchmarks(config)
    print(summary_text(results))
    for path in write_outputs(results, Path(args.out), args.overwrite).values():
        print(f"wrote {path}", file=sys.stderr)
    if args.write_md:
        plot = ROOT / "benchmarks" / "scaling.png"
        drawn = plot_scaling(results, plot)
        page = ROOT / "BENCHMARKS.md"
        text = (report_text(results, "benchmarks/scaling.png" if drawn else None)
                + hand_written(page))
        write_atomic(page, text.encode())
        print(f"wrote {ROOT / 'BENCHMARKS.md'}" + (f" and {plot}" if drawn else ""),
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
