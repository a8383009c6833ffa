"""This machine's limits, measured in the same run: peak matmul GFLOP/s (NumPy and JAX) and
memory bandwidth, and its description (CPU, cores, JAX backend and devices, versions)."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxgd
from jaxgd._bench.baselines import optional
from jaxgd._bench.measure import BackgroundCPU


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
        module = optional(name)
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
