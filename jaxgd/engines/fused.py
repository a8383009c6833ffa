"""The fused path: the whole descent of a block of runs in one Pallas kernel.

On a GPU the scan path (``jaxgd.core.descent``) is bound by kernel launches: every step of the
loop is a handful of small kernels over the runs. For the moment engines (eigen, gram) a run
is d + 1 coordinates and a few optimizer and monitor scalars, so the whole T-step descent of
a block of runs fits in one program's registers: ``pallas_call`` with a grid over blocks of
``BLOCK_RUNS`` runs, each program looping over the steps with ``lax.fori_loop`` and writing
one row of the loss history per logged step.

Inside the kernel nothing is rewritten by hand: the loss is the engine's own
(``Engine.loss``), differentiated with ``jax.value_and_grad``; the update is the run's own
optax ``GradientTransformation`` (``OptimizerSpec.build``, with optax's extra arguments, as
in ``descend``), traced in the kernel body; the verdicts come from
``jaxgd.core.convergence.update_monitor``. Each is ``vmap``-ped over the block's runs, which for
the scalar layout (``jaxgd.engines.layout``) makes every operation elementwise over a ``(block,)``
vector. The engine's data enter as one flat vector of constants and are read back as
scalars with static indices (``_Table``): no slicing of values inside the kernel, which
Triton cannot do. Divergence freezing, ``stop_at_convergence``, ``log_every`` (with a last
block padded past ``num_steps``) and snapshots follow ``descend`` step for step, so the
histories agree with the scan path to float rounding (tests/engines/test_fused.py).

Where it compiles: on a GPU through Pallas's Triton lowering (Mosaic GPU, JAX 0.10's
default, cannot lower ``jax.grad``'s ``add_any`` yet), on a TPU through Mosaic, and on a
CPU it is interpreted (``interpret=True``); ``lax.platform_dependent`` picks when the
program is lowered. The kernel keeps to what Triton takes: every load and store is one
``(block,)`` row or one scalar at a static or loop index, every operation elementwise.
The tests lower it for CUDA on a CPU (one Triton call); compiling and running it on a GPU
or TPU are checked by ``benchmarks/gpu_check.sh`` only where a device is at hand.

Held-out data (``jaxgd.pipeline.holdout``) run in the kernel too: the held-out moments (a
``jaxgd.engines.gram.Quadratic``) join the constants, and at each logged step the kernel writes the
held-out MSE of the parameters the logged loss is of (the eigen coordinates mapped back as
θ = Qz term by term), as the scan path records it; the final held-out loss is the scan
path's own function of the final parameters, outside the kernel. With k folds every fold's
data come whole, and each run's fold is gathered once, outside the kernel, into per-run
constants: ``(constants, K)`` rows read as ``(block,)`` vectors, still elementwise.

Scope: narrow models only (the scalar layout, d + 1 <= ``layout.MAX_SCALARS``), full
batch, data not batched by the caller's ``vmap`` and held-out rows not traced by the
caller (kept as rows, not moments): such runs take the scan path, with its numbers. No
progress reports (``progress_every``) come from inside the kernel. On a CPU
the kernel runs with ``interpret=True``. Differentiating through a fused run (``jax.grad``
of a sweep) differentiates the scan path instead (``custom_jvp``): the values and
derivatives are then the scan path's, which is the reference.

Example:
  >>> import numpy as np
  >>> from jaxgd import sweep
  >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
  >>> fused = sweep(X, y, learning_rates=[0.1, 0.3], num_steps=20, engine="eigen-fused")
  >>> scan = sweep(X, y, learning_rates=[0.1, 0.3], num_steps=20, engine="eigen")
  >>> bool(np.allclose(fused.losses, scan.losses, rtol=1e-5)), fused.engine
  (True, 'eigen-fused')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.custom_batching import custom_vmap
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pl_triton

from jaxgd.core import convergence
from jaxgd.core.convergence import OPTIMUM_INPUTS, init_monitor, update_monitor
from jaxgd.core.params import LinearParams
from jaxgd.core.record import Descent
from jaxgd.engines import gram, layout
from jaxgd.engines.eigen import EigenBasis

#: Runs per kernel program (a power of 2, as Triton's tensors must be).
BLOCK_RUNS = 128
#: Triton's settings for the kernel on a GPU (Triton's defaults).
TRITON = pl_triton.CompilerParams()
#: Per-run inputs of the monitor, after the optimizer's hyperparameters.
MONITOR_INPUTS = ("l2", "tol", "divergence_factor", "optimum", "unstable", "noise")
#: The monitor's fields the result needs, in the kernel's output order.
_VERDICTS = ("converged_step", "diverged_step", "flat_steps", "level_steps")

#: The scan path: ``(engine, data, hyper, config, params) -> Descent`` for one run.
ScanPath = Callable[..., Descent]


def descend_fused(scan: ScanPath, engine, data, hyper: Mapping[str, jax.Array], config,
                  params, optimizer_names: tuple[str, ...], held=None) -> Descent:
    """One run (or, under ``vmap``, all of them) through the fused kernel.

    The signature is the scan path's, ``scan(engine, data, hyper, config, params, held)``,
    plus the names of the optimizer's hyperparameters in ``hyper``. ``held`` is the
    held-out data as a ``jaxgd.engines.gram.Quadratic`` (or None). With k folds ``data`` and
    ``held`` hold every fold on a leading axis and ``hyper["fold"]`` picks the run's, as
    in the scan path. Under ``vmap`` the runs go to the kernel together (``custom_vmap``);
    under ``jax.jvp``/``jax.grad`` the scan path runs instead (``custom_jvp``), values and
    derivatives alike.
    """
    n_features = jnp.shape(params.weight)[-1]  # data may hold every fold: the start's width
    if not layout.use_scalars(n_features):
        raise ValueError(f"engine={engine.name!r} holds a run's coordinates as scalars, for "
                         f"at most {layout.MAX_SCALARS - 1} features; this model has "
                         f"{n_features}: use engine='{engine.name[:-6]}'")

    def one(source, hyper, params):  # the scan path, on (data, held)
        return scan(engine, source[0], hyper, config, params=params, held=source[1])

    @jax.custom_jvp
    def run(source, hyper, params):
        return _batched(0, one, engine, config, optimizer_names)(source, hyper, params)

    @run.defjvp
    def run_jvp(primals, tangents):  # the kernel has no derivative: the scan path's
        return jax.jvp(one, primals, tangents)

    return run((data, held), dict(hyper), params)


def _batched(depth: int, one, engine, config, optimizer_names):
    """Runs with ``depth`` leading run axes, as a function that ``vmap`` adds one axis to."""

    @custom_vmap
    def runs(source, hyper, params):
        lead = jnp.shape(hyper["tol"])[:depth]
        flat = jax.tree_util.tree_map(
            lambda leaf: jnp.reshape(leaf, (math.prod(lead), *jnp.shape(leaf)[depth:])),
            (hyper, params))
        out = descend_runs(engine, source[0], *flat, config, optimizer_names, held=source[1])
        out = jax.tree_util.tree_map(lambda leaf: leaf.reshape(*lead, *leaf.shape[1:]), out)
        return _constant_steps(out, depth)

    @runs.def_vmap
    def rule(axis_size, in_batched, source, hyper, params):
        source_batched, *_ = in_batched
        grow = partial(_broadcast, axis_size)
        hyper, params = (jax.tree_util.tree_map(grow, tree, flags)
                         for tree, flags in zip((hyper, params), in_batched[1:], strict=True))
        if any(jax.tree_util.tree_leaves(source_batched)):  # one dataset per run: the scan
            source = jax.tree_util.tree_map(grow, source, source_batched)
            inner = _scan_with_depth(depth + 1, one)
            inner = lambda *args, inner=inner: _constant_steps(inner(*args), depth + 1)  # noqa: E731
        else:
            inner = _batched(depth + 1, one, engine, config, optimizer_names)
        out = inner(source, hyper, params)
        batched = jax.tree_util.tree_map(lambda _: True, out)
        return out, batched._replace(snapshot_steps=False, loss_steps=False)

    return runs


def _constant_steps(out: Descent, depth: int) -> Descent:
    """The step lists are constants, unbatched (as inside ``vmap`` of the scan path): the
    derivative, the scan path's, must see the same batching as the values."""
    return out._replace(snapshot_steps=out.snapshot_steps[(0,) * depth],
                        loss_steps=out.loss_steps[(0,) * depth])


def _scan_with_depth(depth: int, one):
    for _ in range(depth):
        one = jax.vmap(one)
    return one


def _broadcast(size: int, leaf, batched: bool):
    return leaf if batched else jnp.broadcast_to(leaf, (size, *jnp.shape(leaf)))


def descend_runs(engine, data, hyper: Mapping[str, jax.Array], params, config,
                 optimizer_names: tuple[str, ...], block_runs: int | None = None,
                 held=None) -> Descent:
    """K runs, ``hyper``'s and ``params``' leading axis, in one ``pallas_call``.

    Returns the ``Descent`` that ``vmap`` of the scan path returns (every field with a
    leading axis of K). ``block_runs`` (a power of 2; ``BLOCK_RUNS`` if None) caps the runs
    per kernel program; K need not be a multiple of it. ``held``: the held-out data as a
    ``jaxgd.engines.gram.Quadratic``, whose MSE is recorded at each logged step, or None. With
    ``hyper["fold"]`` (k folds), ``data`` and ``held`` hold every fold on a leading axis:
    each run's fold is gathered once, outside the kernel, into per-run constants.
    """
    block_runs = BLOCK_RUNS if block_runs is None else block_runs
    num_runs = jnp.shape(hyper["tol"])[0]
    block = min(block_runs, pl.next_power_of_2(num_runs))
    padded_runs = -(-num_runs // block) * block
    names = (*optimizer_names, *MONITOR_INPUTS)
    source = (data, held)
    per_run = "fold" in hyper
    if per_run:  # each run's fold, (K, ...) per leaf
        source = jax.tree_util.tree_map(lambda leaf: leaf[hyper["fold"]], source)
    # The loss's rounding floor, from the engine's data as arrays: its formula slices and
    # sums, which the kernel's tables of scalars cannot (one number a run).
    noise = (jax.vmap(engine.noise) if per_run else engine.noise)(source[0])
    hyper = {**hyper, "noise": noise}
    consts, rows, coords, treedef, shapes = _inputs(engine, source, hyper, params, names,
                                                    per_run)
    dtype, width = rows.dtype, coords.shape[0]
    steps = config.snapshot_steps
    num_logs = -(-config.num_steps // config.log_every)
    kernel = partial(_kernel, engine=engine, config=config, names=names,
                     optimizer_names=optimizer_names, treedef=treedef, shapes=shapes,
                     width=width, per_run=per_run, validation=held is not None,
                     level=OPTIMUM_INPUTS[0] in hyper)
    by_block = lambda *lead: pl.BlockSpec((*lead, block), lambda i: (*(0,) * len(lead), i))  # noqa: E731
    out_shape = [jax.ShapeDtypeStruct((num_logs, padded_runs), dtype),
                 jax.ShapeDtypeStruct((width, padded_runs), dtype),
                 jax.ShapeDtypeStruct((len(_VERDICTS), padded_runs), jnp.int32)]
    out_specs = [by_block(num_logs), by_block(width), by_block(len(_VERDICTS))]
    if held is not None:  # the held-out loss at each logged step
        out_shape.append(jax.ShapeDtypeStruct((num_logs, padded_runs), dtype))
        out_specs.append(by_block(num_logs))
    if steps:
        out_shape.append(jax.ShapeDtypeStruct((len(steps), width, padded_runs), dtype))
        out_specs.append(by_block(len(steps), width))
    consts_spec = by_block(consts.shape[0]) if per_run else pl.BlockSpec(
        (consts.size,), lambda i: (0,))
    call = partial(pl.pallas_call, kernel, out_shape=out_shape, grid=(padded_runs // block,),
                   in_specs=[consts_spec, by_block(len(names)), by_block(width)],
                   out_specs=out_specs)
    # Pad with copies of run 0: same shapes whatever K is, and sane values in the padding.
    pad = lambda a: jnp.concatenate(  # noqa: E731
        [a, jnp.repeat(a[:, :1], padded_runs - num_runs, axis=1)], axis=1)
    # Compiled by Triton on a GPU (Mosaic GPU cannot lower jax.grad's add_any yet) and by
    # Mosaic on a TPU, interpreted on a CPU: picked when the program is lowered.
    outs = jax.lax.platform_dependent(
        pad(consts) if per_run else consts, pad(rows), pad(coords),
        cpu=lambda *args: call(interpret=True)(*args),
        cuda=lambda *args: call(compiler_params=TRITON)(*args),
        rocm=lambda *args: call(compiler_params=TRITON)(*args),
        default=lambda *args: call()(*args))
    outs = [out[..., :num_runs] for out in outs]
    losses, final, verdicts = outs[:3]
    held_losses = outs[3] if held is not None else None
    snapshots = outs[-1] if steps else jnp.zeros((0, width, num_runs), dtype)
    return _descent(engine, source, per_run, hyper, config, losses, final, verdicts,
                    snapshots, held_losses)


def _inputs(engine, source, hyper, params, names, per_run: bool):
    """The kernel's inputs: the engine's data and the held-out quadratic (``source``) as
    one flat vector of constants (padded to a power of 2), or with ``per_run`` (each run's
    own, leading axis K) as ``(constants, K)``; the runs' inputs ``names`` as rows of a
    ``(len(names), K)`` array; the runs' starting coordinates as ``(d + 1, K)``; and how to
    rebuild ``source`` from one run's constants."""
    data = source[0]
    leaves, treedef = jax.tree_util.tree_flatten(source)
    dtype = leaves[0].dtype  # the engine's data's, as the loss's
    num_runs = jnp.shape(hyper["tol"])[0]
    defaults = {"optimum": jnp.nan, "unstable": 0.0}
    rows = jnp.stack([jnp.broadcast_to(jnp.asarray(hyper.get(n, defaults.get(n)), dtype),
                                       (num_runs,)) for n in names])
    if per_run:
        coords = jnp.stack(jax.vmap(engine.to_coordinates)(data, params))
        consts = jnp.concatenate([jnp.reshape(leaf, (num_runs, -1)).astype(dtype)
                                  for leaf in leaves], axis=1).T
        return consts, rows, coords, treedef, [jnp.shape(leaf)[1:] for leaf in leaves]
    coords = jnp.stack(engine.to_coordinates(data, params))  # d + 1 scalars a run
    consts = jnp.concatenate([jnp.ravel(leaf).astype(dtype) for leaf in leaves])
    consts = jnp.pad(consts, (0, pl.next_power_of_2(consts.size) - consts.size))
    return consts, rows, coords, treedef, [jnp.shape(leaf) for leaf in leaves]


def _descent(engine, source, per_run: bool, hyper, config, losses, final, verdicts,
             snapshots, held_losses) -> Descent:
    """The kernel's outputs as the ``Descent`` of ``vmap(scan path)``: runs first. The
    final losses are computed here, by the scan path's own functions of the parameters."""
    data, held = source
    num_runs = losses.shape[1]
    coordinates = tuple(final)  # P arrays of (K,)
    # Each run's data: shared, or its own (per_run: leading axis K).
    each = partial(jax.vmap, in_axes=0) if per_run else partial(jax.vmap, in_axes=(None, 0))

    def final_loss(data, coords_and_l2):
        coords, l2 = coords_and_l2
        return engine.loss(data, l2)(coords)

    def held_mse(source, coords):  # the scan path's final held-out loss (jaxgd.pipeline.holdout)
        return gram.gram_loss(engine.from_coordinates(source[0], coords), source[1])

    # Weight and bias of every run's coordinates (leading axes kept): at once from shared
    # data, run by run from per-run data.
    weights = each(engine.from_coordinates) if per_run else engine.from_coordinates

    l2 = jnp.broadcast_to(jnp.asarray(hyper["l2"], losses.dtype), (num_runs,))
    converged_step, diverged_step, flat_steps, level_steps = verdicts
    converged, diverged = converged_step >= 0, diverged_step >= 0
    params = weights(data, coordinates)
    stalled = (flat_steps >= config.patience) & ~converged & ~diverged
    if OPTIMUM_INPUTS[0] in hyper:  # judged by the final parameters too, as the scan path does
        found = convergence.at_optimum(params, LinearParams(*(hyper[n] for n in OPTIMUM_INPUTS)))
        converged_step, stalled = convergence.final_verdicts(
            converged_step, diverged, stalled, level_steps, config.patience,
            config.num_steps - 1, found)
    steps = jnp.asarray(config.snapshot_steps, jnp.int32)
    loss_steps = jnp.arange(losses.shape[0], dtype=jnp.int32) * config.log_every
    held_out = {}
    if held is not None:
        held_out = {"validation_losses": held_losses.T,
                    "final_validation_loss": convergence.diverged_as_nan(
                        each(held_mse)(source, coordinates), diverged)}
    return Descent(
        params=params,
        losses=losses.T,
        final_loss=each(final_loss)(data, (coordinates, l2)),
        converged_step=converged_step,
        diverged=diverged,
        diverged_step=diverged_step,
        stalled=stalled,
        snapshots=weights(
            data, tuple(snapshots[:, i, :].T for i in range(snapshots.shape[1]))),
        snapshot_steps=jnp.broadcast_to(steps, (num_runs, steps.size)),
        loss_steps=jnp.broadcast_to(loss_steps, (num_runs, loss_steps.size)),
        # one kernel runs every step of every run (early exit is the scan path's segments)
        steps_run=jnp.full((num_runs,), config.num_steps, jnp.int32),
        pruned_step=jnp.full((num_runs,), -1, jnp.int32),
        **held_out,
    )


@jax.tree_util.register_pytree_node_class
class _Table:
    """An array of the engine's data as scalars read from the kernel's constants: the loss
    indexes it with static indices only (``q.root[k, i]``, ``basis.optimum[i]``). A pytree
    of its values, so that ``vmap`` maps per-run constants (k folds) over the block."""

    def __init__(self, values: list, shape: tuple[int, ...]):
        self.values, self.shape = values, shape

    def __getitem__(self, index):
        index = index if isinstance(index, tuple) else (index,)
        return self.values[int(np.ravel_multi_index(index, self.shape))]

    def tree_flatten(self):
        return tuple(self.values), self.shape

    @classmethod
    def tree_unflatten(cls, shape, values):
        return cls(list(values), shape)


def _read_data(consts_ref, treedef, shapes, per_run: bool):
    """``(data, held)``, each array a ``_Table`` of loaded scalars (or, ``per_run``, of
    ``(block,)`` rows: each run's own constants)."""
    leaves, offset = [], 0
    for shape in shapes:
        size = math.prod(shape)
        values = [consts_ref[offset + j, :] if per_run else consts_ref[offset + j]
                  for j in range(size)]
        leaves.append(values[0] if shape == () else _Table(values, shape))
        offset += size
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _kernel(consts_ref, hyper_ref, coords_ref, losses_ref, final_ref, verdicts_ref,
            *more_refs, engine, config, names, optimizer_names, treedef, shapes, width,
            per_run, validation, level):
    """One program: the whole descent of one block of runs (see the module).
    ``more_refs``: the held-out losses' (with ``validation``), then the snapshots';
    ``level``: track the flat stretch for ``final_verdicts`` (its verdict row is 0 without)."""
    validation_ref = more_refs[0] if validation else None
    snapshots_ref = more_refs[-1] if config.snapshot_steps else None
    data, held = _read_data(consts_ref, treedef, shapes, per_run)
    hyper = {name: hyper_ref[row, :] for row, name in enumerate(names)}
    coords = tuple(coords_ref[i, :] for i in range(width))
    num_steps, log_every = config.num_steps, config.log_every
    padded = -(-num_steps // log_every) * log_every != num_steps
    dtype = coords[0].dtype
    init, value_and_grad, update, watch, held_loss = _block_functions(
        engine, config, optimizer_names, per_run)

    def snapshot(step, z):
        for slot, at in enumerate(config.snapshot_steps):
            @pl.when(step == at)
            def _(slot=slot):
                for i in range(width):
                    snapshots_ref[slot, i, :] = z[i]

    def one_step(step, carry, log=None):
        z, state, monitor = carry
        loss, grads = value_and_grad(hyper, data, z)
        was_diverged = monitor.diverged
        new_monitor = watch(hyper, data, monitor, loss, step)
        if padded:  # steps past the end change nothing
            new_monitor = _select(step < num_steps, new_monitor, monitor)
        monitor = new_monitor
        if config.snapshot_steps:
            snapshot(step, z)
        new_z, new_state = update(hyper, data, grads, state, z, loss)
        moving = ~monitor.diverged
        if config.stop_at_convergence:
            moving &= ~monitor.converged
        if padded:
            moving &= step < num_steps
        z, state = _select(moving, new_z, z), _select(moving, new_state, state)
        if log is not None:
            losses_ref[log, :] = jnp.where(was_diverged, jnp.nan, loss).astype(dtype)
        return z, state, monitor

    def block(log, carry):  # log_every steps; only the first one's loss is kept
        if validation:  # on the parameters the logged loss is of, as the scan path
            z, _, monitor = carry
            validation_ref[log, :] = jnp.where(monitor.diverged, jnp.nan,
                                               held_loss(data, held, z)).astype(dtype)
        first = log * log_every
        carry = one_step(first, carry, log)
        if log_every > 1:
            carry = jax.lax.fori_loop(1, log_every,
                                      lambda j, c: one_step(first + j, c), carry)
        return carry

    monitor = jax.tree_util.tree_map(lambda a: jnp.full(coords[0].shape, a, a.dtype),
                                     init_monitor(dtype, level=level))
    state = init(hyper, coords)
    z, _, monitor = jax.lax.fori_loop(0, -(-num_steps // log_every), block,
                                      (coords, state, monitor))
    if num_steps in config.snapshot_steps:  # the final parameters
        for i in range(width):
            snapshots_ref[config.snapshot_steps.index(num_steps), i, :] = z[i]
    for i in range(width):
        final_ref[i, :] = z[i]
    for row, name in enumerate(_VERDICTS):
        value = getattr(monitor, name)
        verdicts_ref[row, :] = jnp.zeros_like(monitor.flat_steps) if value is None else value


def _block_functions(engine, config, optimizer_names, per_run: bool):
    """What a step does to each run, as the scan path does it, ``vmap``-ped over a block:
    ``init(h, z)``, ``value_and_grad(h, d, z)``, ``update(h, d, grads, state, z, loss)``,
    ``watch(h, d, monitor, loss, step)`` and ``held_loss(d, q, z)`` (the held-out MSE);
    ``h`` holds the runs' inputs by name, ``d`` the engine's data and ``q`` the held-out
    quadratic, shared by the block or, ``per_run``, each run's own."""
    monotone = config.optimizer.monotone
    data_axis = 0 if per_run else None

    def optimizer(h):
        built = config.optimizer.build({k: h[k] for k in optimizer_names})
        return optax.with_extra_args_support(built)

    def loss_of(h, d):
        return engine.loss(d, h["l2"])

    def value_and_grad(h, d, z):
        return jax.value_and_grad(loss_of(h, d))(z)

    def update(h, d, grads, state, z, loss):
        updates, state = optimizer(h).update(grads, state, z, value=loss, grad=grads,
                                             value_fn=loss_of(h, d))
        return optax.apply_updates(z, updates), state

    def watch(h, d, monitor, loss, step):
        return update_monitor(monitor, loss, step, h["tol"], config.patience,
                              h["divergence_factor"], h["noise"], h["optimum"],
                              monotone, h["unstable"] != 0)

    def held_loss(d, q, z):  # the scan path's validation_loss, term by term
        return gram.gram_loss(_weights(d, z), q)

    return (jax.vmap(lambda h, z: optimizer(h).init(z)),
            jax.vmap(value_and_grad, in_axes=(0, data_axis, 0)),
            jax.vmap(update, in_axes=(0, data_axis, 0, 0, 0, 0)),
            jax.vmap(watch, in_axes=(0, data_axis, 0, 0, None)),
            jax.vmap(held_loss, in_axes=(data_axis, data_axis, 0)))


def _weights(data, z) -> tuple:
    """A run's weight and bias, as scalars, from its coordinates: θ = Qz term by term for
    the eigen engine (``eigen.from_eigen`` as the kernel can compute it), the coordinates
    themselves for the gram engine."""
    if not isinstance(data, EigenBasis):
        return z
    theta = []
    for i in range(len(z)):
        total = data.basis[i, 0] * z[0]
        for j in range(1, len(z)):
            total = total + data.basis[i, j] * z[j]
        theta.append(total)
    return tuple(theta)


def _select(pred, on_true: Any, on_false: Any) -> Any:
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


__all__ = ["BLOCK_RUNS", "descend_fused", "descend_runs"]
