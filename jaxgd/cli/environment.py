"""The software and the machine a run ran on: versions, backend and devices.

``jaxgd info`` prints them, summary.json records them, and a checkpoint's fingerprint
compares them (chunks from another setup would not match bit for bit).
"""

from __future__ import annotations

import platform
from typing import Any

import jax
import numpy as np
import optax


def versions() -> dict[str, str]:
    """Versions of jaxgd, JAX, jaxlib, optax, NumPy and Python."""
    import jaxlib

    import jaxgd

    return {"jaxgd": jaxgd.__version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "optax": optax.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def device_info() -> dict[str, Any]:
    """The default backend and its devices."""
    devices = jax.devices()
    return {"backend": jax.default_backend(), "device_kind": devices[0].device_kind,
            "devices": [str(d) for d in devices]}
