"""``fit``: one linear-regression run by gradient descent, a thin layer over ``descend``."""

from __future__ import annotations

from functools import partial

import jax
import numpy as np

from jaxgd.api import settings
from jaxgd.api.settings import (
    Holdout,
    MiniBatches,
    OptimizerLike,
    Placement,
    Record,
    Start,
    Stopping,
)
from jaxgd.core.descent import Descent
from jaxgd.core.record import freeze
from jaxgd.data.statistics import on_device
from jaxgd.datasets.stream import RowSource
from jaxgd.engines import engine as engines
from jaxgd.inputs import frames
from jaxgd.inputs.validation import is_traced, warn_unaligned
from jaxgd.pipeline import holdout, streaming
from jaxgd.pipeline.preparation import (
    check_inputs,
    device_data,
    fixed_values,
    start_references,
    unstable_runs,
)
from jaxgd.pipeline.training import (
    Options,
    RunConfig,
    input_dtype,
    make_config,
    start_values,
    train,
    width,
)
from jaxgd.results.result import FitResult
from jaxgd.tuning import segments


@partial(jax.jit, static_argnames=("engine", "config"))
def _fit_compiled(engine: engines.Engine, data, hyper, config: RunConfig, held) -> Descent:
    return train(engine, data, hyper, config, held)


def fit(
    X,
    y,
    *,
    learning_rate: float,
    num_steps: int | None = None,
    seed: int = 0,
    optimizer: OptimizerLike = None, l2: float = 0.0, init: Start = 0.01,
    batches: MiniBatches | None = None, stopping: Stopping | None = None,
    record: Record | None = None, validation: tuple | Holdout | None = None,
    engine: str = "auto", placement: Placement | None = None,
) -> FitResult:
    """Fits ``y ≈ X @ weight + bias`` by gradient descent on the MSE.

    The start is drawn near zero from ``seed`` (``init=0`` starts from zeros); each
    step takes the loss's gradient with ``jax.grad`` and applies the optimizer. The whole
    run is one compiled program; calling ``fit`` again with the same shapes and options
    (any learning rate, seed, l2 or hyperparameter values) reuses it.

    Args:
      X: features, shape ``(n_samples, n_features)``; or, for data larger than memory, its
        ``jaxgd.data.statistics.SufficientStats`` (e.g. ``accumulate(npy_blocks(path))``), with
        y None: the moment engines (eigen, gram) need nothing else; or a file's rows as a
        ``jaxgd.datasets.RowSource`` (``npy_rows``, ``csv_rows``), with y None: mini-batch
        SGD then streams its batches from the file (see ``jaxgd.pipeline.streaming``), and
        full-batch descent trains on its sufficient statistics.
        A pandas DataFrame (or any table with ``__array__`` and ``columns``) gives its
        column names to the result's ``feature_names`` (see ``jaxgd.inputs.frames``), and so does
        a ``RowSource`` of a CSV file, with its target column's as ``target_name``.
      y: targets, shape ``(n_samples,)``; a pandas Series gives its name to
        ``target_name``. y's rows are matched to X's by position, never by index label:
        a Series whose index differs from a DataFrame X's (another row order, another
        frame's rows) gets a UserWarning saying so; align it first (``y.loc[X.index]``).
      learning_rate: step size, finite and positive.
      num_steps: number of updates, >= 1 (leave out for mini-batch SGD).
      seed: picks the random starting point (with ``init`` a ``LinearParams``, none: the
        seed then only picks a mini-batch run's batch order, when ``batches.seed`` is None).
      optimizer: a name from ``jaxgd.core.optimizers.OPTIMIZERS`` ("sgd", "momentum",
        "nesterov", "adam", "adamw", "rmsprop", "adagrad"), or a function that builds an
        optax optimizer from a learning rate (``optax.adam``, ``lambda lr: ...``: pass the
        same object each time to avoid recompiling), or a ``jaxgd.Optimizer`` with its
        schedule and hyperparameters (``Optimizer("momentum", momentum=0.8)``); plain
        gradient descent if None.
      l2: ridge strength: the loss becomes MSE + l2·‖weight‖² (the bias is not penalized).
      init: the starting point: a number, the standard deviation of the random start drawn
        from ``seed`` (0: zeros); or a ``LinearParams`` (weight ``(n_features,)``, bias
        ``()``, float, finite), e.g. a previous result's ``params``, to continue it. In the
        units of the data this run trains on (standardized features give standardized
        parameters). It may be the caller's tracer: ``jax.grad`` of the result with respect
        to it flows through the run.
      batches: ``jaxgd.MiniBatches(batch_size, epochs, seed)`` for mini-batch SGD (then
        leave ``num_steps`` out); None: full-batch gradient descent.
      stopping: ``jaxgd.Stopping`` (None: its defaults): the convergence and divergence
        criteria, the early exit (``early_exit``: stop updating once converged) and the
        float64 ``reference``.
      record: ``jaxgd.Record`` (None: its defaults): ``log_every``, ``snapshot_steps``,
        ``track_sharpness`` and ``progress_every``.
      validation: held-out rows ``(X_val, y_val)``, or ``jaxgd.Holdout(fraction, seed)``
        to hold out a seeded fraction of the rows: their MSE is recorded at every logged
        step (``validation_losses``) and at the end (``final_validation_loss``); see
        ``jaxgd.pipeline.holdout``. A diverged run's are NaN from its divergence on, the
        final one too: its parameters are frozen where it blew up and estimate nothing.
      engine: "direct" computes the loss from X at every step; "gram" from the data's
        float64 moments, O(d²) per step; "eigen" from the same moments in the eigenbasis of
        the loss, O(d) per step (sgd, momentum, nesterov only); "gram-fused" and
        "eigen-fused" run the same in one Pallas kernel (``jaxgd.engines.fused``; up to 15
        features); "auto" picks by cost and exactness, fused on a GPU or TPU (see
        ``jaxgd.engines.engine``).
      placement: ``jaxgd.Placement(unroll=...)`` (None: the default): steps per iteration
        of the compiled loop, a speed setting (see ``jaxgd.descend``).

    Returns:
      A ``FitResult``. A diverging run is a result, flagged ``diverged``, not an error.
      Its ``errors`` hold the final parameters' MSE, RMSE and MAE on the training and
      held-out rows, in float64 (None when the rows are not concrete arrays; the held-out
      side NaN when the run diverged).

    Example:
      >>> import numpy as np
      >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
      >>> result = fit(X, y, learning_rate=0.3, num_steps=200)
      >>> result.params.weight.round(3).tolist(), round(float(result.params.bias), 3)
      ([2.0], 3.0)
      >>> bool(result.converged), bool(result.diverged)
      (True, False)
    """
    return _fit(X, y, settings.options(locals(), sweeps=False))


def _run(engine: engines.Engine, data, hyper, config: RunConfig,
         plan: segments.Plan | None, held=None) -> Descent:
    """The run as one compiled scan, or with ``stop_at_convergence`` in segments, so that a
    run that converged early stops costing steps (``jaxgd.tuning.segments``)."""
    if plan is None or is_traced((data, hyper, held)):
        return _fit_compiled(engine, data, hyper, config, held)
    one = {name: np.asarray(value)[None] for name, value in hyper.items()}
    run = segments.run_segments(engine, data, one, config, plan, 1, "none", held)
    shared = {"snapshot_steps": run.snapshot_steps, "loss_steps": run.loss_steps}
    run = run._replace(snapshot_steps=None, loss_steps=None)
    return jax.tree_util.tree_map(lambda leaf: leaf[0], run)._replace(**shared)


def _fit(X, y, options: Options) -> FitResult:
    if isinstance(X, RowSource):  # a file: opened for this run (see jaxgd.pipeline.streaming)
        if options.validation is not None:  # by the file's names: its rows have none
            holdout.check_validation_names(options.validation, X)
        return streaming.run_on_rows(lambda data: _fit(data, None, options), X, y,
                                     options.batch_size, options.batch_seed)
    feature_names, target_name = frames.names_of(X, y)
    warn_unaligned(X, y)  # pandas would align by label; jaxgd goes by position
    X, y, held_plan = holdout.resolve(X, y, options)
    X, y, n_rows = check_inputs(X, y)
    config = make_config(options, n_rows)
    fixed = fixed_values(options, config.optimizer)
    reference = start_references(X, y, fixed["l2"]) if options.reference else lambda: None
    chosen, data = device_data(X, y, options.engine, config, 1, fixed["l2"])
    found = reference()
    optima, curvatures = (None, None) if found is None else found
    fixed["optimum"] = np.nan if optima is None else optima[0]
    fixed["unstable"] = unstable_runs(config.optimizer, fixed, fixed["l2"], curvatures)
    engine = engines.BY_NAME[chosen]
    fixed.update(start_values(options.init, width(engine, data)))
    hyper = {name: on_device(value, input_dtype(name)) for name, value in fixed.items()}
    held = None if held_plan is None else holdout.held_out(*held_plan, chosen)
    segmented = segments.make_plan(options, config, work=lambda: segments.work(
        chosen, n_rows, engine.n_features(data), 1, config.num_steps))
    run = _run(engine, data, hyper, config, segmented, held)
    optimal = optima[0] if options.reference and optima is not None else None
    return FitResult(**run._asdict(), learning_rate=hyper["learning_rate"], engine=chosen,
                     reference=freeze(optimal), feature_names=feature_names,
                     target_name=target_name, num_steps=config.num_steps,
                     errors=holdout.result_errors(run.params, X, y, held_plan,
                                                  diverged=run.diverged))
