"""Issue 20's fixed costs: what a person waits for around the compute, each measured in a
fresh Python process (nothing imported or compiled yet), so that it is what a new script or
``jaxgd run`` pays.

- the first call of ``jaxgd.sweep`` on Auto MPG (7 standardized features, float32), blocked
  until its losses are ready and its ``converged_step`` read, against a hand-written
  ``jax.jit(jax.vmap(train))`` of a ``lax.scan`` over ``optax.sgd`` steps returning the
  ``(K, T)`` history; again with ``stop_at_convergence=True``. Only the call is timed (data
  loaded, modules imported); JAX's compile events split it into trace, lowering and XLA
  compile, and count the programs compiled;
- ``jaxgd run`` (the shipped default config, figures off) twice with a new, empty
  ``JAXGD_CACHE_DIR``: the compile seconds its summary.json reports, cold and warm;
- ``import jaxgd`` against ``import jax``.

Each child gets this process's environment without ``JAX_*`` variables and ``XLA_FLAGS``
(JAX's defaults, whatever the caller set) and imports the same jaxgd as this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import jaxgd
from jaxgd._bench.measure import _busy_cpu_seconds
from jaxgd._bench.targets import _target

RATES = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 0.5)
STEPS = 3000
# Issue 20's targets.
TARGET_SWEEP_VS_SCAN = 1.5  # first sweep call / first hand-written scan call: at most
TARGET_STOP_VS_SCAN = 1.5  # the same with stop_at_convergence=True: at most
TARGET_WARM_COMPILE_S = 0.3  # jaxgd run's compile seconds, second run: at most
TARGET_IMPORT = 1.25  # import jaxgd / import jax: at most

_EVENTS = {"/jax/core/compile/jaxpr_trace_duration": "trace_s",
           "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower_s",
           "/jax/core/compile/backend_compile_duration": "compile_s"}

_SETUP = """\
import json, time
import jax, jax.numpy as jnp, numpy as np, optax
import jaxgd
data = jaxgd.datasets.auto_mpg()
X = np.asarray(jaxgd.Standardizer.fit(data.X).transform(data.X), np.float32)
y = np.asarray(data.y, np.float32)
jaxgd.sweep  # its modules load here, not on the clock: importing is 20.4's measure
RATES, STEPS = {rates!r}, {steps}
split = {{"trace_s": 0.0, "lower_s": 0.0, "compile_s": 0.0, "programs": 0}}
EVENTS = {events!r}
def listen(event, seconds, **_):
    if event in EVENTS:
        split[EVENTS[event]] += seconds
        split["programs"] += EVENTS[event] == "compile_s"
jax.monitoring.register_event_duration_secs_listener(listen)
"""

_CALLS = {
    "sweep": """\
start = time.perf_counter()
result = jaxgd.sweep(X, y, learning_rates=RATES, num_steps=STEPS{extra})
jax.block_until_ready(result.losses)
np.asarray(result.converged_step)
""",
    "scan": """\
def train(lr, X, y):
    opt = optax.sgd(lr)
    def loss(params):
        w, b = params
        r = X @ w + b - y
        return jnp.mean(r * r)
    def step(carry, _):
        params, state = carry
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = opt.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), value
    params = (jnp.zeros(X.shape[1], X.dtype), jnp.zeros((), X.dtype))
    return jax.lax.scan(step, (params, opt.init(params)), length=STEPS)[1]
run = jax.jit(jax.vmap(train, in_axes=(0, None, None)))
rates = np.asarray(RATES, np.float32)
start = time.perf_counter()
jax.block_until_ready(run(rates, X, y))
""",
}
_REPORT = 'print(json.dumps({"s": time.perf_counter() - start, **split}))\n'
_IMPORT = ("import json, time\nstart = time.perf_counter()\nimport {module}\n"
           'print(json.dumps({{"s": time.perf_counter() - start}}))\n')


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment for a child: no ``JAX_*`` variables, no ``XLA_FLAGS``,
    and this process's jaxgd first on ``PYTHONPATH``; plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("JAX_") and k != "XLA_FLAGS"}
    root = str(Path(jaxgd.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return {**env, **extra}


def _python(script: str) -> dict[str, float]:
    """Runs ``script`` in a fresh interpreter; returns the JSON of its last line."""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=child_env(), check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def first_call(kind: str, rates=RATES, steps: int = STEPS, **sweep_kwargs) -> dict:
    """One first call (``kind`` "sweep" or "scan") in a fresh process: its seconds, the
    trace / lowering / XLA compile seconds inside it and the programs compiled."""
    extra = "".join(f", {k}={v}" for k, v in sweep_kwargs.items())  # values as code
    return _python(_SETUP.format(rates=tuple(rates), steps=steps, events=_EVENTS)
                   + _CALLS[kind].format(extra=extra) + _REPORT)


def import_seconds(module: str) -> float:
    """Seconds ``import module`` takes in a fresh process."""
    return _python(_IMPORT.format(module=module))["s"]


def cli_pair(sets: tuple[str, ...] = ()) -> dict[str, dict]:
    """``jaxgd run`` (the default config, figures off) twice on a new, empty
    ``JAXGD_CACHE_DIR``: each run's ``timing_seconds`` from its summary.json and the wall
    time of its process; with the cold run, the programs the cache then holds."""
    from jaxgd.cli import compile_cache

    out = {}
    with tempfile.TemporaryDirectory(prefix="jaxgd-fixed-costs-") as tmp:
        cache, folder = Path(tmp) / "cache", Path(tmp) / "run"
        command = [sys.executable, "-m", "jaxgd", "run", "--out", str(folder), "--overwrite",
                   "--set", "output.figures=[]", "--quiet"]
        for s in sets:
            command += ["--set", s]
        for name in ("cold", "warm"):
            start = time.perf_counter()
            subprocess.run(command, capture_output=True, text=True, check=True, cwd=tmp,
                           env=child_env(JAXGD_CACHE_DIR=str(cache)))
            wall = time.perf_counter() - start
            summary = json.loads((folder / "summary.json").read_text())
            out[name] = {**summary["timing_seconds"], "process_s": wall}
            if name == "cold":
                out[name]["programs_cached"] = compile_cache.size(cache)[0]
    return out


def _summary(records: list[dict]) -> dict[str, Any]:
    """Min and median of each number over the repeats, and the repeats themselves."""
    keys = records[0].keys()
    out: dict[str, Any] = {}
    for key in keys:
        values = [r[key] for r in records]
        out[f"{key}_min"] = float(np.min(values))
        out[f"{key}_median"] = float(np.median(values))
    out["runs"] = records
    return out


def _others_busy(start: tuple[float | None, float, float]) -> float | None:
    """The share of all cores that processes other than this one and its children used."""
    busy, own, began = start
    now = _busy_cpu_seconds()
    if busy is None or now is None:
        return None
    others = (now - busy) - (sum(os.times()[:4]) - own)
    return max(0.0, others / ((time.perf_counter() - began) * (os.cpu_count() or 1)))


def fixed_costs(repeats: int = 3, rates=RATES, steps: int = STEPS,
                cli: bool = True, cli_sets: tuple[str, ...] = (),
                log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measures every fixed cost ``repeats`` times, interleaved, each in a fresh process.

    Args:
      repeats: fresh processes per measurement; ratios use the minimum over them.
      rates, steps: the sweep (default: issue 20's 7 rates × 3,000 steps).
      cli: whether to time ``jaxgd run`` (without, ``cli_cold`` and ``cli_warm`` are None).
      cli_sets: extra ``--set KEY=VALUE`` for both ``jaxgd run`` processes.
      log: called with one line per repeat.

    Returns:
      A JSON-ready dict: per measurement (``sweep``, ``sweep_stop``, ``scan``,
      ``import_jax``, ``import_jaxgd``, ``cli_cold``, ``cli_warm``) the min and median of
      each of its numbers (seconds; ``programs``, the backend compiles) and its repeats;
      ``ratios``; ``targets`` (as ``jaxgd._bench.targets``); ``background_cpu``.
    """
    log = log or (lambda line: None)
    began = (_busy_cpu_seconds(), sum(os.times()[:4]), time.perf_counter())
    runs: dict[str, list] = {k: [] for k in ("scan", "sweep", "sweep_stop", "import_jax",
                                             "import_jaxgd", "cli_cold", "cli_warm")}
    for i in range(repeats):
        runs["scan"].append(first_call("scan", rates, steps))
        runs["sweep"].append(first_call("sweep", rates, steps))
        runs["sweep_stop"].append(first_call("sweep", rates, steps,
                                              stopping="jaxgd.Stopping(early_exit=True)"))
        for module in ("jax", "jaxgd")[:: 1 if i % 2 == 0 else -1]:  # neither always first
            runs[f"import_{module}"].append({"s": import_seconds(module)})
        if cli:
            pair = cli_pair(cli_sets)
            runs["cli_cold"].append(pair["cold"])
            runs["cli_warm"].append(pair["warm"])
        log(f"fixed costs {i + 1}/{repeats}: first call of the sweep "
            f"{runs['sweep'][-1]['s']:.3g} s, of the hand-written scan "
            f"{runs['scan'][-1]['s']:.3g} s" + (f", jaxgd run's second compile "
                                                f"{pair['warm']['compile']:.3g} s" if cli else ""))
    out: dict[str, Any] = {k: _summary(v) if v else None for k, v in runs.items()}
    out.update(repeats=repeats, rates=list(rates), steps=steps, cli_sets=list(cli_sets),
               background_cpu=_others_busy(began))
    out["ratios"] = {
        "sweep_vs_scan": out["sweep"]["s_min"] / out["scan"]["s_min"],
        "stop_vs_scan": out["sweep_stop"]["s_min"] / out["scan"]["s_min"],
        "import": out["import_jaxgd"]["s_min"] / out["import_jax"]["s_min"]}
    out["targets"] = fixed_cost_targets(out)
    return out


def fixed_cost_targets(fc: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 20's targets from ``fixed_costs``'s result, each met / missed."""
    r, scan = fc["ratios"], fc["scan"]
    sweep = f"{len(fc['rates'])} rates × {fc['steps']} steps"

    def first(key: str) -> str:
        m = fc[key]
        return (f"{m['s_min']:.3g} s / {scan['s_min']:.3g} s (min of {fc['repeats']}); "
                f"programs {m['programs_median']:.0f} vs {scan['programs_median']:.0f}")

    cold, warm = fc["cli_cold"], fc["cli_warm"]
    cli = (f"cold run {cold['compile_min']:.3g} s compile of {cold['total_min']:.3g} s "
           f"({cold['programs_cached_median']:.0f} programs cached); second run total "
           f"{warm['total_min']:.3g} s, its process {warm['process_s_min']:.3g} s"
           if warm else "")
    return [
        _target("20.1", f"first jaxgd.sweep call / first hand-written jit(vmap(scan)) call, "
                f"Auto MPG {sweep}", r["sweep_vs_scan"], TARGET_SWEEP_VS_SCAN, True,
                first("sweep")),
        _target("20.2", "first stop_at_convergence=True sweep call / first hand-written scan "
                "call", r["stop_vs_scan"], TARGET_STOP_VS_SCAN, True, first("sweep_stop")),
        _target("20.3", "jaxgd run (default config, figures off), second run with a warm "
                "JAXGD_CACHE_DIR: compile seconds", warm and warm["compile_min"],
                TARGET_WARM_COMPILE_S, True, cli),
        _target("20.4", "import jaxgd / import jax (fresh processes)", r["import"],
                TARGET_IMPORT, True, f"{fc['import_jaxgd']['s_min']:.3g} s / "
                f"{fc['import_jax']['s_min']:.3g} s"),
    ]
