"""Sweeps spread over 4 CPU devices equal single-device sweeps (run in a subprocess, since the
device count is fixed when JAX starts)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from tests.ulps import assert_close_ulps

SCRIPT = textwrap.dedent("""
    import json, sys
    import jax, numpy as np, jaxgd
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3)); y = X @ [1.0, -2.0, 0.5] + 0.3
    out, eigen = {"devices": jax.device_count()}, {}
    for rates in ([0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.01, 0.1, 0.2, 0.3, 0.5, 0.7]):
        for engine in ("eigen", "gram", "direct"):
            one = jaxgd.sweep(X, y, learning_rates=rates, num_steps=50, engine=engine,
                              placement=jaxgd.Placement(sharding="none"))
            four = jaxgd.sweep(X, y, learning_rates=rates, num_steps=50, engine=engine)
            key = f"{len(rates)}-{engine}"
            if engine == "eigen":
                eigen[key + "-one"], eigen[key + "-four"] = one.losses, four.losses
            out[key + "-close"] = bool(np.allclose(one.losses, four.losses, rtol=1e-5,
                                                   atol=1e-5))
            out[key + "-spans"] = len(four.losses.sharding.device_set)
    rows = jaxgd.sweep(X, y, learning_rates=[0.1, 0.2], num_steps=50, engine="direct",
                       placement=jaxgd.Placement(sharding="rows"))
    one = jaxgd.sweep(X, y, learning_rates=[0.1, 0.2], num_steps=50, engine="direct",
                      placement=jaxgd.Placement(sharding="none"))
    out["rows-close"] = bool(np.allclose(rows.losses, one.losses, rtol=1e-5, atol=1e-5))
    np.savez(sys.argv[1], **eigen)
    print(json.dumps(out))
""")


def test_sweeps_sharded_over_four_devices_equal_one_device(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu",  # host devices, also on a GPU machine
           "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "eigen.npz")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["devices"] == 4
    # 8 runs fill 4 devices evenly: the results really live on all 4 of them.
    assert out["8-gram-spans"] == out["8-direct-spans"] == out["8-eigen-spans"] == 4
    # Each device runs the same program on its share of the runs; the engines' shared matrix
    # products may sum in another order for a narrower share: rtol 1e-5. These data fit
    # exactly (loss -> 0), where the gram loss is rounding noise of its O(var y) ~ 5 terms:
    # a few ulps of 5, hence atol 1e-5.
    assert out["8-gram-close"] and out["6-gram-close"]  # 6 runs: padded to 8, then trimmed
    # The eigen engine's step is elementwise along the runs, but a device's share is a
    # program of another batch size, which XLA may vectorize otherwise (bit for bit on some
    # CPUs, not on all). As segments re-packed to other batch sizes (test_segments): a
    # 1-ulp change of the learning rate, a bias at every step, moves these histories by up
    # to 93 ulps, so within 128.
    eigen = np.load(tmp_path / "eigen.npz")
    for key in ("8-eigen", "6-eigen"):
        assert_close_ulps(eigen[key + "-four"], eigen[key + "-one"], 128, err_msg=key)
    assert out["8-direct-close"] and out["6-direct-close"]
    assert out["rows-close"]  # rows split over devices, gradient summed across them


def test_use_every_core_sets_the_host_device_count_once(monkeypatch):
    from jaxgd.pipeline.sharding import use_every_core

    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1, 2}, raising=False)
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
    assert use_every_core()
    assert os.environ["XLA_FLAGS"] == ("--xla_cpu_enable_fast_math=false "
                                       "--xla_force_host_platform_device_count=3")
    assert not use_every_core()  # a count already set (by us or the user) is kept
    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0}, raising=False)
    assert not use_every_core() and os.environ["XLA_FLAGS"] == ""  # one core: nothing to do


def test_the_command_line_uses_every_core():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", PYTHONPATH=str(Path(__file__).parents[2]))
    done = subprocess.run([sys.executable, "-m", "jaxgd", "info"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    devices = next(line for line in done.stdout.splitlines() if line.startswith("devices"))
    assert devices.count("cpu:") == max(cores, 1)
