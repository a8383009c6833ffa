"""jaxgd: linear regression by gradient descent in JAX, compiled and vmapped.

Example:
  >>> import jaxgd
  >>> data = jaxgd.datasets.mlcc_cars()
  >>> result = jaxgd.fit(data.X, data.y, learning_rate=0.05, num_steps=5000)
  >>> round(float(result.final_loss), 2), bool(result.converged)
  (1.47, True)
"""

# First, before JAX loads: in the jaxgd command itself, Ctrl-C and SIGTERM become a request
# to stop that is never lost (see jaxgd._signals); elsewhere this changes nothing.
from jaxgd import _signals, datasets  # noqa: F401  (_signals: imported for its effect)
from jaxgd.convergence import Monitor
from jaxgd.descent import descend
from jaxgd.fit import fit
from jaxgd.grid import grid_sweep
from jaxgd.least_squares import LeastSquares, solve
from jaxgd.lr_range import LrRange, lr_range
from jaxgd.model import mse, predict
from jaxgd.params import LinearParams, init_params
from jaxgd.result import Descent, FitResult, GridResult, SweepResult
from jaxgd.saving import load
from jaxgd.scaling import Standardizer, standardize_params, unstandardize_params
from jaxgd.stability import Stability, stability
from jaxgd.sweep import sweep
from jaxgd.trajectory import Trajectory, exact_trajectory

__version__ = "0.1.0"

__all__ = [
    "Descent",
    "FitResult",
    "GridResult",
    "LeastSquares",
    "LinearParams",
    "LrRange",
    "Monitor",
    "Stability",
    "Standardizer",
    "SweepResult",
    "Trajectory",
    "datasets",
    "descend",
    "exact_trajectory",
    "fit",
    "grid_sweep",
    "init_params",
    "load",
    "lr_range",
    "mse",
    "predict",
    "solve",
    "stability",
    "standardize_params",
    "sweep",
    "unstandardize_params",
]
