"""``fit``: one linear-regression run by gradient descent, a thin layer over ``descend``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgd import convergence, minibatch, streaming
from jaxgd import engine as engines
from jaxgd.convergence import init_monitor, update_monitor
from jaxgd.datasets.stream import RowSource
from jaxgd.descent import Descent, check_snapshot_steps, default_snapshot_steps, descend
from jaxgd.least_squares import solve
from jaxgd.optimizers import OptimizerSpec, check_hyperparameter, make_spec
from jaxgd.params import init_params
from jaxgd.result import FitResult, freeze
from jaxgd.stability import stability
from jaxgd.statistics import SufficientStats, sufficient_statistics
from jaxgd.validation import (
    check_data,
    check_learning_rate,
    check_non_negative,
    check_positive_int,
    is_traced,
    warn,
)

#: Builds an optax optimizer from a learning rate, e.g. ``optax.sgd`` or ``optax.adam``.
OptimizerFactory = Callable[[jax.Array], optax.GradientTransformation]


class RunConfig(NamedTuple):
    """Everything about a run that is fixed at compile time (hashable, so jit can key on it).

    Numbers that may vary between runs or be traced by the caller (learning rate, seed, l2,
    the optimizer's hyperparameters, ``tol``, ``divergence_factor``) are not here: they are
    traced inputs of ``train`` (see ``criteria``).
    """

    num_steps: int
    optimizer: OptimizerSpec
    init_scale: float
    patience: int
    stop_at_convergence: bool
    snapshot_steps: tuple[int, ...]
    progress_every: int = 0
    log_every: int = 1
    batch_size: int | None = None  # mini-batch SGD (None: full batch)
    epochs: int | None = None


def make_config(
    num_steps: int,
    optimizer: str | OptimizerFactory | None,
    init_scale: float,
    tol: float,
    patience: int,
    divergence_factor: float,
    stop_at_convergence: bool,
    snapshot_steps: Sequence[int] | None,
    progress_every: int = 0,
    log_every: int = 1,
    schedule: str = "constant",
    schedule_steps: Mapping[str, int] | None = None,
    batch_size: int | None = None,
    epochs: int | None = None,
    n_rows: int = 0,
) -> RunConfig:
    """Validates the run options shared by ``fit`` and the sweeps."""
    num_steps, batch_size, epochs = _steps(num_steps, batch_size, epochs, n_rows)
    if batch_size is not None and stop_at_convergence:
        raise ValueError("stop_at_convergence is for full-batch runs; mini-batch runs judge "
                         "convergence on the epoch losses after the fact")
    if snapshot_steps is None:
        snapshot_steps = default_snapshot_steps(num_steps)
    criteria(tol, divergence_factor)  # checked here; traced inputs of ``train``
    return RunConfig(
        num_steps=num_steps,
        optimizer=make_spec(optimizer, schedule, schedule_steps, num_steps),
        init_scale=check_non_negative(init_scale, "init_scale"),
        patience=check_positive_int(patience, "patience"),
        stop_at_convergence=bool(stop_at_convergence),
        snapshot_steps=check_snapshot_steps(snapshot_steps, num_steps),
        progress_every=check_positive_int(progress_every, "progress_every", minimum=0),
        log_every=check_positive_int(log_every, "log_every"),
        batch_size=batch_size,
        epochs=epochs,
    )


def criteria(tol, divergence_factor) -> dict[str, Any]:
    """The convergence and divergence thresholds, checked (when concrete), as traced inputs
    of ``train``: a new ``tol`` never recompiles, and both may be the caller's tracers."""
    tol = check_non_negative(tol, "tol")
    divergence_factor = check_non_negative(divergence_factor, "divergence_factor")
    if not is_traced(divergence_factor) and divergence_factor <= 1:
        raise ValueError(f"divergence_factor must be > 1, got {divergence_factor}")
    return {"tol": tol, "divergence_factor": divergence_factor}


def _steps(num_steps, batch_size, epochs, n_rows: int):
    """num_steps for full batch; or batch_size and epochs, which set num_steps."""
    if batch_size is None and epochs is None:
        if num_steps is None:
            raise ValueError("give num_steps (or batch_size and epochs for mini-batch SGD)")
        return check_positive_int(num_steps, "num_steps"), None, None
    if batch_size is None or epochs is None:
        raise ValueError("mini-batch SGD needs both batch_size and epochs")
    if num_steps is not None:
        raise ValueError("with batch_size and epochs, leave num_steps out: it is "
                         "epochs × ceil(n / batch_size)")
    batch_size = check_positive_int(batch_size, "batch_size")
    if batch_size > n_rows:
        raise ValueError(f"batch_size must be <= the number of rows ({n_rows}), "
                         f"got {batch_size}")
    epochs = check_positive_int(epochs, "epochs")
    return epochs * minibatch.steps_per_epoch(n_rows, batch_size), batch_size, epochs


def check_hyperparameters(hyperparameters: Mapping[str, Any] | None, l2: float,
                          spec: OptimizerSpec) -> dict[str, float]:
    """Fixed hyperparameter values: the optimizer's defaults, overridden, plus l2."""
    values = spec.defaults()
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


def train(engine: engines.Engine, data, hyper: Mapping[str, jax.Array],
          config: RunConfig) -> Descent:
    """One run, traceable: draw the start from ``hyper["seed"]``, then descend on the loss.

    ``engine`` is the engine value and ``data`` what it prepared (``jaxgd.engine``);
    ``hyper`` holds this run's learning rate, seed, l2, optimizer hyperparameters, ``tol``
    and ``divergence_factor`` as (possibly traced) scalars. ``fit`` jits this; the sweeps
    vmap it over their grid, so a sweep member and the matching fit run the very same
    computation.
    """
    streamed = data if isinstance(data, streaming.StreamedRows) else None
    if streamed is not None:  # rows in a file: the loss on all of them comes from the moments
        engine, data = engines.GRAM, streamed.stats
    dtype = engines.dtype_of(data)
    params = init_params(jax.random.key(hyper["seed"]), engine.n_features(data),
                         config.init_scale, dtype)
    l2 = jnp.asarray(hyper["l2"], dtype)
    loss = engine.loss(data, l2)

    numeric = {k: v for k, v in hyper.items() if k not in NOT_OPTIMIZER}
    options = dict(
        tol=hyper["tol"],
        patience=config.patience,
        divergence_factor=hyper["divergence_factor"],
        stop_at_convergence=config.stop_at_convergence,
        snapshot_steps=config.snapshot_steps,
        progress_every=config.progress_every,
        log_every=config.log_every,
        noise=engine.noise(data),
    )
    optimizer = config.optimizer.build(numeric)
    if config.batch_size is not None:  # in LinearParams, whatever the engine's coordinates
        full_loss = lambda p: loss(engine.to_coordinates(data, p))  # noqa: E731
        return _train_minibatch(data if streamed is None else streamed, hyper, config, params,
                                optimizer, full_loss, l2, options)
    # The moment engines descend in their own coordinates (``jaxgd.engine``); the results are
    # mapped back to weight and bias inside the same program.
    run = descend(loss, engine.to_coordinates(data, params), optimizer, config.num_steps,
                  **options)
    return run._replace(params=engine.from_coordinates(data, run.params),
                        snapshots=engine.from_coordinates(data, run.snapshots))


#: Traced inputs of ``train`` that are not the optimizer's hyperparameters.
NOT_OPTIMIZER = ("seed", "l2", "batch_seed", "tol", "divergence_factor")


def _train_minibatch(data, hyper, config, params, optimizer, full_loss, l2, options):
    """Mini-batch SGD: batch losses per step, and the full-data loss at each epoch start."""
    if isinstance(data, streaming.StreamedRows):  # batches read from a file by the host
        n_rows = data.n_rows
        batches, data_loss = streaming.batches(data, config.batch_size)
    else:
        n_rows = data.X.shape[0]
        batches, data_loss = _batches_in_memory(data, hyper, config)
    per_epoch = minibatch.steps_per_epoch(n_rows, config.batch_size)
    epoch_starts = tuple(range(0, config.num_steps + 1, per_epoch))
    wanted = config.snapshot_steps
    options["snapshot_steps"] = tuple(sorted(set(wanted) | set(epoch_starts)))

    def batch_loss(params, batch):
        penalty = l2 * jnp.sum(params.weight * params.weight)  # ridge: the bias is free
        return data_loss(params, batch) + penalty

    # Divergence is measured against the loss on all the data: the first batch's loss can be
    # near 0 by chance, and a multiple of it would flag a healthy run.
    run = descend(batch_loss, params, optimizer, config.num_steps, batches=batches,
                  initial_loss=full_loss(params), **options)
    slots = options["snapshot_steps"]
    pick = lambda steps: jax.tree_util.tree_map(  # noqa: E731
        lambda leaf: leaf[jnp.asarray([slots.index(s) for s in steps], jnp.int32)],
        run.snapshots)
    epoch_losses = jax.vmap(full_loss)(pick(epoch_starts))
    converged_epoch = _converged_index(epoch_losses, config, hyper)
    return run._replace(
        final_loss=full_loss(run.params),
        converged_step=jnp.where(converged_epoch >= 0, converged_epoch * per_epoch, -1),
        snapshots=pick(wanted),
        snapshot_steps=jnp.asarray(wanted, jnp.int32),
        epoch_losses=epoch_losses,
    )


def _batches_in_memory(data, hyper, config):
    """Batches of rows in memory, reshuffled every epoch from the run's batch seed."""
    n_rows = data.X.shape[0]
    padded = n_rows % config.batch_size != 0
    key = jax.random.fold_in(jax.random.key(hyper.get("batch_seed", hyper["seed"])), 1)

    def loss(params, batch):
        return minibatch.batch_mse(params, batch, data.X, data.y, padded)

    return minibatch.shuffled_batches(key, n_rows, config.batch_size), loss


def _converged_index(losses: jax.Array, config: RunConfig, hyper) -> jax.Array:
    """The convergence criterion of ``jaxgd.convergence`` applied to a loss sequence."""
    def step(monitor, indexed):
        index, loss = indexed
        monitor = update_monitor(monitor, loss, index, hyper["tol"], config.patience,
                                 hyper["divergence_factor"])
        return monitor, None

    indices = jnp.arange(losses.shape[0], dtype=jnp.int32)
    monitor, _ = jax.lax.scan(step, init_monitor(losses.dtype), (indices, losses))
    return monitor.converged_step


@partial(jax.jit, static_argnames=("engine", "config"))
def _fit_compiled(engine: engines.Engine, data, hyper, config: RunConfig) -> Descent:
    return train(engine, data, hyper, config)


def check_inputs(X, y) -> tuple[Any, Any, int]:
    """Checks arrays (X, y), or sufficient statistics with y None; returns them and n."""
    if isinstance(X, streaming.Streamed):  # an opened RowSource (see jaxgd.streaming)
        return X, None, X.n
    if isinstance(X, SufficientStats):
        if y is not None:
            raise ValueError("with sufficient statistics as the data, y must be None: the "
                             "statistics already describe the targets")
        return X, None, int(X.n)
    X, y = check_data(X, y)
    return X, y, X.shape[0]


def device_data(X, y, engine_name: str, config: RunConfig, num_runs: int,
                l2: float | None = 0.0):
    """Checks the data on the host, picks the engine, and prepares what it reads on device.

    ``l2`` is the ridge strength every run shares, or None when it varies across runs.

    Returns:
      (engine that will run, its data in JAX's default float dtype).
    """
    if isinstance(X, streaming.Streamed):  # rows in a file
        if config.batch_size is not None:  # read batch by batch
            return streaming.device_data(X, engine_name, config)
        X = X.stats  # full batch: the file's moments are all it takes
    streamed = isinstance(X, SufficientStats)  # data larger than memory: only the moments
    if streamed and (config.batch_size is not None or engine_name == "direct"):
        raise ValueError("data given as sufficient statistics train with the gram or eigen "
                         "engine only (no rows to compute a direct loss or draw batches from)")
    if not streamed:
        X, y = check_data(X, y)
    traced = is_traced((X, y))
    if config.batch_size is not None:  # batches are rows: only the direct engine has them
        if engine_name in ("gram", "eigen"):
            raise ValueError(f"mini-batch SGD needs engine='direct' (or 'auto'): the "
                             f"{engine_name} engine sees the data only as a whole, through its "
                             "moments")
        engine_name = "direct"
    n_rows, n_features = (int(X.n), X.mean_x.shape[0]) if streamed else X.shape
    # The eigen basis depends on l2: one concrete l2 for every run (asked for explicitly, a
    # traced l2 is fine too: the basis is then computed in the traced program).
    fixed_l2 = l2 is not None and (engine_name == "eigen" or not is_traced(l2))
    if streamed and engine_name == "auto":  # no rows: the moments, whatever they cost
        engine_name = engines.moment_engine(config.optimizer.name, fixed_l2)
    chosen = engines.choose_engine(engine_name, n_rows, n_features, config.num_steps,
                                   num_runs, config.optimizer.name, fixed_l2, traced)
    return chosen, engines.prepare(chosen, X, y, l2=0.0 if l2 is None else l2)


CONDITION_WARNING = 1e4  # condition numbers from here on get a warning


#: From this many rows on, the reference comes from the data's float64 moments (one pass,
#: no copy) rather than an SVD of [X, 1]: ~6x cheaper at n = 10⁶, d = 32, and as accurate
#: for a reference loss (the moments are centred, so their conditioning is X's, not AᵀA's).
MOMENTS_FROM_ROWS = 50_000


def reference_loss(X, y, l2) -> float | None:
    """The least-squares (ridge) optimum's loss, warning first if the features are so badly
    conditioned that plain gradient descent will crawl (both cost one O(n·d²) pass).

    None when X, y or l2 are traced by the caller: the reference is a float64 oracle
    computed on the host, from concrete numbers only."""
    if is_traced((X, y, l2)):
        return None
    if isinstance(X, streaming.Streamed):
        X = X.stats
    if not isinstance(X, SufficientStats) and np.shape(X)[0] >= MOMENTS_FROM_ROWS:
        X, y = sufficient_statistics(X, y), None
    condition = stability(X, l2).condition_number
    if condition == float("inf"):
        warn("the features are linearly dependent (a constant column, or one column a "
             "combination of others): the least-squares weights are not unique; drop a column")
    elif condition >= CONDITION_WARNING:
        warn(f"the features are badly conditioned (Hessian condition number {condition:.3g}): "
             "gradient descent will crawl along the flattest direction; standardize them "
             "(jaxgd.Standardizer) and map the result back with jaxgd.unstandardize_params")
    return solve(X, y, l2=l2).loss


def check_seed(seed, name: str = "seed") -> int:
    """A seed is a non-negative integer below 2**32."""
    seed = check_positive_int(seed, name, minimum=0)
    if seed >= 2**32:
        raise ValueError(f"{name} must be < 2**32, got {seed}")
    return seed


def fit(
    X,
    y,
    *,
    learning_rate: float,
    num_steps: int | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    epochs: int | None = None,
    batch_seed: int | None = None,
    optimizer: str | OptimizerFactory | None = None,
    schedule: str = "constant",
    schedule_steps: Mapping[str, int] | None = None,
    hyperparameters: Mapping[str, float] | None = None,
    l2: float = 0.0,
    init_scale: float = 0.01,
    tol: float = convergence.DEFAULT_TOL,
    patience: int = convergence.DEFAULT_PATIENCE,
    divergence_factor: float = convergence.DEFAULT_DIVERGENCE_FACTOR,
    stop_at_convergence: bool = False,
    snapshot_steps: Sequence[int] | None = None,
    reference: bool = True,
    progress_every: int = 0,
    engine: str = "auto",
    log_every: int = 1,
) -> FitResult:
    """Fits ``y ≈ X @ weight + bias`` by gradient descent on the MSE.

    The start is drawn near zero from ``seed`` (``init_scale=0`` starts from zeros); each
    step takes the loss's gradient with ``jax.grad`` and applies the optimizer. The whole
    run is one compiled program; calling ``fit`` again with the same shapes and options
    (any learning rate, seed, l2 or hyperparameter values) reuses it.

    Args:
      X: features, shape ``(n_samples, n_features)``; or, for data larger than memory, its
        ``jaxgd.statistics.SufficientStats`` (e.g. ``accumulate(npy_blocks(path))``), with
        y None: the moment engines (eigen, gram) need nothing else; or a file's rows as a
        ``jaxgd.datasets.RowSource`` (``npy_rows``, ``csv_rows``), with y None: mini-batch
        SGD then streams its batches from the file (see ``jaxgd.streaming``), and
        full-batch descent trains on its sufficient statistics.
      y: targets, shape ``(n_samples,)``.
      learning_rate: step size, finite and positive.
      num_steps: number of updates, >= 1 (leave out for mini-batch SGD).
      seed: picks the random starting point.
      batch_size: mini-batch SGD: rows per step, in [1, n] (see ``jaxgd.minibatch``); the
        run then takes epochs × ceil(n / batch_size) steps, and ``batch_size = n`` is
        full-batch gradient descent exactly.
      epochs: mini-batch SGD: passes over the data.
      batch_seed: picks the batch order (reshuffled every epoch); ``seed`` if None (0 for
        a ``RowSource``, whose one order serves every run of a sweep).
      optimizer: a name from ``jaxgd.optimizers.OPTIMIZERS`` ("sgd", "momentum",
        "nesterov", "adam", "adamw", "rmsprop", "adagrad"), or a function that builds an
        optax optimizer from a learning rate (``optax.adam``, ``lambda lr: ...``: pass the
        same object each time to avoid recompiling); plain gradient descent if None.
      schedule: "constant", "exponential_decay", "cosine_decay" or "warmup_cosine".
      schedule_steps: the schedule's step counts (see ``jaxgd.optimizers``).
      hyperparameters: values for the optimizer's and schedule's other hyperparameters,
        e.g. ``{"momentum": 0.8}``; the defaults are in ``jaxgd.optimizers``.
      l2: ridge strength: the loss becomes MSE + l2·‖weight‖² (the bias is not penalized).
      init_scale: standard deviation of the starting weight and bias; 0 means zeros.
      tol, patience, divergence_factor: convergence and divergence criteria, see
        ``jaxgd.convergence``.
      stop_at_convergence: stop updating once converged (the history keeps its length).
      snapshot_steps: steps whose parameters to keep; if None, the beginning, the middle on a
        log scale (√num_steps) and the end.
      reference: also compute the least-squares optimum's loss (float64), for ``gap``, and
        warn (RuntimeWarning) when the features' condition number is 1e4 or more.
      progress_every: report progress every this many steps (see ``jaxgd.progress``).
      engine: "direct" computes the loss from X at every step; "gram" from the data's
        float64 moments, O(d²) per step; "eigen" from the same moments in the eigenbasis of
        the loss, O(d) per step (sgd, momentum, nesterov only); "auto" picks by cost and
        exactness (see ``jaxgd.engine``).
      log_every: keep every k-th loss in the history (steps 0, k, 2k, ...).

    Returns:
      A ``FitResult``. A diverging run is a result, flagged ``diverged``, not an error.

    Example:
      >>> import numpy as np
      >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
      >>> result = fit(X, y, learning_rate=0.3, num_steps=200)
      >>> result.params.weight.round(3).tolist(), round(float(result.params.bias), 3)
      ([2.0], 3.0)
      >>> bool(result.converged), bool(result.diverged)
      (True, False)
    """
    if isinstance(X, RowSource):  # a file: opened for this run (see jaxgd.streaming)
        return streaming.run_on_rows(fit, locals())
    learning_rate = check_learning_rate(learning_rate)
    seed = check_seed(seed)
    X, y, n_rows = check_inputs(X, y)
    config = make_config(num_steps, optimizer, init_scale, tol, patience, divergence_factor,
                         stop_at_convergence, snapshot_steps, progress_every, log_every,
                         schedule, schedule_steps, batch_size, epochs, n_rows)
    fixed = check_hyperparameters(hyperparameters, l2, config.optimizer)
    chosen, data = device_data(X, y, engine, config, 1, fixed["l2"])
    dtype = jnp.result_type(float)
    fixed.update(criteria(tol, divergence_factor), learning_rate=learning_rate)
    hyper = {name: jnp.asarray(value, dtype) for name, value in fixed.items()}
    hyper["seed"] = jnp.asarray(seed, jnp.uint32)
    if batch_seed is not None:
        hyper["batch_seed"] = jnp.asarray(check_seed(batch_seed, "batch_seed"), jnp.uint32)
    run = _fit_compiled(engines.BY_NAME[chosen], data, hyper, config)
    return FitResult(
        **run._asdict(),
        learning_rate=hyper["learning_rate"],
        engine=chosen,
        reference=freeze(reference_loss(X, y, fixed["l2"]) if reference else None),
    )
