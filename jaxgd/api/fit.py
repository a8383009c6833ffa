"""``fit``: one linear-regression run by gradient descent, a thin layer over ``descend``."""

from __future__ import annotations

from functools import partial

import jax
import numpy as np

from jaxgd.api import settings
from jaxgd.api.grid import check_settings
from jaxgd.api.settings import (
    Holdout,
    MiniBatches,
    OptimizerLike,
    Placement,
    Record,
    Start,
    Stopping,
)
from jaxgd.core.custom_model import Model
from jaxgd.core.descent import Descent
from jaxgd.core.record import freeze
from jaxgd.datasets.stream import RowSource
from jaxgd.engines import engine as engines
from jaxgd.pipeline import custom, holdout
from jaxgd.pipeline.options import Options, RunConfig
from jaxgd.pipeline.problem import Problem, solve
from jaxgd.pipeline.training import train
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
    engine: str = "auto", placement: Placement | None = None, model: Model | None = None,
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

      model: a ``jaxgd.Model`` (its loss, start and prediction) to train instead of linear
        regression, on the direct path (see ``jaxgd.core.custom_model``): the run starts
        at the model's ``init``, or at ``init`` given as a pytree of its structure (e.g. a
        previous result's ``params``; it may be traced: ``jax.grad`` with respect to the
        start flows through the run); runs are judged without a known optimum
        (``optimal_loss`` None); held-out losses are the model's loss on the held-out rows;
        ``errors`` are the MSE, RMSE and MAE of the model's ``predict`` against y (None
        without one); ``predict`` uses the model's; ``Record.track_sharpness`` (adam)
        estimates the preconditioned sharpness at the run's parameters by power iteration
        (``jaxgd.theory.sharpness.power_sharpness``). l2 and a number as init are refused
        with it.
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


def _run(problem: Problem, plan: segments.Plan | None) -> Descent:
    """The run as one compiled scan, or with ``stop_at_convergence`` in segments, so that a
    run that converged early stops costing steps (``jaxgd.tuning.segments``)."""
    engine, data, hyper, config, held = (problem.engine, problem.data, problem.hyper,
                                         problem.config, problem.held)
    if plan is None or problem.traced:
        return _fit_compiled(engine, data, hyper, config, held)
    one = {name: np.asarray(value)[None] for name, value in hyper.items()}
    run = segments.run_segments(engine, data, one, config, plan, 1, "none", held)
    shared = {"snapshot_steps": run.snapshot_steps, "loss_steps": run.loss_steps}
    run = run._replace(snapshot_steps=None, loss_steps=None)
    return jax.tree_util.tree_map(lambda leaf: leaf[0], run)._replace(**shared)


def _fit(X, y, options: Options) -> FitResult:
    options = custom.model_options(options, X)  # a user's model: checked, on the direct path
    if isinstance(X, RowSource):  # refused before the file is read
        check_settings(X, options)
    return solve(X, y, options, partial(_finish, options=options))


def _finish(problem: Problem, options: Options) -> FitResult:
    """The prepared run, run, as a ``FitResult``."""
    config = problem.config
    segmented = segments.make_plan(options, config, work=lambda: segments.work(
        problem.chosen, problem.n_rows, problem.n_features(), 1, config.num_steps))
    run = _run(problem, segmented)
    feature_names, target_name = problem.names
    return FitResult(**run._asdict(), learning_rate=problem.hyper["learning_rate"],
                     engine=problem.chosen, reference=freeze(problem.optimal),
                     feature_names=feature_names, target_name=target_name,
                     num_steps=config.num_steps, model=options.model,
                     errors=holdout.result_errors(run.params, problem.X, problem.y,
                                                  problem.held_plan, diverged=run.diverged,
                                                  model=options.model))
