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
from jaxgd._version import __version__ as __version__
from jaxgd.core.convergence import Monitor
from jaxgd.core.descent import descend
from jaxgd.core.model import mse, predict
from jaxgd.core.params import LinearParams, init_params
from jaxgd.core.record import Descent
from jaxgd.data.scaling import Standardizer, standardize_params, unstandardize_params
from jaxgd.fit import fit
from jaxgd.grid import grid_sweep
from jaxgd.results.loading import load
from jaxgd.results.result import FitResult, GridResult, SweepResult
from jaxgd.sweep import sweep
from jaxgd.theory.least_squares import LeastSquares, solve
from jaxgd.theory.stability import Stability, stability
from jaxgd.theory.trajectory import Trajectory, exact_trajectory
from jaxgd.tuning.holdout import held_out, validation_loss
from jaxgd.tuning.lr_range import LrRange, lr_range

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
    "held_out",
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
    "validation_loss",
]
