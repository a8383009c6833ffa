"""The run core shared by ``fit``, ``sweep`` and ``grid_sweep``: one pure program.

``train`` is the one traced program: it draws the start, builds the optimizer from (possibly
traced) hyperparameters and runs ``descend`` on the engine's loss, under the compile-time
settings of a ``RunConfig`` (``jaxgd.pipeline.options``). ``fit`` jits it; the sweeps vmap
it over their grid; the caller's own ``jit``, ``vmap`` and ``grad`` wrap either. Host-side
checks and references live in ``jaxgd.pipeline.preparation``.
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from jaxgd.core import minibatch
from jaxgd.core.convergence import OPTIMUM_INPUTS, at_optimum, init_monitor, update_monitor
from jaxgd.core.custom_model import START
from jaxgd.core.descent import (
    Descent,
    Loop,
    descend,
    descent_loop,
)
from jaxgd.core.params import LinearParams, check_init, init_params
from jaxgd.engines import engine as engines
from jaxgd.engines import fused
from jaxgd.inputs.validation import (
    default_float,
)
from jaxgd.pipeline import holdout, streaming
from jaxgd.pipeline.options import RunConfig
from jaxgd.theory import sharpness


def train(engine: engines.Engine, data, hyper: Mapping[str, jax.Array],
          config: RunConfig, held=None) -> Descent:
    """One run, traceable: draw the start from ``hyper["seed"]``, then descend on the loss.

    ``engine`` is the engine value and ``data`` what it prepared (``jaxgd.engines.engine``);
    ``hyper`` holds this run's learning rate, seed, l2, optimizer hyperparameters, ``tol``
    and ``divergence_factor`` as (possibly traced) scalars. ``fit`` jits this; the sweeps
    vmap it over their grid, so a sweep member and the matching fit run the very same
    computation (in other compiled programs: equal to float rounding). ``held`` is the
    held-out data (``jaxgd.pipeline.holdout``), or None; with k folds, ``data`` and ``held`` hold
    every fold and ``hyper["fold"]`` picks this run's.
    """
    # The whole descent in one kernel (the same loss, optimizer, verdicts and held-out
    # loss, every fold's data given to it whole); a run that records its sharpness, or whose
    # held-out rows are traced (kept as rows, not moments), takes the scan loop.
    if engine.fused and config.batch_size is None and not config.track_sharpness \
            and not isinstance(held, engines.Rows):
        one_fold = holdout.pick(data, 0) if "fold" in hyper else data  # for the shapes
        params = _setup(engine, one_fold, hyper, config)[0]
        return fused.descend_fused(descend_scan, engine, data, hyper, config, params,
                                   tuple(sorted(_numeric(hyper))), held)
    data, held, hyper = _fold(data, held, hyper)
    if config.batch_size is not None:
        return _train_minibatch(engine, data, hyper, config, held)
    return descend_scan(engine, data, hyper, config, held=held)


def descend_scan(engine: engines.Engine, data, hyper: Mapping[str, jax.Array],
                 config: RunConfig, params=None, held=None) -> Descent:
    """A full-batch run (from ``params``, else the seed's draw) in the scan loop
    (``jaxgd.core.descent``): the reference path, which the fused path
    (``jaxgd.engines.fused``) matches and falls back on for ``grad``."""
    loop, engine, data = run_loop(engine, data, hyper, config, params=params, held=held)
    steps_scanned = -(-config.num_steps // config.log_every) * config.log_every
    state, (losses, logged) = loop.run(loop.init(), 0, steps_scanned)
    return in_weights(engine, data, loop.finish(state, losses, logged))


def run_loop(engine: engines.Engine, data, hyper: Mapping[str, jax.Array], config: RunConfig,
             segmented: bool = False, params=None,
             held=None) -> tuple[Loop, engines.Engine, Any]:
    """A full-batch run's ``Loop`` (``jaxgd.core.descent.descent_loop``) in the engine's
    coordinates, with the engine and data it runs on (``in_weights`` maps its results back).

    ``train`` runs it whole; ``jaxgd.tuning.segments`` runs it in segments (``segmented=True``).
    ``held``: held-out data, as in ``train`` (k folds picked here too).
    """
    data, held, hyper = _fold(data, held, hyper)
    engine, data = _full_data(engine, data)
    params, loss, optimizer, options = _setup(engine, data, hyper, config, params, held)
    # The moment engines descend in their own coordinates (``jaxgd.engines.engine``).
    # Plain gradient descent never raises the loss below its stability limit (see
    # jaxgd.core.convergence); other optimizers and mini-batches may.
    start = engine.to_coordinates(data, params)
    # A user's model's loss is not quadratic: its Hessian is taken where the run is.
    observe = sharpness.tracker(loss, start, {**config.optimizer.defaults(), **hyper},
                                quadratic=engine.start is None) if (
        config.track_sharpness) else None
    loop = descent_loop(loss, start, optimizer, config.num_steps,
                        monotone=config.optimizer.monotone, segmented=segmented,
                        observe=observe, **options)
    return loop, engine, data


def in_weights(engine: engines.Engine, data, run: Descent) -> Descent:
    """A run's parameters and snapshots mapped back from the engine's coordinates to weight
    and bias (inside the same program)."""
    return run._replace(params=engine.from_coordinates(data, run.params),
                        snapshots=engine.from_coordinates(data, run.snapshots))


def _fold(data, held, hyper):
    """With k folds (``hyper["fold"]``), this run's fold of the stacked data and held-out
    data (``jaxgd.pipeline.holdout.fold_data``), and ``hyper`` without the fold: picked once."""
    if "fold" not in hyper:
        return data, held, hyper
    fold = hyper["fold"]
    hyper = {name: value for name, value in hyper.items() if name != "fold"}
    return holdout.pick(data, fold), holdout.pick(held, fold), hyper


def width(engine: engines.Engine, data) -> int:
    """The model's number of features, from the prepared data (rows in a file: from their
    moments)."""
    if isinstance(data, streaming.StreamedRows):
        return engines.GRAM.n_features(data.stats)
    return engine.n_features(data)


def _full_data(engine, data):
    """Rows in a file: the loss on all of them comes from the moments."""
    if isinstance(data, streaming.StreamedRows):
        return engines.GRAM, data.stats
    return engine, data


def _setup(engine, data, hyper, config, params=None, held=None):
    """The start (``params``; else the run's ``init``, ``start_values``; else drawn from
    ``hyper["seed"]``), the loss, the optimizer and descend's options (with ``held``, the
    held-out loss of the engine's coordinates)."""
    dtype = engines.dtype_of(data)
    if params is None and engine.start is not None:  # a user's model: its start is an input
        params = engine.start(data, hyper)
    if params is None and INIT[0] in hyper:  # given, in weight and bias (the data's units)
        params = LinearParams(*(jnp.asarray(hyper[name], dtype) for name in INIT))
    if params is None:
        params = init_params(jax.random.key(hyper["seed"]), engine.n_features(data),
                             config.init_scale, dtype)
    l2 = jnp.asarray(hyper["l2"], dtype)
    return params, engine.loss(data, l2), config.optimizer.build(_numeric(hyper)), dict(
        tol=hyper["tol"],
        patience=config.patience,
        divergence_factor=hyper["divergence_factor"],
        stop_at_convergence=config.stop_at_convergence,
        snapshot_steps=config.snapshot_steps,
        progress_every=config.progress_every,
        log_every=config.log_every,
        noise=engine.noise(data),
        optimum=hyper.get("optimum"),
        unstable=hyper.get("unstable", False),
        validation=None if held is None else partial(_held_loss, engine, data, held),
        unroll=config.unroll,
        at_optimum=_at_optimum(engine, data, hyper),
    )


def _at_optimum(engine, data, hyper):
    """Whether a run's final coordinates are the optimum's parameters (``OPTIMUM``, given by
    the host's float64 reference) to the dtype's resolution; None without them (traced data,
    no reference, a user's model)."""
    if OPTIMUM[0] not in hyper or engine.held_loss is not None:
        return None
    best = LinearParams(*(hyper[name] for name in OPTIMUM))
    return lambda coordinates: at_optimum(engine.from_coordinates(data, coordinates), best)


def _held_loss(engine, data, held, coordinates):
    """The held-out MSE of parameters in ``engine``'s coordinates (mapped back to weight and
    bias first: O(d²) for the eigen engine, at the logged steps only); a user's model's
    engine gives its own loss (``engine.held_loss``)."""
    if engine.held_loss is not None:  # a user's model (jaxgd.engines.model)
        return engine.held_loss(data, held, coordinates)
    return holdout.validation_loss(engine.from_coordinates(data, coordinates), held)


def _numeric(hyper: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """The optimizer's hyperparameters among ``train``'s traced inputs."""
    return {k: v for k, v in hyper.items()
            if k not in NOT_OPTIMIZER and not k.startswith(START)}  # a model's start


#: Traced inputs of ``train`` that are not the optimizer's hyperparameters.
NOT_OPTIMIZER = ("seed", "l2", "batch_seed", "tol", "divergence_factor", "optimum",
                 "unstable", "fold", "init_weight", "init_bias", "optimum_weight",
                 "optimum_bias")
#: Traced inputs of ``train`` that hold the optimum's parameters (float64 on the host).
OPTIMUM = OPTIMUM_INPUTS
#: Traced inputs of ``train`` that hold a given start (``start_values``).
INIT = ("init_weight", "init_bias")
#: Traced inputs that are seeds (unsigned integers); the rest are floats.
SEEDS = ("seed", "batch_seed")


def input_dtype(name: str):
    """The dtype of ``train``'s traced input ``name``: uint32 seeds, a bool for whether the
    run is above its stability limit, else JAX's float."""
    if name == "unstable":
        return jnp.bool_
    if name == "fold":
        return jnp.int32
    return jnp.uint32 if name in SEEDS else default_float()


def start_values(init, n_features: int, run_shape: tuple[int, ...] = (),
                 axes: tuple[str, ...] = ()) -> dict[str, Any]:
    """``train``'s traced inputs for a given start ``init`` (None: none, the seed draws it):
    ``init_weight`` and ``init_bias``, one per run, the grid ``run_shape`` unrolled in
    row-major order as the sweeps' other inputs are (none for one run, ``fit``). Checked by
    ``jaxgd.core.params.check_init``; its errors name ``init``.

    Example:
      >>> import numpy as np
      >>> start = start_values(LinearParams(np.zeros(2), np.float32(1.0)), 2, (2, 3))
      >>> start["init_weight"].shape, start["init_bias"].shape
      ((6, 2), (6,))
    """
    if init is None:
        return {}
    params = check_init(init, n_features, run_shape, axes)
    if run_shape:
        params = LinearParams(params.weight.reshape(-1, n_features), params.bias.reshape(-1))
    return dict(zip(INIT, params, strict=True))


def _train_minibatch(engine, data, hyper, config, held=None):
    """Mini-batch SGD: batch losses per step, and the full-data loss at each epoch start."""
    streamed = data if isinstance(data, streaming.StreamedRows) else None
    engine, moments = _full_data(engine, data)
    params, loss, optimizer, options = _setup(engine, moments, hyper, config)
    if held is not None:  # the mini-batch loop descends in weight and bias
        options["validation"] = partial(holdout.validation_loss, held=held)
    l2 = jnp.asarray(hyper["l2"], engines.dtype_of(moments))
    # In LinearParams, whatever the engine's coordinates.
    full_loss = lambda p: loss(engine.to_coordinates(moments, p))  # noqa: E731
    if engine.batch_loss is not None:  # a user's model (jaxgd.engines.model): in its params
        params, full_loss = engine.to_coordinates(moments, params), loss
        if held is not None:
            options["validation"] = partial(engine.held_loss, moments, held)
    data = moments if streamed is None else streamed
    if isinstance(data, streaming.StreamedRows):  # batches read from a file by the host
        n_rows = data.n_rows
        batches, data_loss = streaming.batches(data, config.batch_size)
    else:
        n_rows = data.X.shape[0]
        batches, data_loss = _batches_in_memory(data, hyper, config)
    batch_padded = n_rows % config.batch_size != 0
    per_epoch = minibatch.steps_per_epoch(n_rows, config.batch_size)
    epoch_starts = tuple(range(0, config.num_steps + 1, per_epoch))
    wanted = config.snapshot_steps
    options["snapshot_steps"] = tuple(sorted(set(wanted) | set(epoch_starts)))
    # The batch losses hover above the optimum by SGD's noise, so no stall test on them,
    # and the full-batch stability limit does not bound a mini-batch run.
    options["optimum"], options["unstable"], options["at_optimum"] = None, False, None

    def batch_loss(params, batch):
        if engine.batch_loss is not None:  # a user's model: its own loss on the batch
            return engine.batch_loss(moments, params, batch, batch_padded)
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
        stalled=jnp.zeros((), bool),  # judged on the epoch losses, which have no stall test
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
    """The convergence criterion of ``jaxgd.core.convergence`` applied to a loss sequence."""
    def step(monitor, indexed):
        index, loss = indexed
        monitor = update_monitor(monitor, loss, index, hyper["tol"], config.patience,
                                 hyper["divergence_factor"])
        return monitor, None

    indices = jnp.arange(losses.shape[0], dtype=jnp.int32)
    monitor, _ = jax.lax.scan(step, init_monitor(losses.dtype), (indices, losses))
    return monitor.converged_step


