"""Host-side preparation of a run, at the edge around the traced core (``jaxgd.pipeline.training``).

Checks of the data and settings (values where they are concrete, shapes and dtypes always),
the engine's choice from shapes and its data, and the float64 reference loss with its
conditioning warning. Nothing here runs inside the compiled loop; everything is skipped or
reduced to shape checks for values the caller traces.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxgd.core.optimizers import OptimizerSpec, check_hyperparameter
from jaxgd.data import memo
from jaxgd.data.statistics import SufficientStats, sufficient_statistics
from jaxgd.engines import engine as engines
from jaxgd.inputs.validation import (
    check_data,
    check_learning_rate,
    check_mapping,
    check_non_negative,
    check_seed,
    default_float,
    is_traced,
    warn,
)
from jaxgd.pipeline import streaming
from jaxgd.pipeline.options import Options, RunConfig, criteria
from jaxgd.theory.least_squares import solve
from jaxgd.theory.stability import has_exact_limit, limit_factor, stability


def check_hyperparameters(hyperparameters: Mapping[str, Any] | None, l2: float,
                          spec: OptimizerSpec) -> dict[str, float]:
    """Fixed hyperparameter values: the optimizer's defaults, overridden, plus l2."""
    values = spec.defaults()
    check_mapping(hyperparameters, "hyperparameters", "{'b1': 0.5}")
    for name, value in (hyperparameters or {}).items():
        if name in ("learning_rate", "seed", "l2"):
            raise ValueError(f"give {name} as its own argument, not in hyperparameters")
        if is_traced(value):  # a tracer of the caller: a scalar, its value unknown
            check_hyperparameter(name, None, spec)
            values[name] = value
            continue
        check_hyperparameter(name, value, spec)
        values[name] = float(value)
    values["l2"] = check_non_negative(l2, "l2")
    return values


def fixed_values(options: Options, spec: OptimizerSpec,
                 axes: tuple[str, ...] = ()) -> dict[str, Any]:
    """The values every run shares, checked: the optimizer's and schedule's hyperparameters
    (defaults overridden), l2, ``tol``, ``divergence_factor``, and the learning rate and
    seeds where they are not grid ``axes``. Traced values pass as they are."""
    if options.learning_rate is not None and "learning_rate" in axes:
        raise ValueError("learning_rate is both varied (a grid axis, or sampled) and a fixed "
                         "value: give one")
    l2 = 0.0 if "l2" in axes else options.l2
    fixed = check_hyperparameters(options.hyperparameters, l2, spec)
    fixed.update(criteria(options.tol, options.divergence_factor))
    if "learning_rate" not in axes:
        if options.learning_rate is None:
            raise ValueError("give learning_rate, or put learning_rate in the grid")
        fixed["learning_rate"] = check_learning_rate(options.learning_rate)
    fixed["seed"] = check_seed(options.seed)
    if options.batch_seed is not None and "batch_seed" not in axes:
        fixed["batch_seed"] = check_seed(options.batch_seed, "batch_seed")
    return fixed


def check_inputs(X, y) -> tuple[Any, Any, int]:
    """Checks arrays (X, y), or sufficient statistics with y None; returns them and n."""
    if isinstance(X, streaming.Streamed):  # an opened RowSource (see jaxgd.pipeline.streaming)
        return X, None, X.n
    if isinstance(X, SufficientStats):
        if y is not None:
            raise ValueError("with sufficient statistics as the data, y must be None: the "
                             "statistics already describe the targets")
        return X, None, int(X.n)
    X, y = check_data(X, y)
    check_range(X, y)
    return X, y, X.shape[0]


def check_range(X, y) -> None:
    """Data whose squares lie beyond the range of the float dtype the run computes in: the
    loss (a mean of squares) or the moments would be inf from the start.

    y is always checked (one pass over n values); X only when it comes in a wider dtype than
    the run's (a pass over X that a float32 X in a float32 run is spared; its moments are
    still checked when an engine makes them, ``jaxgd.data.statistics.device_array``).
    """
    dtype = default_float()
    if is_traced((X, y)):
        return
    limit = float(np.sqrt(np.finfo(dtype).max))
    fix = ("rescale them, or compute in float64 (JAX_ENABLE_X64=1, or "
           "jax.config.update('jax_enable_x64', True))")
    if np.finfo(dtype).max < np.finfo(X.dtype).max:
        columns = np.flatnonzero(np.abs(X).max(axis=0) > limit)
        if columns.size:
            raise ValueError(f"X has values whose squares exceed {dtype}'s range (|x| > "
                             f"{limit:.3g}) in columns {', '.join(map(str, columns[:10]))}: "
                             f"{fix}")
    if np.abs(y).max() > limit:
        raise ValueError(f"y has values whose squares (the loss) exceed {dtype}'s range "
                         f"(|y| > {limit:.3g}): {fix}")


def device_data(X, y, engine_name: str, config: RunConfig, num_runs: int,
                l2: float | None = 0.0, folds_traced: bool = False):
    """Picks the engine (``choose_engine``) and prepares what it reads on device.

    ``X`` and ``y`` are as ``check_inputs`` returned them (checked already: a second pass
    over a million rows would cost as much as the run's float64 moments). ``l2`` is the
    ridge strength every run shares, or None when it varies across runs.

    Returns:
      (engine that will run, its data in JAX's default float dtype).
    """
    chosen = choose_engine(X, y, engine_name, config, num_runs, l2, folds_traced)
    if isinstance(X, streaming.Streamed):  # rows in a file
        if config.batch_size is not None:  # read batch by batch
            return chosen, streaming.device_data(X)
        X = X.stats  # full batch: the file's moments are all it takes
    l2 = 0.0 if l2 is None else l2
    if is_traced((X, y, l2)):
        return chosen, engines.prepare(chosen, X, y, l2=l2)
    # The same data again (by content, see jaxgd.data.memo): its moments are on the device already.
    kind = ("prepare", chosen, float(l2), default_float().name)
    return chosen, memo.cached(kind, [X, y], lambda: engines.prepare(chosen, X, y, l2=l2))


def choose_engine(X, y, engine_name: str, config: RunConfig, num_runs: int,
                  l2: float | None = 0.0, folds_traced: bool = False) -> str:
    """The engine that will run, for the data ``X``, ``y`` (``pick_engine``, from their kind
    and shape). ``folds_traced``: k-fold runs under the caller's transformation, which take
    the scan path of a fused engine.
    """
    if isinstance(X, streaming.Streamed):  # rows in a file
        kind = "file" if config.batch_size is not None else "moments"
        X = X.stats if config.batch_size is None else X
    else:
        kind = "moments" if isinstance(X, SufficientStats) else "rows"
    n_rows, n_features = ((int(X.n), X.mean_x.shape[0]) if kind == "moments" else
                          (int(X.n), 0) if kind == "file" else X.shape)
    chosen = pick_engine(kind, engine_name, config, n_rows, n_features, num_runs, l2,
                         is_traced((X, y)))
    if folds_traced:
        # Under the caller's transformation the kernel's per-run fold constants do not
        # lower through jax.grad yet: the folds take the same engine's scan path (the same
        # numbers; the kernel differentiates through it anyway).
        chosen = chosen.removesuffix("-fused")
    return chosen


def pick_engine(kind: str, engine_name: str, config: RunConfig, n_rows: int, n_features: int,
                num_runs: int, l2: Any = 0.0, traced: bool = False) -> str:
    """The engine that will run: every rule of the choice in one place, from the data's
    ``kind`` alone ("rows" in memory, their "moments", or rows read batch by batch from a
    "file") and their size. Mini-batches are rows (the direct engine); sufficient
    statistics have none (a moment engine); the rest by cost and exactness
    (``jaxgd.engines.engine.choose_engine``). ``l2``: the one every run shares, None where
    it varies across runs.
    """
    if kind == "file":  # read batch by batch
        _check_minibatch_engine(engine_name)
        return "direct"
    streamed = kind == "moments"  # data larger than memory: only the moments
    if streamed and engine_name == "direct":
        raise ValueError("engine='direct' computes the loss from the rows, and data given as "
                         "sufficient statistics have none: they train with the gram or eigen "
                         "engine only (or 'auto')")
    if streamed and config.batch_size is not None:
        raise ValueError("batch_size: mini-batch SGD draws its batches from the rows, and data "
                         "given as sufficient statistics have none: they train with the gram "
                         "or eigen engine only, in full batches")
    if config.batch_size is not None:  # batches are rows: only the direct engine has them
        _check_minibatch_engine(engine_name)
        engine_name = "direct"
    # The eigen basis depends on l2: one concrete l2 for every run (asked for explicitly, a
    # traced l2 is fine too: the basis is then computed in the traced program).
    fixed_l2 = l2 is not None and (engine_name.startswith("eigen") or not is_traced(l2))
    if streamed and engine_name == "auto":  # no rows: the moments, whatever they cost
        engine_name = engines.moment_engine(config.optimizer.name, fixed_l2)
    return engines.choose_engine(engine_name, n_rows, n_features, config.num_steps,
                                 num_runs, config.optimizer.name, fixed_l2, traced)


def _check_minibatch_engine(engine_name: str) -> None:
    if engine_name not in ("auto", "direct"):  # a moment engine sees no rows
        raise ValueError(f"engine={engine_name!r}: mini-batch SGD needs engine='direct' (or "
                         f"'auto'): the {engine_name} engine sees the data only as a whole, "
                         "through its moments")


CONDITION_WARNING = 1e4  # condition numbers from here on get a warning


#: From this many rows on, the reference comes from the data's float64 moments (one pass,
#: no copy) rather than an SVD of [X, 1]: ~6x cheaper at n = 10⁶, d = 32, and as accurate
#: for a reference loss (the moments are centred, so their conditioning is X's, not AᵀA's).
MOMENTS_FROM_ROWS = 50_000


def optimal_losses(X, y, l2, warn_conditioning: bool = True) -> np.ndarray | None:
    """The optimum's loss for each l2 (see ``references``), or None under tracing."""
    found = references(X, y, l2, warn_conditioning)
    return None if found is None else found[0]


def start_references(X, y, l2) -> Callable[[], Any]:
    """``references(X, y, l2)``, begun now, as a function that waits for it.

    For data past ``memo.MAX_BYTES`` (a float64 pass of O(n·d²), ~0.1 s per 10⁵ rows of 32
    features) the pass runs on a worker thread, NumPy's BLAS releasing the interpreter, so
    that the engine's preparation (the copy of X to the device) overlaps it; the caller
    collects it, and any conditioning warning, when its program needs the optimum.
    """
    if is_traced((X, y, l2)) or not isinstance(X, np.ndarray) or X.nbytes <= memo.MAX_BYTES:
        return lambda: references(X, y, l2)
    pending = _worker().submit(_reference_values, X, y, np.atleast_1d(np.asarray(l2, np.float64)))

    def collect():
        optima, curvatures, condition, optimum_params = pending.result()
        _warn_conditioning(condition)
        return optima, curvatures, optimum_params

    return collect


@functools.cache
def _worker() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="jaxgd-reference")


def references(X, y, l2, warn_conditioning: bool = True):
    """``(optimal losses, largest Hessian eigenvalues, optimum's parameters)``, one of each
    per value of ``l2`` (a number or a 1-D array; the parameters as rows ``[weight, bias]``),
    or None when X, y or l2 are traced."""
    """The least-squares (ridge) optimum's loss for each value of ``l2`` (a number or a 1-D
    array), in float64 on the host: the reference the results report and the floor the
    convergence monitor measures stalls against (``jaxgd.core.convergence``).

    With ``warn_conditioning``, first warns if the features are so badly conditioned that
    plain gradient descent will crawl (at the smallest l2; both cost one O(n·d²) pass).
    None when X, y or l2 are traced by the caller: the reference is a float64 oracle
    computed on the host, from concrete numbers only.
    """
    if is_traced((X, y, l2)):
        return None
    if isinstance(X, streaming.Streamed):
        X = X.stats
    strengths = np.atleast_1d(np.asarray(l2, np.float64))
    # The same data again (by content, see jaxgd.data.memo): the float64 pass is done already.
    optima, curvatures, condition, optimum_params = memo.cached(
        ("references", tuple(strengths.tolist())), [X, y],
        lambda: _reference_values(X, y, strengths))
    if warn_conditioning:
        _warn_conditioning(condition)
    return optima, curvatures, optimum_params


def _reference_values(X, y, strengths: np.ndarray):
    """(optimal losses, largest curvatures, condition number at the smallest l2, optimum's
    parameters as rows ``[weight, bias]``), read-only."""
    if not isinstance(X, SufficientStats) and np.shape(X)[0] >= MOMENTS_FROM_ROWS:
        X, y = sufficient_statistics(X, y), None
    limits = [stability(X, float(v)) for v in strengths]
    best = [solve(X, y, l2=float(v)) for v in strengths]
    optima = np.asarray([found.loss for found in best])
    curvatures = np.asarray([float(limit.eigenvalues[-1]) for limit in limits])
    params = np.asarray([np.append(found.params.weight, found.params.bias) for found in best])
    optima.flags.writeable = curvatures.flags.writeable = params.flags.writeable = False
    return optima, curvatures, limits[int(np.argmin(strengths))].condition_number, params


def unstable_runs(spec: OptimizerSpec, hyper: Mapping[str, Any], l2_values, curvatures,
                  traced: bool = False):
    """Per run: whether its constant learning rate lies above its optimizer's exact
    stability limit on this data (``jaxgd.theory.stability.limit_factor``), so its loss must blow
    up; False where no limit is known (Adam, schedules, custom optimizers, data traced by the
    caller). Hyperparameters traced by the caller's ``jit``/``vmap``/``grad`` give a traced
    verdict (in their dtype), so a run gives the same verdicts inside a transformation as
    outside it.

    ``l2_values`` and ``curvatures`` pair each l2 with the largest eigenvalue of its Hessian;
    ``traced``: some value in ``hyper`` is the caller's tracer (``jaxgd.pipeline.problem``
    asks that once).
    """
    runs = np.shape(hyper["learning_rate"])
    if not (has_exact_limit(spec.name, spec.schedule) and curvatures is not None):
        return np.zeros(runs, bool)
    xp, real = (jnp, None) if traced else (np, np.float64)
    l2_values = np.atleast_1d(np.asarray(l2_values, np.float64))
    which = xp.argmin(xp.abs(xp.asarray(hyper["l2"], real)[..., None] - l2_values), -1)
    momentum = xp.asarray(hyper.get("momentum", 0.0), real)
    factor = limit_factor(spec.name, momentum)
    rate = xp.asarray(hyper["learning_rate"], real)
    return xp.broadcast_to(rate * xp.asarray(curvatures)[which] > factor, runs)


def _warn_conditioning(condition: float) -> None:
    if condition == float("inf"):
        warn("the features are linearly dependent (a constant column, or one column a "
             "combination of others): the least-squares weights are not unique; drop a column")
    elif condition >= CONDITION_WARNING:
        warn(f"the features are badly conditioned (Hessian condition number {condition:.3g}): "
             "gradient descent will crawl along the flattest direction; standardize them "
             "(jaxgd.Standardizer) and map the result back with jaxgd.unstandardize_params")
