"""``jaxgd bench``: how fast jaxgd is, against what users write instead and this machine's limits.

The same work everywhere: plain full-batch gradient descent on the MSE, from zeros, with a
constant learning rate, K learning rates, T steps, keeping every loss (a ``(K, T)`` history).
It is written four more ways, the way users write it without jaxgd:

- NumPy by hand, vectorized across learning rates (``W`` of shape ``(d+1, K)``), float64;
- PyTorch eager on the CPU, the same vectorized form, float32; and again with autograd;
- plain JAX, ``jax.jit(jax.vmap(run))`` of a ``lax.scan`` over ``optax.sgd`` steps, float32;
- scikit-learn's ``SGDRegressor`` looped over learning rates: per-sample SGD, a different
  algorithm, so it is timed to reach within 1% of the least-squares loss instead.

Every history is checked against jaxgd's before its time is reported. Each time is set beside
the machine's own limits, measured in the same run (peak matmul GFLOP/s, memory bandwidth),
through the work each engine must do (``work``). Torch and scikit-learn are optional: without
them their rows say "skipped".

Layout: work model; machine limits; baselines; measuring; workloads; targets; report; CLI.
``benchmarks/run.py`` in the source tree is a thin wrapper that also writes ``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import inspect
import json
import math
import os
import platform
import resource
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxgd
from jaxgd.convergence import DEFAULT_DIVERGENCE_FACTOR
from jaxgd.timing import timed

# Thresholds of the "Performance" issue's targets (see ``targets``).
TARGET_K8192_VS_NUMPY_K1 = 1.0  # (a) jaxgd 8192 rates / NumPy one rate: at most (less time)
TARGET_VS_NUMPY = 100.0  # (b) K=1024 speed-up over NumPy: at least
TARGET_VS_PLAIN_JAX = 30.0  # (b) K=1024 speed-up over plain JAX: at least
TARGET_DIRECT_VS_LIMIT = 2.0  # (c) direct engine time / machine limit: at most
TARGET_GRAM_VS_NUMPY = 50.0  # (c) gram engine speed-up over NumPy: at least
TARGET_COMPILE_S = 1.0  # (d) sweep compile time in seconds: at most

#: |a − b| ≤ RTOL·|b| + ATOL·loss₀ for histories of converging learning rates. float64 NumPy
#: against float32 jaxgd differs by float32 rounding, ~1e-6 relative on these problems.
RTOL = 1e-4
ATOL = 1e-6
#: Learning rates are log-spaced over [LR_LOW, LR_HIGH] × 2/λmax: all of them converge.
LR_LOW, LR_HIGH = 1e-3, 0.9
SKLEARN_TARGET = 0.01  # within 1% of the least-squares loss
PLANNING_EFFICIENCY = 0.2  # share of peak assumed when sizing compiled runs to a budget
BUSY_WARNING = 0.1  # warn when other processes used more than this share of the CPUs


# ---------------------------------------------------------------------------------------------
# Work model: what each engine must compute and move per step, for K runs at once.


def flops_per_step(engine: str, n: int, d: int, K: int) -> int:
    """Floating-point operations of one step of K runs (forward and backward pass).

    ``direct`` multiplies the ``(n, d+1)`` design matrix by the ``(d+1, K)`` parameters and
    back (``2·n·(d+1)·K`` each way); ``gram`` does the same with the ``(d+1, d+1)`` moment
    matrix instead of the rows. Elementwise work (residuals, squares) is O(n·K) and left out.
    ``eigen`` has no product: per coordinate and run a difference, three products and a sum
    for the loss and its gradient, and a multiply-add for the update, ``6·(d+1)·K``.

    Example:
      >>> flops_per_step("direct", n=10, d=2, K=5), flops_per_step("gram", n=10, d=2, K=5)
      (600, 180)
      >>> flops_per_step("eigen", n=10, d=2, K=5)
      90
    """
    width = d + 1
    if engine == "direct":
        return 4 * n * width * K
    if engine == "gram":
        return 4 * width * width * K
    if engine == "eigen":
        return 6 * width * K
    raise ValueError(f"unknown engine {engine!r}: direct, gram or eigen")


def bytes_per_step(engine: str, n: int, d: int, K: int, itemsize: int = 4) -> int:
    """Bytes one step of K runs must move at least, if nothing stays in cache.

    ``direct`` reads X twice (forward and backward) and y once, and writes and reads the
    ``(n, K)`` residuals; ``gram`` reads the ``(d+1)²`` moments and reads and writes the
    ``(d+1, K)`` parameters; ``eigen`` reads 2·(d+1) constants (curvatures and optimum)
    instead of the moments.

    Example:
      >>> bytes_per_step("direct", n=10, d=2, K=5, itemsize=4)
      600
    """
    if engine == "direct":
        return itemsize * (2 * n * d + n + 2 * n * K)
    if engine == "gram":
        return itemsize * ((d + 1) ** 2 + 2 * (d + 1) * K)
    if engine == "eigen":
        return itemsize * (2 * (d + 1) + 2 * (d + 1) * K)
    raise ValueError(f"unknown engine {engine!r}: direct, gram or eigen")


def setup_flops(engine: str, n: int, d: int) -> int:
    """Work done once per sweep: the moments, ``2·n·(d+1)²`` (gram and eigen; the eigen
    engine's (d+1)³ eigendecomposition is left out); direct none."""
    return 2 * n * (d + 1) ** 2 if engine in ("gram", "eigen") else 0


def work(engine: str, n: int, d: int, K: int, T: int, itemsize: int = 4) -> dict[str, int]:
    """The whole run's work: flops and bytes for T steps plus the one-off setup."""
    return {
        "flops_per_step": flops_per_step(engine, n, d, K),
        "bytes_per_step": bytes_per_step(engine, n, d, K, itemsize),
        "setup_flops": setup_flops(engine, n, d),
        "flops": flops_per_step(engine, n, d, K) * T + setup_flops(engine, n, d),
        "bytes": bytes_per_step(engine, n, d, K, itemsize) * T,
    }


def limit_seconds(total_work: dict[str, int], peak_gflops: float, peak_gbs: float) -> float:
    """The roofline: the run can go no faster than its flops or its bytes allow."""
    return max(total_work["flops"] / (peak_gflops * 1e9), total_work["bytes"] / (peak_gbs * 1e9))


# ---------------------------------------------------------------------------------------------
# Machine limits, measured in the same run.


def _best_seconds(call: Callable[[], Any], reps: int) -> float:
    best = math.inf
    for _ in range(reps):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_gflops(size: int, dtype=np.float32, reps: int = 3) -> dict[str, float]:
    """Best-of-``reps`` GFLOP/s of a ``size × size`` matmul, in NumPy and in JAX."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    flops = 2 * size**3
    numpy_s = _best_seconds(lambda: a @ a, reps)
    out = {"numpy": flops / numpy_s / 1e9}
    if np.dtype(dtype) == np.float32 or jax.config.jax_enable_x64:
        aj = jnp.asarray(a)
        # Full float32, as jaxgd's own products (a GPU would otherwise count TF32's rate).
        mm = jax.jit(partial(jnp.matmul, precision=jax.lax.Precision.HIGHEST))
        mm(aj, aj).block_until_ready()
        out["jax"] = flops / _best_seconds(lambda: mm(aj, aj).block_until_ready(), reps) / 1e9
    return out


def bandwidth_gbs(megabytes: int, reps: int = 3) -> dict[str, float]:
    """Best-of-``reps`` GB/s: a NumPy sum (read) and copy (read + write), and a JAX sum."""
    a = np.ones(megabytes * 2**20 // 4, np.float32)
    b = np.empty_like(a)
    b.fill(0.0)  # touch the pages now, not inside the timing
    out = {
        "numpy_sum": a.nbytes / _best_seconds(a.sum, reps) / 1e9,
        "numpy_copy": 2 * a.nbytes / _best_seconds(lambda: np.copyto(b, a), reps) / 1e9,
    }
    aj = jnp.asarray(a)
    total = jax.jit(jnp.sum)
    total(aj).block_until_ready()
    out["jax_sum"] = a.nbytes / _best_seconds(lambda: total(aj).block_until_ready(), reps) / 1e9
    return out


def others_cpu_share(seconds: float = 1.0) -> float | None:
    """The share of all cores that other processes use, over ``seconds``."""
    with BackgroundCPU() as busy:
        time.sleep(seconds)
    return busy.fraction


def wait_until_quiet(max_wait_s: float, threshold: float = 0.1,
                     log: Callable[[str], None] = print) -> float | None:
    """Waits (at most ``max_wait_s``) until other processes use at most ``threshold`` of the
    CPUs over a 2-second window; returns the last share seen."""
    deadline = time.perf_counter() + max_wait_s
    while True:
        share = others_cpu_share(2.0)
        if share is None or share <= threshold or time.perf_counter() > deadline:
            return share
        log(f"other processes use {100 * share:.0f}% of the CPUs; waiting for a quiet machine")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or ``platform.processor()``)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    """Versions of Python and of every library a benchmark row may use."""
    out = {"python": platform.python_version(), "jaxgd": jaxgd.__version__,
           "jax": jax.__version__, "jaxlib": jax.lib.__version__, "numpy": np.__version__,
           "optax": optax.__version__}
    for name in ("torch", "sklearn"):
        module = _optional(name)
        out[name] = module.__version__ if module else "not installed"
    return out


def describe_machine() -> dict[str, Any]:
    """CPU, cores, JAX backend and devices, versions."""
    device = jax.devices()[0]
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1)
        if hasattr(os, "sysconf") else None,
        "platform": platform.platform(),
        "jax_backend": jax.default_backend(),
        "devices": [f"{d.platform}:{d.device_kind}" for d in jax.devices()],
        "device_kind": device.device_kind,
        "versions": versions(),
    }


def measure_machine(matmul_sizes=(2048, 4096), bandwidth_mb: int = 512,
                    reps: int = 3) -> dict[str, Any]:
    """This machine's description and measured limits: peak matmul GFLOP/s (float32 and
    float64, the best over sizes and over NumPy and JAX; float64 up to 2048 only, to keep
    it short) and memory bandwidth (GB/s)."""
    out = describe_machine()
    f32 = {str(s): matmul_gflops(s, np.float32, reps) for s in matmul_sizes}
    f64 = {str(s): matmul_gflops(s, np.float64, reps)
           for s in [s for s in matmul_sizes if s <= 2048] or matmul_sizes[:1]}
    bandwidth = bandwidth_gbs(bandwidth_mb, reps)
    out["matmul_gflops_f32"] = f32
    out["matmul_gflops_f64"] = f64
    out["bandwidth_gbs"] = bandwidth
    out["peak_gflops_f32"] = max(v for by in f32.values() for v in by.values())
    out["peak_gflops_f64"] = max(v for by in f64.values() for v in by.values())
    out["peak_gbs"] = max(bandwidth.values())
    return out


# ---------------------------------------------------------------------------------------------
# Baselines: the same work, written the way users write it. Each returns the (K, T) history.


def numpy_gd(X, y, learning_rates, num_steps: int, dtype=np.float64) -> np.ndarray:
    """Gradient descent by hand in NumPy, all learning rates at once, from zeros.

    Example:
      >>> X, y = np.array([[-1.0], [1.0]]), np.array([1.0, 3.0])
      >>> numpy_gd(X, y, [0.5], 3).round(4).tolist()
      [[5.0, 0.0, 0.0]]
    """
    X, y = np.asarray(X, dtype), np.asarray(y, dtype)
    n = X.shape[0]
    A = np.hstack([X, np.ones((n, 1), dtype)])
    lr = np.asarray(learning_rates, dtype)
    W = np.zeros((A.shape[1], lr.size), dtype)
    losses = np.empty((lr.size, num_steps), dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(num_steps):
            R = A @ W - y[:, None]
            losses[:, t] = np.mean(R * R, axis=0)
            W -= lr * ((2.0 / n) * (A.T @ R))
    return losses


def torch_gd(X, y, learning_rates, num_steps: int) -> np.ndarray | None:
    """The NumPy loop in PyTorch eager on the CPU, float32; None without torch."""
    torch = _optional("torch")
    if torch is None:
        return None
    with torch.no_grad():
        X = torch.as_tensor(np.asarray(X, np.float32))
        y = torch.as_tensor(np.asarray(y, np.float32))
        n = X.shape[0]
        A = torch.cat([X, torch.ones(n, 1)], dim=1)
        lr = torch.as_tensor(np.asarray(learning_rates, np.float32))
        W = torch.zeros(A.shape[1], lr.numel())
        losses = torch.empty(lr.numel(), num_steps)
        for t in range(num_steps):
            R = A @ W - y[:, None]
            losses[:, t] = (R * R).mean(dim=0)
            W -= lr * ((2.0 / n) * (A.T @ R))
    return losses.numpy()


def torch_autograd_gd(X, y, learning_rates, num_steps: int) -> np.ndarray | None:
    """PyTorch eager with the gradient from ``loss.backward()``, float32; None without torch.

    Summing the K losses gives each column of ``W`` its own loss's gradient.
    """
    torch = _optional("torch")
    if torch is None:
        return None
    X = torch.as_tensor(np.asarray(X, np.float32))
    y = torch.as_tensor(np.asarray(y, np.float32))
    A = torch.cat([X, torch.ones(X.shape[0], 1)], dim=1)
    lr = torch.as_tensor(np.asarray(learning_rates, np.float32))
    W = torch.zeros(A.shape[1], lr.numel(), requires_grad=True)
    losses = torch.empty(lr.numel(), num_steps)
    for t in range(num_steps):
        R = A @ W - y[:, None]
        loss = (R * R).mean(dim=0)
        losses[:, t] = loss.detach()
        W.grad = None
        loss.sum().backward()
        with torch.no_grad():
            W -= lr * W.grad
    return losses.numpy()


@partial(jax.jit, static_argnames="num_steps")
def _plain_jax(X, y, learning_rates, num_steps: int):
    def loss_fn(params):
        w, b = params
        r = X @ w + b - y
        return jnp.mean(r * r)

    def run(lr):
        opt = optax.sgd(lr)
        params = (jnp.zeros(X.shape[1], X.dtype), jnp.zeros((), X.dtype))

        def step(carry, _):
            params, state = carry
            loss, grads = jax.value_and_grad(loss_fn)(params)
            updates, state = opt.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), loss

        _, losses = jax.lax.scan(step, (params, opt.init(params)), length=num_steps)
        return losses

    return jax.vmap(run)(learning_rates)


def plain_jax_gd(X, y, learning_rates, num_steps: int) -> jax.Array:
    """The JAX a user writes in twenty lines: ``jit(vmap(run))``, ``run`` a ``lax.scan`` of
    ``optax.sgd`` steps that computes ``X @ w`` every step. float32; blocks until done."""
    X, y = jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32)
    rates = jnp.asarray(learning_rates, jnp.float32)
    return _plain_jax(X, y, rates, num_steps).block_until_ready()


class SGDOutcome(NamedTuple):
    """scikit-learn SGD per learning rate: seconds and epochs spent, until the loss came
    within ``SKLEARN_TARGET`` of the optimum (``reached``) or the run gave up (cap or blow-up);
    ``best_gap`` is the lowest ``loss / optimum − 1`` it saw."""

    learning_rates: np.ndarray
    seconds: np.ndarray
    epochs: np.ndarray
    reached: np.ndarray
    diverged: np.ndarray
    best_gap: np.ndarray


def sklearn_sgd(X, y, learning_rates, optimal_loss: float, max_epochs: int = 10_000,
                max_seconds: float = math.inf, total_seconds: float = math.inf,
                target: float = SKLEARN_TARGET) -> SGDOutcome | None:
    """``SGDRegressor`` (constant learning rate, no penalty, no shuffling) per learning rate,
    one ``partial_fit`` epoch at a time until its MSE is within ``target`` of
    ``optimal_loss``, it diverges (overflows, or its loss passes jaxgd's divergence multiple
    of the loss at zeros), ``max_epochs`` pass or ``max_seconds`` are spent on the rate.
    Rates are tried in the order given until ``total_seconds`` are spent (two at least);
    the outcome lists those tried. None without scikit-learn."""
    if _optional("sklearn") is None:
        return None
    from sklearn.linear_model import SGDRegressor

    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    goal = optimal_loss * (1 + target)
    # Diverged as jaxgd judges it: the loss rose past a multiple of the loss at zeros.
    # (SGDRegressor clips its per-sample gradient, so it seldom overflows.)
    blown = DEFAULT_DIVERGENCE_FACTOR * float(np.mean(y * y))
    rows, tried, began = [], [], time.perf_counter()
    for lr in np.asarray(learning_rates, np.float64):
        if len(rows) >= 2 and time.perf_counter() - began > total_seconds:
            break
        tried.append(lr)
        model = SGDRegressor(loss="squared_error", penalty=None, learning_rate="constant",
                             eta0=float(lr), tol=None, shuffle=False)
        start, reached, diverged, epoch = time.perf_counter(), False, False, 0
        best = math.inf
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            for epoch in range(1, max_epochs + 1):  # noqa: B007 (epoch is reported)
                try:
                    model.partial_fit(X, y)
                except ValueError:  # "Floating-point under-/overflow occurred at epoch #"
                    diverged = True
                    break
                residual = model.predict(X) - y
                loss = float(np.mean(residual * residual))
                if not loss <= blown:  # also NaN
                    diverged = True
                    break
                best = min(best, loss / optimal_loss - 1)
                if loss <= goal:
                    reached = True
                    break
                if time.perf_counter() - start > max_seconds:
                    break
        rows.append((time.perf_counter() - start, epoch, reached, diverged, best))
    seconds, epochs, reached, diverged, best = (np.array(c) for c in zip(*rows, strict=True))
    return SGDOutcome(np.asarray(tried, np.float64), seconds, epochs,
                      reached.astype(bool), diverged.astype(bool), best)


class EngineUnavailableError(RuntimeError):
    """This jaxgd has no ``engine`` argument, so only its one (direct) path can run."""


def sweep_options() -> dict[str, bool]:
    """Which of the performance arguments this ``jaxgd.sweep`` takes."""
    params = inspect.signature(jaxgd.sweep).parameters
    return {name: name in params for name in ("engine", "log_every", "chunk_size")}


def jaxgd_sweep(X, y, learning_rates, num_steps: int, engine: str = "auto"):
    """``jaxgd.sweep`` from zeros, no reference, full history; blocks until done.

    Passes ``engine`` and ``log_every`` only where ``jaxgd.sweep`` takes them.

    Returns:
      (losses ``(K, T)``, the engine that actually ran).
    """
    options = sweep_options()
    kwargs: dict[str, Any] = {}
    if options["engine"]:
        kwargs["engine"] = engine
    elif engine not in ("auto", "direct"):
        raise EngineUnavailableError(f"jaxgd.sweep takes no engine argument: {engine} cannot run")
    if options["log_every"]:
        kwargs["log_every"] = 1
    result = jaxgd.sweep(X, y, learning_rates=learning_rates, num_steps=num_steps,
                         init_scale=0.0, reference=False, **kwargs)
    jax.block_until_ready([leaf for leaf in jax.tree_util.tree_leaves(result)
                           if isinstance(leaf, jax.Array)])
    return result.losses, getattr(result, "engine", "direct")


# ---------------------------------------------------------------------------------------------
# Measuring: the first call (compile, memory), then steady-state repeats within a budget.


def _optional(name: str):
    try:
        return __import__(name)
    except ImportError:
        return None


def _rss_bytes() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakRSS:
    """Peak resident-set growth over a block, sampled from /proc/self/statm every 2 ms.

    Unlike ``ru_maxrss`` it sees a block's own peak even after an earlier, bigger one.
    Memory an allocator kept from before the block and reused is not counted.
    """

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.peak_mb = 0.0

    def __enter__(self) -> PeakRSS:
        gc.collect()
        self._base = self._peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, _rss_bytes())

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, _rss_bytes())
        self.peak_mb = (self._peak - self._base) / 2**20


class BackgroundCPU:
    """The share of all cores that other processes used over a block (from /proc/stat minus
    this process's own CPU time): a busy machine makes every timing in the block slower."""

    def __enter__(self) -> BackgroundCPU:
        self.fraction: float | None = None
        self._start = (_busy_cpu_seconds(), _own_cpu_seconds(), time.perf_counter())
        return self

    def __exit__(self, *_) -> None:
        busy, own, start = self._start
        now = _busy_cpu_seconds()
        if busy is None or now is None:
            return
        elapsed = time.perf_counter() - start
        others = (now - busy) - (_own_cpu_seconds() - own)
        self.fraction = max(0.0, others / (elapsed * (os.cpu_count() or 1)))


def _busy_cpu_seconds() -> float | None:
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


@dataclass
class Measured:
    """Timings of one implementation on one configuration (seconds, as measured)."""

    output: Any
    first_s: float
    compile_s: float
    times_s: list[float]
    peak_rss_mb: float

    @property
    def median_s(self) -> float:
        return float(np.median(self.times_s)) if self.times_s else self.first_s - self.compile_s


def measure(call: Callable[[], Any], *, repeats: int, min_repeats: int,
            budget_s: float) -> Measured:
    """Calls ``call`` once (timing JAX's compilation inside it and the peak memory), then
    again for steady-state times: ``min_repeats`` at least, up to ``repeats`` while the
    repeats so far plus one more fit in ``budget_s``. With no repeat, the time is the first
    call's minus its compile time."""
    with PeakRSS() as memory, timed() as first:
        output = call()
    times: list[float] = []
    spent, next_call = 0.0, first.total - first.compile
    while len(times) < repeats and (len(times) < min_repeats or spent + next_call <= budget_s):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
        spent, next_call = spent + times[-1], times[-1]
    return Measured(output, first.total, first.compile, times, memory.peak_mb)


# ---------------------------------------------------------------------------------------------
# Configurations.


@dataclass(frozen=True)
class BenchConfig:
    """What one benchmark run measures; ``QUICK``, ``FULL`` and ``SMOKE`` are the presets.

    Attributes:
      mode: its name.
      auto_mpg_ks, auto_mpg_steps: the Auto MPG workload (all 7 features, standardized).
      synthetic: (n, d, K, T) of the large synthetic workload, or None.
      scaling_base: (n, d, K, T) from which each scaling curve varies one of them.
      scaling: (axis, values) pairs, axis one of "K", "n", "d", "T".
      scaling_impls: which implementations the scaling curves time.
      repeats, min_repeats, budget_s: steady-state runs after the first call (see
        ``measure``).
      baseline_budget_s: seconds one NumPy or torch run may take; past it the baseline runs
        fewer steps and its time is extrapolated linearly in T.
      compiled_budget_s: the same for the X·θ-every-step compiled programs (jaxgd's direct
        engine, plain JAX), judged from the work model before compiling.
      sklearn_rates, sklearn_rate_budget_s, sklearn_budget_s: how many learning rates,
        spread over the range, scikit-learn is timed on (its total is extrapolated to K);
        the seconds it may spend on each before giving up on reaching the target; and on
        all of them (past it, the rates not yet tried are left out, two at least are run).
      matmul_sizes, bandwidth_mb, machine_reps: the machine measurement.
    """

    mode: str
    auto_mpg_ks: tuple[int, ...] = (1, 64, 1024, 8192)
    auto_mpg_steps: int = 1000
    synthetic: tuple[int, int, int, int] | None = (10**6, 32, 64, 200)
    scaling_base: tuple[int, int, int, int] = (4096, 16, 64, 200)
    scaling: tuple[tuple[str, tuple[int, ...]], ...] = (
        ("K", (1, 64, 1024)), ("n", (1024, 4096, 65536)), ("d", (4, 16, 64)),
        ("T", (50, 200, 1000)))
    scaling_impls: tuple[str, ...] = ("jaxgd:direct", "jaxgd:gram", "jaxgd:eigen", "numpy")
    repeats: int = 3
    min_repeats: int = 0
    budget_s: float = 2.0
    baseline_budget_s: float = 1.5
    compiled_budget_s: float = 3.0
    sklearn_rates: int = 6
    sklearn_rate_budget_s: float = 0.25
    sklearn_budget_s: float = 4.0
    matmul_sizes: tuple[int, ...] = (2048, 4096)
    bandwidth_mb: int = 512
    machine_reps: int = 3


QUICK = BenchConfig(mode="quick")
FULL = BenchConfig(
    mode="full",
    scaling=(("K", (1, 16, 256, 4096)), ("n", (1024, 8192, 65536, 262144)),
             ("d", (4, 16, 64, 256)), ("T", (50, 200, 1000, 5000))),
    scaling_impls=("jaxgd:direct", "jaxgd:gram", "jaxgd:eigen", "numpy", "plain-jax"),
    repeats=5, min_repeats=3, budget_s=20.0, baseline_budget_s=8.0, compiled_budget_s=60.0,
    sklearn_rates=16, sklearn_rate_budget_s=1.5, sklearn_budget_s=30.0,
    matmul_sizes=(1024, 2048, 4096),
    machine_reps=5)
SMOKE = BenchConfig(  # seconds, for tests: one jaxgd compile per engine, tiny everything
    mode="smoke", auto_mpg_ks=(4,), auto_mpg_steps=20, synthetic=None,
    scaling_base=(500, 4, 4, 10), scaling=(("K", (1, 4)), ("T", (10, 20))),
    scaling_impls=("numpy",), repeats=1, min_repeats=1, budget_s=0.5,
    baseline_budget_s=0.5, compiled_budget_s=1.0, sklearn_rates=2, sklearn_rate_budget_s=0.05,
    sklearn_budget_s=0.2,
    matmul_sizes=(128,), bandwidth_mb=8, machine_reps=1)
PRESETS = {"quick": QUICK, "full": FULL, "smoke": SMOKE}


@dataclass
class Problem:
    """A workload's data: float64 for NumPy and scikit-learn, float32 for JAX and torch."""

    name: str
    X: np.ndarray
    y: np.ndarray
    max_learning_rate: float
    optimal_loss: float
    X32: np.ndarray = field(init=False)
    y32: np.ndarray = field(init=False)
    sklearn: tuple[Any, float] | None = field(init=False, default=None)  # computed once

    def __post_init__(self):
        self.X32 = self.X.astype(np.float32)
        self.y32 = self.y.astype(np.float32)

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def d(self) -> int:
        return self.X.shape[1]

    def learning_rates(self, K: int) -> np.ndarray:
        """K rates log-spaced from 0.9 down to 0.001 times 2/λmax (K=1: the largest)."""
        return self.max_learning_rate * np.geomspace(LR_HIGH, LR_LOW, K)


def make_problem(name: str, X, y) -> Problem:
    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    return Problem(name, X, y, jaxgd.stability(X).max_learning_rate, jaxgd.solve(X, y).loss)


def auto_mpg_problem() -> Problem:
    """Auto MPG, all 7 features standardized, → mpg."""
    data = jaxgd.datasets.auto_mpg()
    X = jaxgd.Standardizer.fit(data.X).transform(data.X)
    return make_problem("auto_mpg", X, data.y)


def synthetic_problem(n: int, d: int, seed: int = 0) -> Problem:
    data = jaxgd.datasets.synthetic(jax.random.key(seed), n, d)
    return make_problem(f"synthetic n={n} d={d}", data.X, data.y)


# ---------------------------------------------------------------------------------------------
# Running implementations on a problem.

IMPL_LABELS = {
    "jaxgd": "jaxgd",
    "numpy": "NumPy by hand (float64)",
    "torch": "PyTorch eager (float32)",
    "torch-autograd": "PyTorch autograd (float32)",
    "plain-jax": "plain JAX jit(vmap(scan)) (float32)",
    "sklearn-sgd": "scikit-learn SGDRegressor (float64, to 1%)",
}
_BASELINES = {"numpy": numpy_gd, "torch": torch_gd, "torch-autograd": torch_autograd_gd}


def _row(impl: str, problem: Problem, K: int, T: int, **fields) -> dict[str, Any]:
    row = {"impl": impl, "label": IMPL_LABELS[impl.split(":")[0]], "engine": "direct",
           "dtype": "float32", "n": problem.n, "d": problem.d, "K": K, "T": T,
           "measured_K": K, "measured_T": T, "extrapolated_from": None, "skipped": None,
           "median_s": None, "times_s": [], "first_call_s": None, "compile_s": None,
           "peak_rss_mb": None, "check": None}
    row.update(fields)
    return row


def _fill_timing(row: dict, m: Measured, scale: float = 1.0) -> dict:
    row.update(median_s=m.median_s * scale, min_s=min(m.times_s) * scale if m.times_s else None,
               times_s=[round(t, 6) for t in m.times_s],
               repeats=len(m.times_s), first_call_s=m.first_s, peak_rss_mb=m.peak_rss_mb)
    if row["impl"].startswith(("jaxgd", "plain-jax")):
        row["compile_s"] = m.compile_s
        row["first_minus_steady_s"] = m.first_s - m.median_s if m.times_s else None
    return row


def _steps_within(budget_s: float, seconds_per_step: float, T: int, least: int) -> int:
    """T, or fewer steps (a multiple of 10 when it can be) that fit the budget."""
    if seconds_per_step * T <= budget_s:
        return T
    fit = int(budget_s / seconds_per_step)
    return min(T, max(least, fit // 10 * 10 if fit >= 10 else fit))


def _runs_direct(engine: str, problem: Problem, K: int, T: int) -> bool:
    """Whether jaxgd's ``engine`` will compute X·θ every step."""
    if engine == "direct" or not sweep_options()["engine"]:
        return True
    if engine == "auto":
        try:
            from jaxgd.engine import choose_engine
        except ImportError:
            return False
        return choose_engine("auto", problem.n, problem.d, T, K) == "direct"
    return False


def compiled_steps(problem: Problem, K: int, T: int, config: BenchConfig,
                   machine: dict[str, Any]) -> int:
    """Steps a compiled X·θ-every-step run gets: T, unless the work model at a fifth of the
    machine's float32 peak says T steps would take longer than ``compiled_budget_s``."""
    per_step = flops_per_step("direct", problem.n, problem.d, K) / (
        PLANNING_EFFICIENCY * machine["peak_gflops_f32"] * 1e9)
    return _steps_within(config.compiled_budget_s, per_step, T, least=10)


def run_jaxgd(problem: Problem, K: int, T: int, engine: str, config: BenchConfig,
              machine: dict[str, Any]):
    """One jaxgd engine on the problem; returns (row, history or None)."""
    rates = problem.learning_rates(K)
    impl = f"jaxgd:{engine}"
    steps = compiled_steps(problem, K, T, config, machine) if _runs_direct(
        engine, problem, K, T) else T
    try:
        m = measure(lambda: jaxgd_sweep(problem.X32, problem.y32, rates, steps, engine),
                    repeats=config.repeats, min_repeats=config.min_repeats,
                    budget_s=config.budget_s)
    except EngineUnavailableError as error:
        return _row(impl, problem, K, T, engine=engine, skipped=str(error)), None
    losses, ran = m.output
    label = f"jaxgd engine={engine}" + (f" → {ran}" if engine == "auto" else "")
    if not sweep_options()["engine"]:
        label = "jaxgd (no engine argument: its direct path)"
    row = _row(impl, problem, K, T, label=label, engine=ran, requested_engine=engine,
               measured_T=steps, extrapolated_from=f"T={steps}" if steps < T else None)
    return _fill_timing(row, m, scale=T / steps), np.asarray(losses)


def run_baseline(impl: str, problem: Problem, K: int, T: int, config: BenchConfig):
    """NumPy, torch or torch-autograd, with fewer steps (time extrapolated) past the budget."""
    fn = _BASELINES[impl]
    float64 = impl == "numpy"
    X, y = (problem.X, problem.y) if float64 else (problem.X32, problem.y32)
    rates = problem.learning_rates(K)
    dtype = "float64" if float64 else "float32"
    probe_steps = 1
    per_step = math.inf
    for _ in range(2):  # the first probe also warms up; the faster one estimates a step
        start = time.perf_counter()
        if fn(X, y, rates, probe_steps) is None:
            return _row(impl, problem, K, T, dtype=dtype,
                        skipped="skipped: torch not installed"), None
        per_step = min(per_step, (time.perf_counter() - start) / probe_steps)
    # Three steps at least, so that the history check sees two updates.
    steps = _steps_within(config.baseline_budget_s, per_step, T, least=min(T, 3))
    m = measure(lambda: fn(X, y, rates, steps), repeats=config.repeats,
                min_repeats=config.min_repeats, budget_s=config.budget_s)
    row = _row(impl, problem, K, T, dtype=dtype, measured_T=steps,
               extrapolated_from=f"T={steps}" if steps < T else None)
    return _fill_timing(row, m, scale=T / steps), np.asarray(m.output)


def run_plain_jax(problem: Problem, K: int, T: int, config: BenchConfig,
                  machine: dict[str, Any]):
    rates = problem.learning_rates(K)
    steps = compiled_steps(problem, K, T, config, machine)
    m = measure(lambda: plain_jax_gd(problem.X32, problem.y32, rates, steps),
                repeats=config.repeats, min_repeats=config.min_repeats,
                budget_s=config.budget_s)
    row = _row("plain-jax", problem, K, T, measured_T=steps,
               extrapolated_from=f"T={steps}" if steps < T else None)
    return _fill_timing(row, m, scale=T / steps), np.asarray(m.output)


def sklearn_outcome(problem: Problem, config: BenchConfig) -> tuple[SGDOutcome | None, float]:
    """scikit-learn on ``sklearn_rates`` rates spread over the whole range (the same for
    every K), once per problem; returns (outcome, peak MB)."""
    if problem.sklearn is None:
        rates = problem.learning_rates(config.sklearn_rates)[spread_order(config.sklearn_rates)]
        with PeakRSS() as memory:
            outcome = sklearn_sgd(problem.X, problem.y, rates, problem.optimal_loss,
                                  max_seconds=config.sklearn_rate_budget_s,
                                  total_seconds=config.sklearn_budget_s)
        problem.sklearn = (outcome, memory.peak_mb)
    return problem.sklearn


def spread_order(count: int) -> np.ndarray:
    """Indices 0..count-1 ordered so that every prefix spreads over the range: the ends
    first, then midpoints (so a run cut short by its time budget still spans it).

    Example:
      >>> spread_order(5).tolist()
      [0, 4, 2, 1, 3]
    """
    order = [0, count - 1] if count > 1 else [0]
    step = count - 1
    while len(order) < count and step > 1:
        step = -(-step // 2)
        order += [i for i in range(0, count, step) if i not in order]
    order += [i for i in range(count) if i not in order]
    return np.asarray(order[:count])


def run_sklearn(problem: Problem, K: int, T: int, config: BenchConfig) -> dict[str, Any]:
    """Per-sample SGD, timed to within 1% per rate; its total for K rates is the mean per
    rate over the spread times K (for K=1, the largest rate's own time)."""
    outcome, peak_mb = sklearn_outcome(problem, config)
    row = _row("sklearn-sgd", problem, K, T, dtype="float64", engine="per-sample SGD")
    if outcome is None:
        row["skipped"] = "skipped: scikit-learn not installed"
        return row
    tried = outcome.seconds.size
    # The largest rate comes first: for K=1 (the largest rate alone) it is the measurement.
    total = float(outcome.seconds[0]) if K == 1 else float(outcome.seconds.mean()) * K
    reached = outcome.reached
    row.update(
        median_s=total, measured_K=tried, measured_T=None,
        extrapolated_from=None if K == 1 or tried == K else f"K={tried}",
        times_s=[round(float(v), 6) for v in outcome.seconds], peak_rss_mb=peak_mb,
        reached=int(reached.sum()), tried=tried, diverged=int(outcome.diverged.sum()),
        rate_budget_s=config.sklearn_rate_budget_s,
        sklearn_rates=outcome.learning_rates.tolist(),
        epochs=outcome.epochs.tolist(), best_gap=outcome.best_gap.tolist(),
        seconds_to_target_median=float(np.median(outcome.seconds[reached]))
        if reached.any() else None,
        epochs_to_target_median=float(np.median(outcome.epochs[reached]))
        if reached.any() else None,
        note=f"per rate: partial_fit epochs until MSE ≤ (1+{SKLEARN_TARGET:g})·optimum, "
             f"divergence, or {config.sklearn_rate_budget_s:g} s",
    )
    return row


def compare_histories(history: np.ndarray, reference: np.ndarray, rates: np.ndarray,
                      max_learning_rate: float) -> dict[str, Any]:
    """Checks ``history`` against ``reference`` over the steps both have, on converging rates
    (below 2/λmax, finite in the reference): |a − b| ≤ RTOL·|b| + ATOL·loss₀."""
    steps = min(history.shape[-1], reference.shape[-1])
    a = np.asarray(history, np.float64)[:, :steps]
    b = np.asarray(reference, np.float64)[:, :steps]
    keep = (rates < max_learning_rate) & np.isfinite(b).all(axis=1)
    a, b = a[keep], b[keep]
    scale = np.abs(b[:, :1])
    error = np.abs(a - b)
    relative = error / np.maximum(np.abs(b), np.finfo(np.float32).tiny)
    ok = bool(np.all(error <= RTOL * np.abs(b) + ATOL * scale)) if a.size else False
    return {"ok": ok, "max_rel_err": float(relative.max()) if a.size else None,
            "rtol": RTOL, "atol_times_loss0": ATOL, "rates_compared": int(keep.sum()),
            "steps_compared": steps}


def annotate(row: dict[str, Any], problem: Problem, machine: dict[str, Any]) -> dict[str, Any]:
    """Adds the run's work, achieved rates, fractions of the machine's peaks and the limit."""
    if row["median_s"] is None or row["impl"] == "sklearn-sgd":
        return row
    engine = row["engine"] if row["engine"] in ("direct", "gram", "eigen") else "direct"
    itemsize = 8 if row["dtype"] == "float64" else 4
    total = work(engine, problem.n, problem.d, row["K"], row["T"], itemsize)
    peak_flops = machine["peak_gflops_f64" if itemsize == 8 else "peak_gflops_f32"]
    seconds = row["median_s"]
    limit = limit_seconds(total, peak_flops, machine["peak_gbs"])
    row.update(
        work=total, gflops=total["flops"] / seconds / 1e9,
        flops_fraction=total["flops"] / seconds / 1e9 / peak_flops,
        gbs=total["bytes"] / seconds / 1e9,
        bandwidth_fraction=total["bytes"] / seconds / 1e9 / machine["peak_gbs"],
        limit_s=limit, x_limit=seconds / limit)
    return row


def run_problem(problem: Problem, K: int, T: int, impls: tuple[str, ...],
                config: BenchConfig, machine: dict[str, Any],
                log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Times each implementation on (problem, K, T); checks histories against jaxgd's."""
    rows: list[dict[str, Any]] = []
    histories: dict[str, np.ndarray] = {}
    ran_engines: dict[str, dict] = {}
    for impl in impls:
        if impl.startswith("jaxgd:"):
            engine = impl.split(":")[1]
            if engine in ran_engines:  # auto resolved to it: the very same program
                row = dict(ran_engines[engine], impl=impl, label=f"jaxgd engine={engine}",
                           requested_engine=engine, same_as="jaxgd:auto")
                rows.append(row)
                histories[impl] = histories["jaxgd:auto"]
                continue
            row, history = run_jaxgd(problem, K, T, engine, config, machine)
            if engine == "auto" and history is not None:
                ran_engines[row["engine"]] = row
            if not sweep_options()["engine"] and history is not None:
                ran_engines["direct"] = ran_engines["auto"] = row
        elif impl == "plain-jax":
            row, history = run_plain_jax(problem, K, T, config, machine)
        elif impl == "sklearn-sgd":
            row, history = run_sklearn(problem, K, T, config), None
        else:
            row, history = run_baseline(impl, problem, K, T, config)
        if history is not None:
            histories[impl] = history
        rows.append(annotate(row, problem, machine))
        log(_progress_line(problem, row))
    jaxgd_runs = [row for row in rows if row["impl"] in histories
                  and row["impl"].startswith("jaxgd") and not row.get("same_as")]
    reference_impl = max(jaxgd_runs, key=lambda r: (r["measured_T"], r["engine"] == "direct"),
                         default={"impl": None})["impl"]
    if reference_impl is not None:
        rates = problem.learning_rates(K)
        for row in rows:
            if (row["impl"] in histories and row["impl"] != reference_impl
                    and not row.get("same_as")):
                row["check"] = compare_histories(histories[row["impl"]],
                                                 histories[reference_impl], rates,
                                                 problem.max_learning_rate)
                row["check"]["against"] = reference_impl
    return rows


def _progress_line(problem: Problem, row: dict[str, Any]) -> str:
    where = f"[{problem.name} K={row['K']} T={row['T']}] {row['impl']}"
    if row["skipped"]:
        return f"{where}: {row['skipped']}"
    extra = f" (extrapolated from {row['extrapolated_from']})" if row["extrapolated_from"] else ""
    return f"{where}: {row['median_s']:.4g} s{extra}"


# ---------------------------------------------------------------------------------------------
# Workloads.

WORKLOAD_IMPLS = ("jaxgd:auto", "jaxgd:direct", "jaxgd:gram", "jaxgd:eigen", "numpy", "torch",
                  "torch-autograd", "plain-jax", "sklearn-sgd")


def run_benchmarks(config: BenchConfig = QUICK, log: Callable[[str], None] | None = None,
                   machine: dict[str, Any] | None = None) -> dict[str, Any]:
    """Runs every workload of ``config`` and returns all measurements (JSON-ready).

    Args:
      config: a preset (``QUICK``, ``FULL``, ``SMOKE``) or your own ``BenchConfig``.
      log: called with one line per measurement (default: print to stderr).
      machine: a ``measure_machine`` result to reuse; measured now if None.
    """
    started = time.perf_counter()
    if log is None:
        def log(line: str) -> None:
            print(f"[{time.perf_counter() - started:6.1f} s] {line}", file=sys.stderr,
                  flush=True)

    if machine is None:
        log("measuring the machine's limits ...")
        machine = measure_machine(config.matmul_sizes, config.bandwidth_mb,
                                  config.machine_reps)
    log(f"peak {machine['peak_gflops_f32']:.0f} GFLOP/s float32, "
        f"{machine['peak_gflops_f64']:.0f} float64, {machine['peak_gbs']:.1f} GB/s")
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    cases = [("auto_mpg", K, None, None, config.auto_mpg_steps) for K in config.auto_mpg_ks]
    if config.synthetic is not None:
        n, d, K, T = config.synthetic
        cases.append(("synthetic", K, n, d, T))
    workloads = []
    with BackgroundCPU() as background:
        mpg = auto_mpg_problem()
        for kind, K, n, d, T in cases:
            problem = mpg if kind == "auto_mpg" else synthetic_problem(n, d)
            name = f"auto_mpg K={K}" if kind == "auto_mpg" else f"synthetic n={n} d={d} K={K}"
            with BackgroundCPU() as busy:
                rows = run_problem(problem, K, T, WORKLOAD_IMPLS, config, machine, log)
            workloads.append(_workload(name, problem, K, T, rows, busy.fraction))
            del problem
        with BackgroundCPU() as scaling_busy:
            scaling = run_scaling(config, machine, log)
    results = {
        "schema": 1,
        "mode": config.mode,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": asdict(config),
        "machine": machine,
        "sweep_options": sweep_options(),
        "method": method_notes(config),
        "workloads": workloads,
        "scaling": scaling,
        "background_cpu": background.fraction,
        "scaling_background_cpu": scaling_busy.fraction,
        "loadavg_before": load_before,
    }
    results["targets"] = targets(results)
    results["elapsed_s"] = time.perf_counter() - started
    return results


def _workload(name: str, problem: Problem, K: int, T: int, rows: list[dict],
              background_cpu: float | None) -> dict:
    return {"name": name, "dataset": problem.name, "n": problem.n, "d": problem.d, "K": K,
            "T": T, "background_cpu": background_cpu,
            "max_learning_rate": problem.max_learning_rate,
            "optimal_loss": problem.optimal_loss,
            "work": {e: work(e, problem.n, problem.d, K, T)
                     for e in ("direct", "gram", "eigen")},
            "rows": rows}


def run_scaling(config: BenchConfig, machine: dict[str, Any],
                log: Callable[[str], None]) -> dict[str, list[dict]]:
    """For each axis, vary it from ``scaling_base`` and time ``scaling_impls`` at each value."""
    problems: dict[tuple[int, int], Problem] = {}
    done: dict[tuple[int, int, int, int], list[dict]] = {}
    curves: dict[str, list[dict]] = {}
    for axis, values in config.scaling:
        curves[axis] = []
        for value in values:
            n, d, K, T = _vary(config.scaling_base, axis, value)
            if (n, d, K, T) not in done:
                if (n, d) not in problems:
                    problems[(n, d)] = synthetic_problem(n, d, seed=1)
                rows = run_problem(problems[(n, d)], K, T, config.scaling_impls, config,
                                   machine, log)
                done[(n, d, K, T)] = rows
            for row in done[(n, d, K, T)]:
                curves[axis].append({"value": value, **_slim(row)})
    return curves


def _vary(base: tuple[int, int, int, int], axis: str, value: int):
    n, d, K, T = base
    return {"n": (value, d, K, T), "d": (n, value, K, T), "K": (n, d, value, T),
            "T": (n, d, K, value)}[axis]


def _slim(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("impl", "label", "engine", "n", "d", "K", "T", "median_s", "min_s", "times_s",
            "compile_s",
            "extrapolated_from", "skipped", "gflops", "flops_fraction", "x_limit", "check")
    return {k: row.get(k) for k in keys}


# ---------------------------------------------------------------------------------------------
# Targets.


def _find(results: dict, workload: str, impl: str) -> dict | None:
    for w in results["workloads"]:
        if w["name"] == workload:
            for row in w["rows"]:
                if row["impl"] == impl and row["median_s"] is not None and not row["skipped"]:
                    return row
    return None


def _target(name: str, description: str, measured: float | None, threshold: float | None,
            at_most: bool, detail: str) -> dict[str, Any]:
    if measured is None or threshold is None:
        met = None
    else:
        met = measured <= threshold if at_most else measured >= threshold
    goal = "none given" if threshold is None else f"{'≤' if at_most else '≥'} {threshold:g}"
    return {"name": name, "description": description, "measured": measured, "target": goal,
            "met": met, "detail": detail if measured is not None else "not measured in this mode"}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with its measured ratio and met / missed / not measured."""
    out = []
    big = _find(results, "auto_mpg K=8192", "jaxgd:auto")
    one = _find(results, "auto_mpg K=1", "numpy")
    ratio = big["median_s"] / one["median_s"] if big and one else None
    out.append(_target(
        "a", "Auto MPG: jaxgd K=8192 wall time / NumPy K=1 wall time", ratio,
        TARGET_K8192_VS_NUMPY_K1, True,
        f"{big['median_s']:.4g} s / {one['median_s']:.4g} s" if ratio else ""))
    for impl, threshold, what in (("numpy", TARGET_VS_NUMPY, "NumPy"),
                                  ("plain-jax", TARGET_VS_PLAIN_JAX, "plain JAX")):
        ours = _find(results, "auto_mpg K=1024", "jaxgd:auto")
        theirs = _find(results, "auto_mpg K=1024", impl)
        speedup = theirs["median_s"] / ours["median_s"] if ours and theirs else None
        out.append(_target(
            "b", f"Auto MPG K=1024: {what} time / jaxgd time", speedup, threshold, False,
            f"{theirs['median_s']:.4g} s / {ours['median_s']:.4g} s"
            + (f" ({what} extrapolated from {theirs['extrapolated_from']})"
               if theirs["extrapolated_from"] else "") if speedup else ""))
    synthetic = next((w["name"] for w in results["workloads"]
                      if w["name"].startswith("synthetic")), "synthetic")
    direct = _find(results, synthetic, "jaxgd:direct")
    out.append(_target(
        "c", f"{synthetic}: direct engine time / machine limit",
        direct["x_limit"] if direct else None, TARGET_DIRECT_VS_LIMIT, True,
        f"{direct['median_s']:.4g} s vs limit {direct['limit_s']:.4g} s "
        f"({direct['gflops']:.0f} GFLOP/s, {100 * direct['flops_fraction']:.0f}% of peak)"
        if direct else ""))
    gram = _find(results, synthetic, "jaxgd:gram")
    numpy = _find(results, synthetic, "numpy")
    speedup = numpy["median_s"] / gram["median_s"] if gram and numpy else None
    out.append(_target(
        "c", f"{synthetic}: NumPy time / gram engine time", speedup, TARGET_GRAM_VS_NUMPY,
        False, f"{numpy['median_s']:.4g} s / {gram['median_s']:.4g} s"
        + (f" (NumPy extrapolated from {numpy['extrapolated_from']})"
           if numpy["extrapolated_from"] else "") if speedup else ""))
    compiles = [(w["name"], row["impl"], row["compile_s"]) for w in results["workloads"]
                for row in w["rows"] if row["impl"].startswith("jaxgd") and row.get("compile_s")
                and not row.get("same_as")]
    worst = max(compiles, key=lambda c: c[2]) if compiles else None
    out.append(_target(
        "d", "sweep compile time, seconds (the slowest jaxgd sweep of the workloads)",
        worst[2] if worst else None, TARGET_COMPILE_S, True,
        f"{worst[1]} on {worst[0]}; median of {len(compiles)} sweeps "
        f"{np.median([c[2] for c in compiles]):.3g} s" if worst else ""))
    machine = results["machine"]
    on_gpu = machine["jax_backend"] == "gpu"
    out.append({"name": "GPU", "description": "the same workloads on a GPU",
                "measured": machine["device_kind"] if on_gpu else None, "target": "—",
                "met": None,
                "detail": "every workload above ran on it" if on_gpu else
                          f"not measured here (JAX backend {machine['jax_backend']}); "
                          "BENCHMARKS.md's GPU section has a run on a GPU"})
    return out


# ---------------------------------------------------------------------------------------------
# Report.

def method_notes(config: BenchConfig) -> dict[str, str]:
    """How ``config`` measures, in words, for the report and the JSON."""
    return {
        "work": "Plain full-batch gradient descent on the MSE, from zeros, constant learning "
                f"rate, K learning rates log-spaced over [{LR_LOW:g}, {LR_HIGH:g}]×2/λmax, T "
                "steps, the full (K, T) loss history kept.",
        "timing": "time.perf_counter around the whole call, blocked until results are ready. "
                  "The first call is timed apart; its compile time is what JAX reports "
                  "(jaxgd.timing.timed). The time reported is the median of up to "
                  f"{config.repeats} steady-state calls after it, at least "
                  f"{config.min_repeats}, more while they fit {config.budget_s:g} s"
                  + ("; a run with no repeat is timed as its first call minus its compile "
                     "time" if config.min_repeats == 0 else "") + ".",
        "extrapolation": "A NumPy or PyTorch run that would take more than "
                         f"{config.baseline_budget_s:g} s (judged from a one-step probe), and "
                         "a compiled X·θ-every-step run (jaxgd direct, plain JAX) that the "
                         f"work model at {PLANNING_EFFICIENCY:g} of peak says would take more "
                         f"than {config.compiled_budget_s:g} s, runs fewer steps and its time "
                         "is scaled linearly to T: marked 'extrapolated from T=…'. Each of "
                         "these loops does the same work every step (the fixed per-call cost "
                         "is scaled too, which can only overstate the time).",
        "memory": "Peak growth of the resident set during the first call (compilation "
                  "included), sampled from /proc/self/statm every 2 ms; memory an allocator "
                  "kept from earlier and reused is not counted.",
        "work_model": "direct: 4·n·(d+1)·K flops and itemsize·(2nd + n + 2nK) bytes per step; "
                      "gram: 4·(d+1)²·K flops per step plus 2·n·(d+1)² once; eigen: "
                      "6·(d+1)·K flops per step plus the same moments once. Limit = "
                      "max(flops / peak matmul GFLOP/s, bytes / peak GB/s), with the float32 "
                      "peak (float64 for NumPy) measured in the same run; '% peak' is achieved "
                      "GFLOP/s over that peak.",
        "check": "Every history is compared with the longest jaxgd history of the same "
                 "workload (the direct engine's when it ran every step) over the steps both "
                 f"ran, on converging rates: |a − b| ≤ {RTOL:g}·|b| + {ATOL:g}·loss₀ "
                 "(float32 resolves the loss to about 1e-7 of its initial size).",
        "sklearn": "SGDRegressor(learning_rate='constant', eta0=rate, penalty=None, tol=None, "
                   f"shuffle=False) on {config.sklearn_rates} rates spread over the range, "
                   "one partial_fit epoch at a time, until the MSE is within 1% of the "
                   f"least-squares loss, it diverges, or {config.sklearn_rate_budget_s:g} s "
                   "pass for that rate; its total for K rates is the mean per rate times K. "
                   "A different algorithm (per-sample updates): a time to target, not to T "
                   "steps.",
        "contention": "The share of the CPUs used by other processes is measured over each "
                      "workload (/proc/stat minus this process's CPU time); above "
                      f"{100 * BUSY_WARNING:.0f}% the report warns. Multi-threaded BLAS and "
                      "OpenMP (NumPy, PyTorch) slow down far more than XLA when a core is "
                      "taken.",
    }


_TABLE_HEAD = ("implementation", "K×T run", "time (s)", "compile (s)", "peak MB",
               "GFLOP/s", "% peak", "× limit", "history check")


def _fmt(value, spec: str = ".3g", none: str = "—") -> str:
    return none if value is None else format(value, spec)


def _table_row(row: dict[str, Any]) -> tuple[str, ...]:
    label = row.get("label") or row["impl"]
    if row["skipped"]:
        return (label, "—", row["skipped"], "—", "—", "—", "—", "—", "—")
    ran = f"{row['measured_K']}×{row['measured_T']}"
    if row["impl"] == "sklearn-sgd":
        ran = f"{row['measured_K']} rates, ≤{row['rate_budget_s']:g} s each"
    time_s = _fmt(row["median_s"], ".4g")
    if row["extrapolated_from"]:
        time_s += f" (extrapolated from {row['extrapolated_from']})"
    if row.get("same_as"):
        time_s += f" (same program as {row['same_as']})"
    if row["impl"] == "sklearn-sgd":
        time_s += f"; {row['reached']}/{row['tried']} rates reached 1%"
        if row["diverged"]:
            time_s += f", {row['diverged']} diverged"
        gaps = [g for g in row["best_gap"] if math.isfinite(g)]
        if gaps and row["reached"] < row["tried"]:
            time_s += f"; median best gap {np.median(gaps):.2g}"
    check = row.get("check")
    verdict = "—" if check is None else (
        f"{'ok' if check['ok'] else 'MISMATCH'} (max rel {_fmt(check['max_rel_err'], '.1e')})")
    pct = row.get("flops_fraction")
    return (label, ran, time_s, _fmt(row.get("compile_s"), ".3g"),
            _fmt(row.get("peak_rss_mb"), ".0f"), _fmt(row.get("gflops"), ".3g"),
            _fmt(None if pct is None else 100 * pct, ".1f"), _fmt(row.get("x_limit"), ".2g"),
            verdict)


def markdown_table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def workload_table(workload: dict[str, Any]) -> str:
    return markdown_table(_TABLE_HEAD, [_table_row(r) for r in workload["rows"]])


def targets_table(results: dict[str, Any]) -> str:
    rows = []
    for t in results["targets"]:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        if t["met"] is None and t["measured"] is not None:
            verdict = "reported"
        measured = t["measured"] if isinstance(t["measured"], str) else _fmt(t["measured"], ".3g")
        rows.append((t["name"], t["description"], measured, t["target"],
                     verdict, t["detail"]))
    return markdown_table(("", "target", "measured", "goal", "verdict", "how"), rows)


def machine_lines(machine: dict[str, Any]) -> list[str]:
    v = machine["versions"]
    return [
        f"- CPU: {machine['cpu']}, {machine['cores']} cores ({machine['cores_usable']} usable), "
        f"{machine.get('memory_gb')} GB",
        f"- JAX backend: {machine['jax_backend']} ({', '.join(machine['devices'])})",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- peak matmul: {machine['peak_gflops_f32']:.0f} GFLOP/s float32, "
        f"{machine['peak_gflops_f64']:.0f} GFLOP/s float64 (best of NumPy and JAX over "
        f"sizes {', '.join(machine['matmul_gflops_f32'])})",
        f"- memory bandwidth: {machine['peak_gbs']:.1f} GB/s (best of "
        + ", ".join(f"{k} {val:.1f}" for k, val in machine["bandwidth_gbs"].items()) + ")",
    ]


def report_text(results: dict[str, Any], plot_name: str | None = None) -> str:
    """The markdown report: machine, method, one table per workload, targets, scaling."""
    out = [f"# jaxgd benchmarks ({results['mode']} mode)", "",
           f"Measured {results['created']} in {results.get('elapsed_s', 0):.0f} s. "
           "Regenerate with `python -m benchmarks.run --full --write-md` (or "
           "`jaxgd bench --full`).", "", "## Machine", "", *machine_lines(results["machine"]),
           ""]
    background = results.get("background_cpu")
    if background is not None and background > BUSY_WARNING:
        out += [f"**Other processes used {100 * background:.0f}% of the CPUs during this run**: "
                "every time below is slower than on a quiet machine.", ""]
    out += ["## Method", ""]
    out += [f"- **{k}**: {v}" for k, v in results["method"].items()]
    options = results["sweep_options"]
    out += ["- **jaxgd.sweep arguments present**: "
            + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in options.items()), ""]
    out += ["## Targets", "", targets_table(results), ""]
    for w in results["workloads"]:
        out += [f"## {w['name']}, T={w['T']}", "",
                f"n={w['n']}, d={w['d']}; learning rates up to "
                f"{LR_HIGH * w['max_learning_rate']:.4g} (2/λmax = "
                f"{w['max_learning_rate']:.4g}); least-squares loss {w['optimal_loss']:.6g}. "
                f"Work per step: direct {w['work']['direct']['flops_per_step']:.3g} flops, "
                f"gram {w['work']['gram']['flops_per_step']:.3g} flops."
                + _busy_note(w), "",
                workload_table(w), ""]
    out += ["## Scaling", ""]
    busy = results.get("scaling_background_cpu")
    if busy is not None and busy > BUSY_WARNING:
        out += [f"Other processes used {100 * busy:.0f}% of the CPUs meanwhile: times are "
                "inflated.", ""]
    if plot_name:
        out += [f"![scaling curves]({plot_name})", ""]
    for axis, points in results["scaling"].items():
        out += [f"### {axis}", "", markdown_table(
            (axis, "implementation", "time (s)", "GFLOP/s", "× limit"),
            [(str(p["value"]), p.get("label") or p["impl"],
              _fmt(p["median_s"], ".4g") + (f" (extrapolated from {p['extrapolated_from']})"
                                             if p["extrapolated_from"] else ""),
              _fmt(p.get("gflops"), ".3g"), _fmt(p.get("x_limit"), ".2g"))
             for p in points if not p["skipped"]]), ""]
    return "\n".join(out)


def plot_scaling(results: dict[str, Any], path: Path) -> bool:
    """Draws the scaling curves (time against each axis, log-log) to a PNG; False without
    matplotlib. Written atomically."""
    if _optional("matplotlib") is None:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_data = results["scaling"]
    columns = min(2, max(1, len(axes_data)))
    rows = -(-max(1, len(axes_data)) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.8 * rows), squeeze=False)
    base = results["config"]["scaling_base"]
    for ax, (axis, points) in zip(axes.flat, axes_data.items(), strict=False):
        for impl in dict.fromkeys(p["impl"] for p in points):
            mine = [p for p in points if p["impl"] == impl and p["median_s"]]
            if mine:
                ax.plot([p["value"] for p in mine], [p["median_s"] for p in mine], "o-",
                        label=(mine[0].get("label") or impl).replace("jaxgd engine=", "jaxgd "))
        ax.set_xscale("log")
        ax.set_yscale("log")
        values = sorted({p["value"] for p in points})
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.minorticks_off()
        ax.set_xlabel(axis)
        ax.set_ylabel("seconds (median run)")
        ax.grid(True, alpha=0.3)
        fixed = ", ".join(f"{k}={v}" for k, v in zip("ndKT", base, strict=True) if k != axis)
        ax.set_title(f"vary {axis} ({fixed})", fontsize=9)
    for ax in list(axes.flat)[len(axes_data):]:
        ax.set_visible(False)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"jaxgd scaling, {results['machine']['cpu']} ({results['mode']} mode)",
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(temporary, dpi=110)
    plt.close(fig)
    os.replace(temporary, path)
    return True


def write_atomic(path: Path, text: str) -> None:
    """Writes ``text`` to a temporary file beside ``path``, then renames it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def to_json(results: dict[str, Any]) -> str:
    return json.dumps(results, indent=1, default=_jsonable)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serializable: {type(value).__name__}")


def write_outputs(results: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Writes ``bench.json``, ``report.md`` and ``scaling.png`` (with matplotlib) to a folder."""
    out_dir = Path(out_dir)
    written = {"json": out_dir / "bench.json", "report": out_dir / "report.md"}
    write_atomic(written["json"], to_json(results))
    plot = out_dir / "scaling.png"
    drawn = plot_scaling(results, plot)
    if drawn:
        written["plot"] = plot
    write_atomic(written["report"], report_text(results, plot.name if drawn else None))
    return written


def _busy_note(workload: dict[str, Any]) -> str:
    busy = workload.get("background_cpu")
    if busy is None or busy <= BUSY_WARNING:
        return ""
    return f" Other processes used {100 * busy:.0f}% of the CPUs meanwhile: times are inflated."


def summary_text(results: dict[str, Any]) -> str:
    """What ``jaxgd bench`` prints: a table per workload and the targets."""
    out = []
    for w in results["workloads"]:
        out += [f"## {w['name']}, T={w['T']} (n={w['n']}, d={w['d']}){_busy_note(w)}",
                workload_table(w), ""]
    out += ["## Targets", targets_table(results)]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Command line.


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Registers ``jaxgd bench [--full] [--out DIR]`` on the CLI's subparsers."""
    parser = subparsers.add_parser(
        "bench", help="time jaxgd against NumPy, PyTorch, plain JAX and scikit-learn",
        description="Benchmark jaxgd's sweeps against the same gradient descent written in "
                    "NumPy, PyTorch, plain JAX and scikit-learn, and against this machine's "
                    "measured limits. Quick (~3 min on 2 cores) unless --full (~20 min).")
    parser.add_argument("--full", action="store_true",
                        help="more repeats, larger scaling curves, fewer extrapolations")
    parser.add_argument("--out", metavar="DIR",
                        help="also write bench.json, report.md and scaling.png here")
    parser.set_defaults(handler=main)
    return parser


def main(args: argparse.Namespace) -> int:
    """Runs the benchmark, prints the tables and targets, writes ``--out`` if given."""
    config = FULL if getattr(args, "full", False) else QUICK
    results = run_benchmarks(config)
    print(summary_text(results))
    if getattr(args, "out", None):
        for path in write_outputs(results, Path(args.out)).values():
            print(f"wrote {path}")
    return 0


__all__ = [
    "FULL",
    "QUICK",
    "SMOKE",
    "BenchConfig",
    "add_parser",
    "bytes_per_step",
    "flops_per_step",
    "jaxgd_sweep",
    "main",
    "measure_machine",
    "numpy_gd",
    "plain_jax_gd",
    "run_benchmarks",
    "sklearn_sgd",
    "targets",
    "torch_autograd_gd",
    "torch_gd",
    "write_outputs",
]
