"""One preparation pipeline: ``(X, y, options[, grid])`` → a ``Problem`` that the runners train.

``fit`` (one run), ``grid_sweep`` and ``sweep`` (a grid of runs; through them ``lr_range``
and the command line) and refinement (``jaxgd.tuning.refinement``) all start from the
``Problem`` made here, in one order of steps, each decided once:

1. a file's rows (a ``RowSource``) are opened around the whole call (``solve``);
2. the column names, the rows' alignment, the held-out rows (``holdout.resolve``);
3. the data's checks and the run's configuration (``make_config``);
4. the grid's axes and values (none for one run), k folds as a last axis "fold";
5. the values every run shares (``fixed_values``);
6. the float64 reference, begun on the host while 7. the engine is chosen and its data go
   to the device (``device_data``), with the held-out rows or every fold's data;
8. every run's traced inputs, its optimum and exact-stability verdict, its start point;
9. whether the caller traces any of it (``Problem.traced``): the one place that asks.

One run (``grid`` None) keeps its inputs unbatched (scalars on the device), so ``fit``
compiles its own program (``train`` without ``vmap``) and its numbers are those of a lone
run; a grid unrolls its runs onto one flat axis in row-major order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core.convergence import loss_tells_optimum
from jaxgd.core.optimizers import check_hyperparameter
from jaxgd.core.record import SAMPLE_AXIS
from jaxgd.data.statistics import on_device
from jaxgd.datasets.stream import RowSource
from jaxgd.engines import engine as engines
from jaxgd.inputs import frames
from jaxgd.inputs.validation import (
    check_learning_rates,
    check_non_negative,
    check_seed,
    is_traced,
    warn_unaligned,
)
from jaxgd.pipeline import custom, holdout, streaming
from jaxgd.pipeline.options import Options, RunConfig, make_config
from jaxgd.pipeline.preparation import (
    check_inputs,
    device_data,
    fixed_values,
    references,
    start_references,
    unstable_runs,
)
from jaxgd.pipeline.training import OPTIMUM, input_dtype, start_values, width

#: Traced inputs that are settings of the convergence monitor, not hyperparameters.
NOT_SHOWN = ("tol", "divergence_factor", "optimum", "unstable", *OPTIMUM)


class Problem(NamedTuple):
    """Everything a run or a grid of runs needs, prepared once (see the module).

    ``X``, ``y``: the checked training data as the host holds it (for the final errors);
    ``names``: (feature names, target name); ``held_plan``: the held-out rows' plan
    (``holdout.resolve``); ``axes``, ``values``, ``shape``: the grid (empty for one run);
    ``fixed``: the values every run shares; ``l2``: the l2 value(s) the references were
    computed for; ``chosen``/``engine``/``data``/``held``: the engine, its data and the
    held-out data on device; ``hyper``: every run's traced inputs; ``optimal``: the
    reference loss to report (None, a float, or an array over the l2 and fold axes);
    ``curvatures``: each l2's largest Hessian eigenvalue (None if unknown); ``folds``:
    k-fold runs; ``traced``: some input is the caller's tracer (``jit``, ``grad``).
    """

    X: Any
    y: Any
    names: tuple[Any, Any]
    held_plan: Any
    n_rows: int
    config: RunConfig
    axes: tuple[str, ...]
    values: dict[str, Any]
    shape: tuple[int, ...]
    fixed: dict[str, Any]
    l2: Any
    chosen: str
    engine: engines.Engine
    data: Any
    held: Any
    hyper: dict[str, Any]
    optimal: Any
    curvatures: Any
    folds: bool
    traced: bool

    @property
    def num_runs(self) -> int:
        """How many runs (1 for one run)."""
        return math.prod(self.shape)

    def shown(self) -> dict[str, Any]:
        """The hyperparameters every run shared, for a grid's result (``fixed``): as 0-d
        arrays (the caller's tracers as they are), made here, where the result is made,
        never when one is unflattened (JAX unflattens with placeholders and in_axes specs),
        so that every leaf is one."""
        return {name: value if is_traced(value) else np.asarray(value)
                for name, value in self.fixed.items()
                if name not in self.axes and name not in self.values and name not in NOT_SHOWN}

    def n_features(self) -> int:
        """The model's features (nothing is computed)."""
        return n_features(self.engine, self.data, self.folds)


def solve(X, y, options: Options, finish: Callable[[Problem], Any],
          grid: Mapping[str, Sequence[float]] | None = None,
          points: Mapping[str, np.ndarray] | None = None):
    """``finish(prepare(X, y, options, grid, points))``; a ``RowSource`` is opened (or its
    moments taken) around the call, and the result gets its column names
    (``jaxgd.pipeline.streaming.run_on_rows``)."""
    if isinstance(X, RowSource):
        if options.validation is not None:  # by the file's names: its rows have none
            holdout.check_validation_names(options.validation, X)
        return streaming.run_on_rows(
            lambda data: solve(data, None, options, finish, grid, points), X, y,
            options.batch_size, options.batch_seed, grid)
    return finish(prepare(X, y, options, grid, points))


def prepare(X, y, options: Options, grid: Mapping[str, Sequence[float]] | None = None,
            points: Mapping[str, np.ndarray] | None = None) -> Problem:
    """The ``Problem`` of one run (``grid`` None) or of a grid of runs (``grid`` and/or
    drawn ``points``, name -> ``(num_samples,)``, a first axis "sample")."""
    names = frames.names_of(X, y)
    warn_unaligned(X, y)  # pandas would align by label; jaxgd goes by position
    X, y, held_plan = holdout.resolve(X, y, options)
    X, y, n_rows = check_inputs(X, y)
    config = make_config(options, n_rows)
    folds = isinstance(held_plan, holdout.Folds)
    axes, values = grid_axes(grid, points, config, held_plan if folds else None)
    fixed = fixed_values(options, config.optimizer, (*axes, *(points or {})))
    # Whether the caller traces a hyperparameter (then every run's inputs are JAX arrays)
    # or anything at all (then the runs are one plain call, without segments or chunks).
    xp = jnp if is_traced((values, fixed)) else np
    shape = tuple(values[axis].size for axis in axes)
    l2_axis = _axis_of("l2", axes, values)
    fixed_l2 = None if l2_axis else fixed["l2"]
    l2 = values["l2"] if l2_axis else fixed["l2"]
    # The float64 reference runs on a worker thread while the data go to the device (the
    # folds compute theirs from each fold's moments).
    pending = start_references(X, y, l2) if options.reference and not folds else None
    chosen, data = device_data(X, y, options.engine, config, math.prod(shape), fixed_l2,
                               folds and is_traced((X, y, held_plan, values, fixed)))
    engine = custom.engine_for(options, chosen)  # the model's engine when there is one
    held, trains = None, None
    if folds:  # every fold's data on a leading axis; train picks its run's
        rows = data if chosen == "direct" else None  # on device already: not sent again
        data, held, trains = holdout.fold_data(chosen, X, y, held_plan,
                                               0.0 if fixed_l2 is None else fixed_l2,
                                               rows=rows)
    elif held_plan is not None:
        held = holdout.held_out(*held_plan, chosen)
    hyper = _members(axes, values, fixed, shape, xp)
    if folds:
        optimal, curvatures = _fold_references(trains, l2, axes, shape, hyper, config,
                                               options.reference, l2_axis, xp)
    else:
        optimal, curvatures = _references(pending, l2, axes, shape, hyper, config, l2_axis,
                                          xp)
    if options.model is not None:  # its start, given or its own, as data of the program
        hyper.update(options.model.start_values(options.init, shape, axes))
    else:
        hyper.update(start_values(options.init, n_features(engine, data, folds), shape, axes))
    if not shape:  # one run: its inputs on the device as they are, unbatched
        hyper = {name: on_device(value, input_dtype(name)) for name, value in hyper.items()}
    return Problem(X, y, names, held_plan, n_rows, config, axes, values, shape, fixed, l2,
                   chosen, engine, data, held, hyper, optimal, curvatures, folds,
                   is_traced((data, hyper, held)))


def grid_axes(grid, points, config: RunConfig, folds: holdout.Folds | None):
    """The grid's axes and values (none for one run, ``grid`` None), with k ``folds`` a
    last axis "fold"."""
    axes, values = ((), {}) if grid is None else _check_grid(grid, config, points)
    if folds is None:
        return axes, values
    if config.batch_size is not None:
        raise ValueError("k_folds is for full-batch runs (leave out batch_size and "
                         "epochs), or give validation= for mini-batch SGD")
    return (*axes, "fold"), {**values, "fold": np.arange(folds.k, dtype=np.int32)}


def n_features(engine: engines.Engine, data, folds: bool) -> int:
    """The model's features, from the prepared data (one fold's shapes with k folds; nothing
    is computed)."""
    return engine.n_features(jax.eval_shape(holdout.pick, data, 0)) if folds else width(
        engine, data)


def _references(pending, l2, axes, shape, hyper, config: RunConfig, l2_axis, xp=np):
    """Sets each run's optimum and stability verdict in ``hyper``; returns the reference
    loss to report (None without one) and the curvatures. ``pending`` collects the
    ``references`` begun by ``start_references`` (None: no reference asked for)."""
    found = None if pending is None else pending()
    optima, curvatures, params = (None, None, None) if found is None else found
    l2_position = axes.index(l2_axis) if l2_axis else None
    hyper["optimum"] = _per_run_optimum(optima, l2_position, shape, xp)
    params = _judged_by_parameters(optima, curvatures, params)
    if params is not None:
        hyper.update(_optimum_params(_per_run_rows(params, l2_position, shape), xp))
    unstable = unstable_runs(config.optimizer, hyper, l2, curvatures, xp is jnp)
    hyper["unstable"] = xp.asarray(unstable) if shape else unstable
    if optima is None:
        return None, curvatures
    if l2_axis:
        return optima.reshape([optima.size if a == l2_axis else 1 for a in axes]), curvatures
    return float(optima[0]), curvatures


def _fold_references(trains, l2, axes, shape, hyper, config: RunConfig, reference: bool,
                     l2_axis, xp=np):
    """``_references`` with k folds: each fold's runs get their training rows' optimum and
    stability limit (from the fold's moments, on the host); the reference broadcasts over
    (l2, fold), the curvatures come back as ``(l2 values, folds)``. A run's fold is its
    place on the last axis, known on the host, so hyperparameters traced by the caller
    (``jit``, ``grad``) get traced verdicts, and a traced l2 no reference (as without folds).
    """
    fold_of = np.indices(shape)[-1].reshape(-1)  # each run's fold
    optimum, unstable = np.full(fold_of.size, np.nan), xp.zeros(fold_of.size, bool)
    per_fold, per_curvature, rows = [], [], None
    l2_position = axes.index(l2_axis) if l2_axis else None
    for fold, stats in enumerate(trains):
        found = references(stats, None, l2, warn_conditioning=fold == 0) if reference else None
        optima, curvatures, params = (None, None, None) if found is None else found
        params = _judged_by_parameters(optima, curvatures, params)
        mine = np.flatnonzero(fold_of == fold)
        optimum[mine] = np.asarray(_per_run_optimum(optima, l2_position, shape))[mine]
        if params is not None:  # this fold's runs get its training rows' optimum
            rows = np.full((fold_of.size, params.shape[1]), np.nan) if rows is None else rows
            rows[mine] = _per_run_rows(params, l2_position, shape)[mine]
        subset = {name: value[mine] for name, value in hyper.items()}
        verdict = unstable_runs(config.optimizer, subset, l2, curvatures, xp is jnp)
        if xp is jnp:
            unstable = unstable.at[mine].set(verdict)
        else:
            unstable[mine] = verdict
        per_fold.append(optima)
        per_curvature.append(curvatures)
    hyper["optimum"] = xp.asarray(optimum, input_dtype("optimum"))
    hyper["unstable"] = unstable
    if rows is not None:
        hyper.update(_optimum_params(rows, xp))
    if any(optima is None for optima in per_fold):
        return None, None
    dims = [1] * len(axes)
    dims[-1] = len(trains)
    if l2_axis:
        dims[axes.index(l2_axis)] = per_fold[0].size
    return np.stack(per_fold, axis=-1).reshape(dims), np.stack(per_curvature, axis=-1)


def _axis_of(name: str, axes: tuple[str, ...], values) -> str | None:
    """The axis along which hyperparameter ``name`` varies: its own, the sample axis when it
    was drawn, or None when every run shares it."""
    if name in axes:
        return name
    return SAMPLE_AXIS if name in values else None


def _judged_by_parameters(optima, curvatures, params):
    """The optimum's parameters (rows ``[weight, bias]``, one per l2 value) for the runs
    that need them, NaN (never met) where the loss alone tells a run at them
    (``jaxgd.core.convergence.loss_tells_optimum``: L* well above what the run's dtype
    resolves); None where no run needs them. Without them the program neither tracks the
    flat stretch they judge (``init_monitor``'s ``level``) nor maps the final coordinates
    back: only exact fits and the like pay for it (~10 ms of 8,192 runs x 1,000 steps)."""
    if params is None:
        return None
    told = loss_tells_optimum(optima, params, curvatures, input_dtype("optimum_weight"))
    if told.all():
        return None
    return np.where(told[:, None], np.nan, params)


def _per_run_optimum(optima, l2_position: int | None, shape, xp=np):
    """Each run's optimum loss (NaN where unknown), for the convergence monitor; one run's
    as a number."""
    if not shape:
        return np.nan if optima is None else optima[0]
    num_runs = math.prod(shape)
    if optima is None:
        return xp.full(num_runs, np.nan, input_dtype("optimum"))
    if l2_position is not None:  # the run's position on the l2 axis picks its optimum
        optima = optima[np.indices(shape)[l2_position].reshape(-1)]
    return xp.asarray(np.broadcast_to(optima, (num_runs,)), input_dtype("optimum"))


def _per_run_rows(params: np.ndarray, l2_position: int | None, shape) -> np.ndarray:
    """Each run's row ``[weight, bias]`` of the optimum's parameters (one per l2 value in
    ``params``), as ``_per_run_optimum`` picks its loss; one run's as one row."""
    if not shape:
        return params[0]
    if l2_position is not None:
        return params[np.indices(shape)[l2_position].reshape(-1)]
    return np.broadcast_to(params[0], (math.prod(shape), params.shape[1]))


def _optimum_params(rows, xp=np) -> dict[str, Any]:
    """The optimum's weight and bias as ``train``'s inputs (``training.OPTIMUM``), from
    rows ``[weight, bias]``: a run flat at them has converged whatever its loss reads
    (``jaxgd.core.convergence.at_optimum``)."""
    rows = np.asarray(rows, np.float64)
    return {name: xp.asarray(part, input_dtype(name)) for name, part in zip(
        OPTIMUM, (rows[..., :-1], rows[..., -1]), strict=True)}


def _check_grid(grid: Mapping[str, Sequence[float]], config: RunConfig,
                points: Mapping[str, np.ndarray] | None = None):
    """The axes and their values, checked; drawn ``points`` become the first axis, "sample"
    (its values the point numbers), and each drawn name's values are kept beside it."""
    if not isinstance(grid, Mapping) or not (grid or points):
        raise ValueError("grid must map at least one hyperparameter name to its values")
    axes, values = tuple(grid), {}
    if points:
        valid = (*config.optimizer.hyperparameter_names(), "l2")
        for name, drawn in points.items():
            if name not in valid:
                raise ValueError(f"sample[{name!r}]: unknown hyperparameter {name!r} for "
                                 f"{config.optimizer.name} with schedule "
                                 f"{config.optimizer.schedule}; valid: {', '.join(valid)}")
            values[name] = _check_values(name, drawn, config, f"sample[{name!r}]")
        size = next(iter(values.values())).size
        axes = (SAMPLE_AXIS, *axes)
        values = {SAMPLE_AXIS: np.arange(size), **values}
    for axis in grid:
        raw = grid[axis]
        if axis == "fold":
            raise ValueError("grid['fold'] is made by validation=jaxgd.KFolds(k): give that "
                             "instead")
        if axis == "batch_seed" and config.batch_size is None:
            raise ValueError("a batch_seed axis needs mini-batch SGD (batch_size and epochs): "
                             "full-batch runs have no batch order")
        if np.ndim(raw) == 0:
            raise ValueError(f"grid[{axis!r}] must be a list of values, got {raw!r}")
        values[axis] = _check_values(axis, raw, config, f"grid[{axis!r}]")
        if values[axis].size == 0:
            raise ValueError(f"grid[{axis!r}] is empty: give at least one value")
    return axes, values


def _check_values(name: str, raw, config: RunConfig, where: str):
    """One hyperparameter's values (a grid axis or a drawn sample), checked."""
    if is_traced(raw) and name not in ("seed", "batch_seed"):  # shape and dtype only
        if name not in ("learning_rate", "l2"):
            check_hyperparameter(name, None, config.optimizer)
        return check_learning_rates(raw, where)
    if name in ("seed", "batch_seed"):
        return np.asarray([check_seed(s, where) for s in raw], np.uint32)
    if name == "learning_rate":
        return check_learning_rates(raw, where)
    if name == "l2":
        return np.asarray([check_non_negative(v, where) for v in raw])
    check_hyperparameter(name, raw, config.optimizer)
    return np.asarray(raw, np.float64).reshape(-1)


def _members(axes, values, fixed, shape, xp=np) -> dict[str, Any]:
    """One entry per run for every traced input, the grid unrolled in row-major order (in
    NumPy, or in JAX when some value is traced by the caller); drawn hyperparameters follow
    the sample axis. One run (no axes) takes the shared values as they are."""
    if not shape:
        return dict(fixed)
    position = np.indices(shape).reshape(len(shape), -1)  # each run's index on each axis
    num_runs = math.prod(shape)
    hyper = {}
    for name, value in values.items():
        if name != SAMPLE_AXIS:
            hyper[name] = xp.asarray(value)[position[axes.index(_axis_of(name, axes,
                                                                          values))]]
    for name, value in fixed.items():
        if name not in hyper:
            hyper[name] = xp.full(num_runs, value)
    return {name: v.astype(input_dtype(name)) for name, v in hyper.items()}
