"""jaxgd: linear regression by gradient descent in JAX, compiled and vmapped.

Example:
  >>> import jaxgd
  >>> data = jaxgd.datasets.mlcc_cars()
  >>> result = jaxgd.fit(data.X, data.y, learning_rate=0.05, num_steps=5000)
  >>> round(float(result.final_loss), 2), bool(result.converged)
  (1.47, True)
"""

import importlib
from typing import TYPE_CHECKING

# First, before JAX loads: in the jaxgd command itself, Ctrl-C and SIGTERM become a request
# to stop that is never lost (see jaxgd._signals); elsewhere this changes nothing.
from jaxgd import _signals  # noqa: F401  (imported for its effect)
from jaxgd._version import __version__ as __version__

#: Where each public name lives ("module:name", or a module), loaded when first used (PEP 562):
#: ``import jaxgd`` loads no JAX, and ``import jaxgd.core`` loads no engine, tuning or data
#: module, because the package's own import runs nothing above what is asked for.
_PUBLIC = {
    "Descent": "jaxgd.core.record:Descent",
    "FitResult": "jaxgd.results.result:FitResult",
    "GridResult": "jaxgd.results.result:GridResult",
    "Halving": "jaxgd.api.settings:Halving",
    "Holdout": "jaxgd.api.settings:Holdout",
    "KFolds": "jaxgd.api.settings:KFolds",
    "LeastSquares": "jaxgd.theory.least_squares:LeastSquares",
    "LinearParams": "jaxgd.core.params:LinearParams",
    "LrRange": "jaxgd.api.lr_range:LrRange",
    "Model": "jaxgd.core.custom_model:Model",
    "MiniBatches": "jaxgd.api.settings:MiniBatches",
    "Monitor": "jaxgd.core.convergence:Monitor",
    "Optimizer": "jaxgd.api.settings:Optimizer",
    "Placement": "jaxgd.api.settings:Placement",
    "Record": "jaxgd.api.settings:Record",
    "Sample": "jaxgd.api.settings:Sample",
    "Stability": "jaxgd.theory.stability:Stability",
    "Standardizer": "jaxgd.data.scaling:Standardizer",
    "Stopping": "jaxgd.api.settings:Stopping",
    "SweepResult": "jaxgd.results.result:SweepResult",
    "Trajectory": "jaxgd.theory.trajectory:Trajectory",
    "datasets": "jaxgd.datasets",
    "descend": "jaxgd.core.descent:descend",
    "exact_trajectory": "jaxgd.theory.trajectory:exact_trajectory",
    "fit": "jaxgd.api.fit:fit",
    "grid_sweep": "jaxgd.api.grid:grid_sweep",
    "held_out": "jaxgd.pipeline.holdout:held_out",
    "init_params": "jaxgd.core.params:init_params",
    "load": "jaxgd.results.loading:load",
    "lr_range": "jaxgd.api.lr_range:lr_range",
    "mse": "jaxgd.core.model:mse",
    "predict": "jaxgd.core.model:predict",
    "solve": "jaxgd.theory.least_squares:solve",
    "stability": "jaxgd.theory.stability:stability",
    "standardize_params": "jaxgd.data.scaling:standardize_params",
    "sweep": "jaxgd.api.sweep:sweep",
    "unstandardize_params": "jaxgd.data.scaling:unstandardize_params",
    "validation_loss": "jaxgd.pipeline.holdout:validation_loss",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    where = _PUBLIC.get(name)
    if where is None:
        raise AttributeError(f"module 'jaxgd' has no attribute {name!r}")
    module, _, attribute = where.partition(":")
    value = importlib.import_module(module)
    if attribute:
        value = getattr(value, attribute)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # the same names for type checkers and editors (tests/package/test_layers.py)
    from jaxgd import datasets as datasets
    from jaxgd.api.fit import fit as fit
    from jaxgd.api.grid import grid_sweep as grid_sweep
    from jaxgd.api.lr_range import LrRange as LrRange
    from jaxgd.api.lr_range import lr_range as lr_range
    from jaxgd.api.settings import Halving as Halving
    from jaxgd.api.settings import Holdout as Holdout
    from jaxgd.api.settings import KFolds as KFolds
    from jaxgd.api.settings import MiniBatches as MiniBatches
    from jaxgd.api.settings import Optimizer as Optimizer
    from jaxgd.api.settings import Placement as Placement
    from jaxgd.api.settings import Record as Record
    from jaxgd.api.settings import Sample as Sample
    from jaxgd.api.settings import Stopping as Stopping
    from jaxgd.api.sweep import sweep as sweep
    from jaxgd.core.convergence import Monitor as Monitor
    from jaxgd.core.custom_model import Model as Model
    from jaxgd.core.descent import descend as descend
    from jaxgd.core.model import mse as mse
    from jaxgd.core.model import predict as predict
    from jaxgd.core.params import LinearParams as LinearParams
    from jaxgd.core.params import init_params as init_params
    from jaxgd.core.record import Descent as Descent
    from jaxgd.data.scaling import Standardizer as Standardizer
    from jaxgd.data.scaling import standardize_params as standardize_params
    from jaxgd.data.scaling import unstandardize_params as unstandardize_params
    from jaxgd.pipeline.holdout import held_out as held_out
    from jaxgd.pipeline.holdout import validation_loss as validation_loss
    from jaxgd.results.loading import load as load
    from jaxgd.results.result import FitResult as FitResult
    from jaxgd.results.result import GridResult as GridResult
    from jaxgd.results.result import SweepResult as SweepResult
    from jaxgd.theory.least_squares import LeastSquares as LeastSquares
    from jaxgd.theory.least_squares import solve as solve
    from jaxgd.theory.stability import Stability as Stability
    from jaxgd.theory.stability import stability as stability
    from jaxgd.theory.trajectory import Trajectory as Trajectory
    from jaxgd.theory.trajectory import exact_trajectory as exact_trajectory
