"""Two processes on 127.0.0.1 (CPU collectives) run one sharded sweep over their 4 devices
together, and get the single-process numbers."""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

import jaxgd

ROOT = Path(__file__).parents[2]
WORKER = textwrap.dedent("""
    import json, sys
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=sys.argv[1], num_processes=2,
                               process_id=int(sys.argv[2]))
    import numpy as np, jaxgd
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3)); y = X @ [1.0, -2.0, 0.5] + 0.3
    result = jaxgd.sweep(X, y, learning_rates=[0.01, 0.05, 0.1, 0.2, 0.3, 0.4], seeds=[0, 1],
                         num_steps=40)
    if jax.process_index() == 0:
        print(json.dumps({"devices": jax.device_count(), "local": jax.local_device_count(),
                          "losses": np.asarray(result.losses).tolist()}))
    jax.distributed.shutdown()
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_run_one_sweep_over_the_global_mesh():
    env = {**os.environ, "JAX_PLATFORMS": "cpu",  # host devices, also on a GPU machine
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "PYTHONPATH": str(ROOT)}
    address = f"127.0.0.1:{free_port()}"
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, address, str(i)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in range(2)]
    outputs = [w.communicate(timeout=240) for w in workers]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err[-3000:]
    out = json.loads(outputs[0][0].strip().splitlines()[-1])
    assert out["devices"] == 4 and out["local"] == 2
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.3
    alone = jaxgd.sweep(X, y, learning_rates=[0.01, 0.05, 0.1, 0.2, 0.3, 0.4], seeds=[0, 1],
                        num_steps=40, placement=jaxgd.Placement(sharding="none"))
    # Each process's devices run a share of the runs: float32 rounding apart, rtol 1e-5; the
    # data fit exactly, so near the end the gram loss is rounding noise of var(y) ~ 5 terms.
    np.testing.assert_allclose(np.asarray(out["losses"], np.float32), alone.losses, rtol=1e-5,
                               atol=1e-5)
