"""Issue 20's fixed costs: what a person waits for around the compute.

``python -m benchmarks.fixed_costs [--repeats N] [--json FILE]`` from the repository root
prints a markdown table of the targets (met or missed) and of every measurement, each in a
fresh Python process (``jaxgd/_bench/fixed_costs.py`` says what and how):

1. the first call of ``jaxgd.sweep`` (Auto MPG, 7 rates × 3,000 steps) / the first call of
   a hand-written ``jax.jit(jax.vmap(train))`` of a ``lax.scan`` over ``optax.sgd``: ≤ 1.5;
2. the same with ``stop_at_convergence=True``: ≤ 1.5;
3. ``jaxgd run`` (default config, figures off), second run with the same new
   ``JAXGD_CACHE_DIR``: ≤ 0.3 s compiling (the cold run's is shown beside it);
4. ``import jaxgd`` / ``import jax``: ≤ 1.25.

Ratios are of the minima over ``--repeats`` processes each (default 5). ``jaxgd bench``
prints the same section with 3 repeats (5 with ``--full``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from jaxgd._bench import describe_machine, fixed_cost_lines, fixed_costs, wait_until_quiet


def machine_line(machine: dict) -> str:
    """CPU, cores, backend and versions in one line."""
    v = machine["versions"]
    return (f"- {machine['cpu']}, {machine['cores']} cores ({machine['cores_usable']} usable), "
            f"{machine['memory_gb']} GB; JAX backend {machine['jax_backend']}; "
            + ", ".join(f"{k} {v[k]}" for k in ("python", "jaxgd", "jax", "jaxlib", "optax")))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fixed_costs",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5,
                        help="fresh processes per measurement (default 5)")
    parser.add_argument("--json", metavar="FILE", help="write every measurement here")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to this long for other processes to leave the "
                             "CPUs")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.wait_quiet > 0:
        wait_until_quiet(args.wait_quiet, log=lambda line: print(line, file=sys.stderr))
    machine = describe_machine()
    load = os.getloadavg()
    results = fixed_costs(args.repeats, log=lambda line: print(line, file=sys.stderr))
    print("\n".join([*fixed_cost_lines(results), "Machine:", "", machine_line(machine),
                     f"- load average before: {', '.join(f'{x:.2f}' for x in load)}; "
                     f"after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "load_before": load, **results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
