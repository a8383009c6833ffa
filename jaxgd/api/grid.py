"""``grid_sweep``: a full grid over any numeric hyperparameters and seeds, one program.

The grid's points are unrolled into one flat axis of runs, vmapped over ``train``; chunks of
runs go through the same compiled program, and the run axis is sharded across devices.
``sweep`` (learning rates and seeds) is this with a two-axis grid.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.api import settings
from jaxgd.api.settings import (
    HeldOut,
    MiniBatches,
    OptimizerLike,
    Placement,
    Record,
    Sample,
    Start,
    Stopping,
)
from jaxgd.core import progress
from jaxgd.core.custom_model import Model
from jaxgd.core.descent import Descent
from jaxgd.core.optimizers import OptimizerSpec, make_spec
from jaxgd.core.record import freeze
from jaxgd.data.statistics import SufficientStats
from jaxgd.datasets.stream import RowSource
from jaxgd.engines import engine as engines
from jaxgd.inputs.validation import (
    check_memory,
    check_positive_int,
)
from jaxgd.pipeline import custom, holdout, sharding, streaming
from jaxgd.pipeline.options import Options, RunConfig, make_config
from jaxgd.pipeline.preparation import pick_engine
from jaxgd.pipeline.problem import Problem, grid_axes, n_features, solve
from jaxgd.pipeline.training import train
from jaxgd.results.result import GridResult
from jaxgd.tuning import refinement, search, segments


@partial(jax.jit, static_argnames=("engine", "config", "wanted", "grid_shape"))
def _members_compiled(engine: engines.Engine, data, hyper, config: RunConfig, wanted: int,
                      grid_shape: tuple[int, ...], held=None) -> Descent:
    """All runs of ``hyper`` at once; the first ``wanted`` (the rest pad the devices' shares)
    come back shaped as ``grid_shape``, with the shared step lists kept once. Doing this
    inside the program saves a small compile per output that eager slicing would cost."""
    run = jax.vmap(partial(train, engine, data, config=config, held=held))(hyper)
    steps = {"snapshot_steps": run.snapshot_steps[0], "loss_steps": run.loss_steps[0]}
    run = run._replace(snapshot_steps=None, loss_steps=None)
    run = jax.tree_util.tree_map(lambda leaf: leaf[:wanted].reshape(*grid_shape,
                                                                    *leaf.shape[1:]), run)
    return run._replace(**steps)


def grid_sweep(
    X,
    y,
    *,
    grid: Mapping[str, Sequence[float]] | None = None,
    sample: Sample | None = None,
    refine: Mapping[str, float] | None = None,
    num_steps: int | None = None,
    learning_rate: float | None = None,
    seed: int = 0,
    optimizer: OptimizerLike = None, l2: float = 0.0, init: Start = 0.01,
    batches: MiniBatches | None = None, stopping: Stopping | None = None,
    record: Record | None = None, validation: HeldOut = None,
    engine: str = "auto", placement: Placement | None = None, model: Model | None = None,
) -> GridResult:
    """Runs every point of a full grid over hyperparameters and seeds in one compiled program.

    ``grid`` maps names to values (and ``sample`` to ranges to draw from); the names are
    "learning_rate", "seed", "batch_seed" (mini-batch order), "l2", or any of the optimizer's
    and schedule's hyperparameters (see ``jaxgd.core.optimizers``). Result axes follow the
    grid's order ("sample" first when drawn), steps last. Values are traced: another grid
    of the same shape reuses the compiled program. Names not in the grid take the fixed
    values given here (``learning_rate``, ``seed``, ``l2``, the ``Optimizer``'s
    hyperparameters, ``MiniBatches.seed``) or the defaults.

    Args:
      X: the features (or their ``SufficientStats``, or a ``RowSource``, with y None, as
        in ``fit``). A ``RowSource`` streams one batch order for every run: a
        ``batch_seed`` axis may then hold one value only.
      y: the targets (None with ``SufficientStats`` or a ``RowSource``).
      grid: axis name -> values, in the result's axis order.
      sample: ``jaxgd.Sample(space, num_samples, sampler, seed)``: points drawn from a
        search space, name -> (kind, low, high) with kind "log" or "uniform"
        (``jaxgd.tuning.search``), over any numeric hyperparameter the grid takes but
        seeds. They form the result's first axis, "sample", crossed with the grid's axes;
        ``values[name]`` holds each drawn value along it and ``point`` names them. Runs
        whose loss histories alone would not fit in this machine's memory are a
        ``MemoryError`` naming num_samples, before any point is drawn.
      refine: gradient steps from the best drawn points, e.g. ``{"top": 4, "steps": 20,
        "learning_rate": 0.1, "backtracks": 6}`` (``jaxgd.tuning.refinement``); the result's
        ``refined`` holds their paths and refined runs.
      num_steps: updates per run (leave out for mini-batch SGD).
      learning_rate: the fixed learning rate, unless the grid or the sample has one.
      seed: the fixed seed of the starting point, unless the grid has one.
      optimizer: a name, an optax factory or a ``jaxgd.Optimizer`` (schedule and fixed
        hyperparameters, for the names not in the grid or the sample), as in ``fit``.
      l2: the fixed ridge strength, unless the grid or the sample has one.
      init: the scale of the random starts (0: zeros), or the start of every run (a
        ``LinearParams``, as in ``fit``; ``seed`` then picks no start), or one per run:
        leaves with the result's grid axes in front, weight ``(*shape, n_features)`` and
        bias ``shape`` (an axis of 1 shared along that grid axis), e.g. an earlier grid's
        ``params``.
      batches: ``jaxgd.MiniBatches`` for mini-batch SGD, as in ``fit``; its ``seed`` is
        the fixed batch order, unless the grid has a "batch_seed" axis.
      stopping: ``jaxgd.Stopping``, as in ``fit``, and for the sweeps: ``segment_steps``,
        the length of the segments between which finished and pruned runs leave the batch
        (``jaxgd.tuning.segments``; under the caller's jit or vmap the sweep is always one
        plain scan), and ``pruning=jaxgd.Halving(rate, min_steps)``: successive halving.
      record: ``jaxgd.Record``, as in ``fit``.
      validation: held-out rows ``(X_val, y_val)`` or ``jaxgd.Holdout``, as in ``fit``, or
        ``jaxgd.KFolds(k, seed)``: k-fold cross-validation, every grid point run once per
        fold on one more axis, "fold", last; each run's validation loss is its fold's (see
        ``jaxgd.pipeline.holdout``). Full-batch runs on in-memory rows only. The fold ids
        are fixed by the seed, so hyperparameters traced by the caller (``jax.grad`` of the
        mean held-out loss over folds in l2 or the learning rate) see the same folds;
        ``refine=`` refines each point on its mean over the folds.
      engine: the engine, as in ``fit``.
      placement: ``jaxgd.Placement``: ``chunk_size``, the most runs per compiled call
        (None: sized from the device's free memory, see ``auto_chunk_size``; a chunked
        grid's results are NumPy arrays gathered on the host); ``sharding``, "runs"
        (default) spreads the runs over every device, padding the last device's share,
        "rows" the rows of X instead (direct engine, large n), "none" keeps one device;
        and ``unroll``, as in ``fit``.

      model: a ``jaxgd.Model`` to train instead of linear regression, on the direct path,
        as in ``fit``: verdicts without a known optimum, held-out losses from the model's
        loss; search, refinement, k folds, early exit and pruning as for linear
        regression; ``init`` a
        pytree of the model's init's structure (shared, or one per run as above).
    Returns:
      A ``GridResult``; ``best()`` picks by validation loss when there are held-out data
      (with k folds, by the mean over folds: the index then leaves the fold axis out).

    Example:
      >>> import numpy as np
      >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
      >>> r = grid_sweep(X, y, grid={"learning_rate": [0.01, 0.1], "momentum": [0.0, 0.9]},
      ...                optimizer="momentum", num_steps=100)
      >>> r.axes, r.losses.shape, r.point((1, 0))
      (('learning_rate', 'momentum'), (2, 2, 100), {'learning_rate': 0.1, 'momentum': 0.0})
      >>> space = {"learning_rate": ("log", 1e-3, 1.0), "b1": ("uniform", 0.5, 0.99)}
      >>> s = grid_sweep(X, y, sample=Sample(space, num_samples=16), grid={"seed": [0, 1]},
      ...                optimizer="adam", num_steps=100)
      >>> s.axes, s.losses.shape, s.values["b1"].shape, sorted(s.point(s.best()))
      (('sample', 'seed'), (16, 2, 100), (16,), ['b1', 'learning_rate', 'seed'])
    """
    options = settings.options(locals())
    points = None
    if sample is not None:
        # The names and rules of the hyperparameters depend on the optimizer and schedule
        # alone: the ranges are checked before anything is drawn or run.
        points = _drawn(dict(sample.space), sample.num_samples, sample.sampler, sample.seed,
                        grid, make_spec(options.optimizer, options.schedule), options.k_folds,
                        _history_bytes(options.num_steps, options.epochs, options.log_every),
                        sample.points)
    if grid is None and points is None:
        raise ValueError("give grid= (lists of values), sample= (ranges to draw from), or "
                         "both")
    plan = None
    if refine is not None:
        plan = refinement.make_plan(refine, None if sample is None else search.check_space(
            dict(sample.space)))
    return run_grid(X, y, grid or {}, options, points, plan)


def _drawn(sample, num_samples, sampler, sample_seed, grid, spec: OptimizerSpec,
           k_folds=None, history_bytes: int = 0, given=None) -> dict[str, np.ndarray]:
    """The search space's points (``jaxgd.tuning.search``), checked against the optimizer's
    hyperparameters (names and both ends of each range) and the grid's axes, and their
    runs' size against this machine's memory before any is drawn (``_check_runs``); the
    ``given`` points (``Sample.points``) instead of a draw."""
    both = sorted(set(sample) & set(grid or {})) if isinstance(sample, Mapping) else []
    if both:
        raise ValueError(f"{', '.join(map(repr, both))} both sampled and a grid axis: put "
                         "each hyperparameter in sample= or grid=, not both")
    space = search.check_space(sample, (*spec.hyperparameter_names(), "l2"))
    search.check_ends(space, spec)
    num_samples = search.check_size(num_samples, len(space), sampler)
    _check_runs(num_samples, grid, k_folds, history_bytes)
    if given is not None:
        return dict(given)
    return search.draw(sample, num_samples, sampler, sample_seed)


def _check_runs(num_samples: int, grid, k_folds, history_bytes: int) -> None:
    """Refuses drawn points whose runs' loss histories alone (``history_bytes`` each) would
    not fit in this machine's memory, where every run's results are gathered, before a
    point is drawn or a run compiled. The grid is counted as given (its own checks come
    later); anything that cannot be counted yet counts once."""
    grid_points = math.prod(np.size(values) for values in (grid or {}).values())
    folds = k_folds if isinstance(k_folds, int) and not isinstance(k_folds, bool) and (
        k_folds > 1) else 1
    runs = num_samples * grid_points * folds
    check_memory(runs * history_bytes,
                 f"num_samples = {num_samples}: {num_samples} points × {grid_points} grid "
                 f"points{f' × {folds} folds' if folds > 1 else ''} make {runs} runs, whose "
                 "loss histories alone",
                 "draw fewer points, or keep fewer losses (log_every)")


def _history_bytes(num_steps, epochs, log_every) -> int:
    """At least what one run's loss history takes: its logged losses as the run's floats
    (a mini-batch run takes at least a step per epoch). Settings that are not whole
    numbers count as 1 here; their own checks come later."""
    def count(value) -> int:
        whole = isinstance(value, int | np.integer) and not isinstance(value, bool)
        return int(value) if whole and value >= 1 else 1
    steps = count(num_steps if num_steps is not None else epochs)
    return -(-steps // count(log_every)) * jnp.dtype(jnp.result_type(float)).itemsize


def run_grid(X, y, grid: Mapping[str, Sequence[float]], options: Options,
             points: Mapping[str, np.ndarray] | None = None,
             refine: refinement.Plan | None = None) -> GridResult:
    """``grid_sweep`` with its settings as one ``Options`` value (``sweep`` calls this).

    ``points`` are drawn hyperparameter values (name -> ``(num_samples,)``), run as a
    first axis "sample" crossed with the grid's axes; ``refine`` a checked ``refine=``
    (``jaxgd.tuning.refinement``).
    """
    options = custom.model_options(options, X, (grid, points))  # a user's model
    if isinstance(X, RowSource):  # refused before the file is read
        check_settings(X, options, grid, points, refine)
    return solve(X, y, options, partial(_finish, options=options, refine=refine), grid,
                 points)


def _finish(problem: Problem, options: Options,
            refine: refinement.Plan | None) -> GridResult:
    """The prepared runs, run (placed on the devices, in chunks or segments), as a
    ``GridResult``, refined with a ``refine`` plan."""
    p, config = problem, problem.config
    mode = sharding.check_mode(options.sharding_mode, p.n_rows)
    plan = segments.make_plan(options, config, work=lambda: segments.work(
        p.chosen, p.n_rows, p.n_features(), p.num_runs, config.num_steps))
    if p.traced:  # inside the caller's transformation: one plain call
        # (no early exit: only the host can re-pack the runs between segments)
        run = _members_compiled(p.engine, p.data, p.hyper, config, p.num_runs, p.shape,
                                p.held)
    else:
        run = _run_placed(p.engine, p.data, p.hyper, config, options.chunk_size, mode,
                          p.shape, plan, p.held)
    errors = holdout.result_errors(run.params, p.X, p.y, p.held_plan, len(p.axes) - 1,
                                   run.diverged, options.model)
    result = _result(run, p)._replace(errors=errors, model=options.model)
    if refine is not None:
        result = refinement.refine(result, refine, p)
    return result


def _run_placed(engine, data, hyper, config: RunConfig, chunk_size: int | None, mode: str,
                shape: tuple[int, ...], plan: segments.Plan | None = None,
                held=None) -> Descent:
    """The runs spread over the devices (``jaxgd.pipeline.sharding``), chunk by chunk, or segment by
    segment with a ``plan`` (``jaxgd.tuning.segments``)."""
    if mode == "rows" and (not isinstance(data, engines.Rows) or held is not None):
        mode = "runs"  # moments, rows read by the host, held-out data: share out the runs
    if mode == "rows":
        data = data._replace(**dict(zip(("X", "y"), sharding.place_rows(data.X, data.y, mode),
                                        strict=True)))
    data, held = sharding.place_replicated((data, held))
    if chunk_size is None:
        features = n_features(engine, data, "fold" in hyper)
        logs = -(-config.num_steps // config.log_every) * (1 if held is None else 2)
        # Only "runs" spreads the outputs over the devices; otherwise each holds them all.
        devices = jax.devices() if mode == "runs" else jax.devices()[:1]
        chunk_size = sharding.auto_chunk_size(logs, features, len(config.snapshot_steps), devices)
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    if plan is not None:
        # With k folds ("fold", the last axis) a point's folds are consecutive runs, ranked
        # together by successive halving.
        num_runs = math.prod(shape)
        points = np.arange(num_runs) // shape[-1] if "fold" in hyper else None
        run = segments.run_segments(engine, data, hyper, config, plan, chunk_size, mode, held,
                                    points)
        return jax.tree_util.tree_map(lambda leaf: leaf.reshape(*shape, *leaf.shape[1:]),
                                      run._replace(snapshot_steps=None, loss_steps=None)
                                      )._replace(snapshot_steps=run.snapshot_steps,
                                                 loss_steps=run.loss_steps)
    return _run_members(engine, data, hyper, config, chunk_size, mode, shape, held)


def _result(run: Descent, problem: Problem) -> GridResult:
    p = problem
    return GridResult(**run._asdict(), axes=p.axes, values=p.values, fixed=p.shown(),
                      engine=p.chosen, reference=freeze(p.optimal), feature_names=p.names[0],
                      target_name=p.names[1], num_steps=p.config.num_steps)


def _run_members(engine, data, hyper: dict[str, np.ndarray], config: RunConfig,
                 chunk_size: int, mode: str, shape: tuple[int, ...], held=None) -> Descent:
    num_runs = next(iter(hyper.values())).size
    if num_runs <= chunk_size:
        return _call(engine, data, hyper, None, config, mode, shape, held)
    chunk_size = sharding.padded_size(chunk_size, mode)
    gathered = None
    for index, start in enumerate(range(0, num_runs, chunk_size)):
        stop = min(start + chunk_size, num_runs)
        # Pad the last chunk with copies of its first run: same shapes, no recompile.
        take = np.concatenate([np.arange(start, stop),
                               np.full(chunk_size - (stop - start), start)])
        with progress.shifted(index * config.num_steps):
            part = jax.device_get(_call(engine, data, hyper, take, config, mode,
                                        (take.size,), held))
        steps = {"snapshot_steps": part.snapshot_steps, "loss_steps": part.loss_steps}
        part = part._replace(snapshot_steps=None, loss_steps=None)
        if gathered is None:
            gathered = jax.tree_util.tree_map(
                lambda leaf: np.empty((num_runs, *leaf.shape[1:]), leaf.dtype), part)
        for out, leaf in zip(jax.tree_util.tree_leaves(gathered),
                             jax.tree_util.tree_leaves(part), strict=True):
            out[start:stop] = leaf[: stop - start]
    gathered = jax.tree_util.tree_map(lambda leaf: leaf.reshape(*shape, *leaf.shape[1:]),
                                      gathered)
    return gathered._replace(**steps)


def _call(engine, data, hyper, take: np.ndarray | None, config: RunConfig, mode: str,
          shape: tuple[int, ...], held=None) -> Descent:
    """One compiled call on the runs ``take`` (None: all), padded to the devices, trimmed
    and shaped."""
    all_runs = take is None
    if all_runs:
        take = np.arange(next(iter(hyper.values())).size)
    wanted = take.size
    padded = sharding.padded_size(wanted, mode)
    if padded > wanted or not all_runs:  # copy the runs taken (all of them need no copy)
        take = np.concatenate([take, np.full(padded - wanted, take[0])])
        hyper = {k: v[take] for k, v in hyper.items()}
    members = sharding.place_runs(hyper, mode)
    return sharding.gather(_members_compiled(engine, data, members, config, wanted, shape,
                                             held))

# ``check_settings``: a run's settings refused for its data's kind and size, up front. The
# refusals are the pipeline's own, asked in the order a run asks them: ``make_config``
# (steps, mini-batches, snapshots, the stopping rule, what is recorded), the grid's axes
# (``jaxgd.pipeline.problem.grid_axes``), the engine's choice (``pick_engine``), the early
# exit's plan (``segments.make_plan``) and what refinement can follow. Only the data's kind
# and shape are read: nothing is copied, sent to a device or read from a file. ``fit`` and
# ``grid_sweep`` ask it for a ``RowSource`` before the file is read; the command line asks
# it before it writes anything (``jaxgd.cli.plan``).


def check_settings(X, options: Options, grid: Mapping[str, Sequence[float]] | None = None,
                   points: Mapping[str, np.ndarray] | None = None,
                   refine: refinement.Plan | None = None,
                   n_rows: int | None = None) -> RunConfig:
    """Refuses what the run of ``options`` (and of ``grid``, drawn ``points``, a checked
    ``refine``) on data like ``X`` would refuse, before anything is prepared.

    Args:
      X: rows (only their shape is read), their ``SufficientStats``, or a ``RowSource``.
      options: the run's settings.
      grid, points: a grid's axes and drawn points, as ``grid_sweep`` takes them; None for
        one run.
      refine: a checked ``refine=`` plan (``jaxgd.tuning.refinement.make_plan``).
      n_rows: a ``RowSource``'s rows, when known (else ``batch_size`` stands in, and what
        needs the true count, the snapshot steps' range, waits until the file is read).

    Returns:
      The run's checked ``RunConfig``.

    Raises:
      TypeError, ValueError: the pipeline's own refusal, naming the setting.

    Example:
      >>> import numpy as np
      >>> check_settings(np.zeros((10, 2)), Options(num_steps=5)).num_steps
      5
      >>> try:
      ...     check_settings(np.zeros((10, 2)), Options(num_steps=5, engine="eigen",
      ...                                               optimizer="adam"))
      ... except ValueError as error:
      ...     print(str(error)[:40])
      engine='eigen' is exact only for sgd, mo
    """
    kind, rows, width = _extent(X, options, n_rows)
    if isinstance(X, RowSource) and n_rows is None:
        # Rows not counted yet: a stand-in count, so no rule that needs the true one (the
        # snapshot steps against the steps an epoch takes); those come once it is read.
        options = dataclasses.replace(options, snapshot_steps=None)
    config = make_config(options, _training_rows(rows, options))
    axes, values = ((), {}) if grid is None and points is None else grid_axes(
        grid or {}, points, config, holdout.Folds(None, options.k_folds)
        if options.k_folds is not None else None)
    if kind == "file":
        streaming.batch_seed_of(options.batch_seed, grid)
        if refine is not None:
            raise ValueError("refine= differentiates through the run: not with rows read "
                             "from a file (a RowSource); load the rows, or use their "
                             "statistics")
    varied = "l2" in values
    pick_engine(kind, options.engine, config, rows, width,
                math.prod(np.size(values[axis]) for axis in axes), None if varied else options.l2)
    segments.make_plan(options, config)
    return config


def _extent(X, options: Options, n_rows: int | None) -> tuple[str, int, int]:
    """The data's kind ("rows", "moments", or a "file" read batch by batch), rows and
    features, from their shape alone."""
    if isinstance(X, RowSource):
        width = 0 if X.features is None else len(X.features)
        rows = n_rows if n_rows is not None else options.batch_size or 0
        return "moments" if options.batch_size is None else "file", rows, width
    if isinstance(X, SufficientStats):
        return "moments", int(X.n), int(np.shape(X.mean_x)[0])
    shape = np.shape(X)
    return "rows", int(shape[0]), int(shape[1]) if len(shape) > 1 else 1


def _training_rows(rows: int, options: Options) -> int:
    """The rows the runs train on: held-out rows drawn by a fraction are not among them
    (k folds keep every row, weighing out each fold's; each fold of at least 2 rows)."""
    fraction = options.validation_fraction
    if options.k_folds is not None and rows:
        holdout.check_folds(options.k_folds, rows)
    return rows - holdout.check_fraction(fraction, rows) if fraction is not None else rows
