"""Refinement: gradient steps on the hyperparameters of a search's best points.

``grid_sweep(sample=..., refine={"top": 4, "steps": 20, "learning_rate": 0.1})`` takes the
``top`` runs with the lowest ``objective`` and moves their drawn hyperparameters downhill on
it, by hypergradients: ``jax.grad`` of the objective through the whole compiled descent
(``jaxgd.pipeline.training.train``). Each hyperparameter moves in the unit coordinate of its range
(``jaxgd.tuning.search.Range.to_unit``: log(value) for "log" ranges, the value for "uniform"
ones), so one step size fits learning rates and b1 alike, and stays within its range
(projected onto [0, 1]). ``l2``, when drawn, keeps its value (it moves the optimum itself,
which the training loss cannot judge); seeds and grid axes keep theirs.

Each step goes along the steepest descent (the hypergradient, normalized: the loss's units
do not set the step) by a length in unit coordinates. It is accepted only where it lowers
the objective without diverging and, where the optimizer's stability limit is known (sgd,
momentum, nesterov with a constant rate), without passing it: each step tries
``backtracks`` lengths, learning_rate · 2^-j, all in one vmapped call, and takes the
longest that passes; if none does, the point stays (step size 0).
The start points, every step and the refined runs come back in ``result.refined``.

With k folds (``k_folds=``) a point is its k runs, one per fold: points are ranked by their
mean held-out loss over the folds (a fold diverged or above its limit rules the point
out), and each step lowers that mean, every fold's run vmapped inside the objective, each
with its own fold's stability limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core.record import freeze
from jaxgd.inputs.validation import check_positive_int
from jaxgd.pipeline.options import RunConfig
from jaxgd.pipeline.training import input_dtype, train
from jaxgd.results.refined import Refinement
from jaxgd.results.result import GridResult
from jaxgd.theory.stability import has_exact_limit, limit_factor
from jaxgd.tuning.search import SAMPLE_AXIS, Range

if TYPE_CHECKING:  # the prepared problem is read, never made here
    from jaxgd.pipeline.problem import Problem

#: The settings ``refine=`` takes, and their defaults.
DEFAULTS = {"top": 4, "steps": 20, "learning_rate": 0.1, "backtracks": 6}


def objective(run) -> jax.Array:
    """What refinement lowers and ranks the start points by (per run; a traced ``Descent``
    or a result): the final held-out loss when the runs have held-out data
    (``jaxgd.pipeline.holdout``), else the final training loss.

    Example:
      >>> import numpy as np, jaxgd
      >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
      >>> float(objective(jaxgd.fit(X, y, learning_rate=0.5, num_steps=50))) < 1e-6
      True
      >>> held = jaxgd.fit(X, y, learning_rate=0.5, num_steps=50,
      ...                  validation=(np.array([[2.0]]), np.array([8.0])))
      >>> float(objective(held)) == float(held.final_validation_loss)
      True
    """
    if run.final_validation_loss is not None:
        return run.final_validation_loss
    return run.final_loss


class Plan(NamedTuple):
    """A checked ``refine=``: the ranges it moves in and its settings."""

    ranges: tuple[tuple[str, Range], ...]
    top: int
    steps: int
    learning_rate: float
    backtracks: int


def make_plan(refine: Mapping[str, Any], ranges: Mapping[str, Range] | None) -> Plan:
    """Checks ``refine=`` against the drawn ranges (``jaxgd.tuning.search.check_space``).

    Example:
      >>> make_plan({"top": 2}, {"learning_rate": Range("log", 1e-3, 1.0)}).steps
      20
    """
    if not isinstance(refine, Mapping):
        raise ValueError(f"refine must map settings to values, e.g. {DEFAULTS}; got "
                         f"{refine!r}")
    unknown = sorted(set(refine) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"refine has unknown settings {', '.join(map(repr, unknown))}; "
                         f"valid: {', '.join(DEFAULTS)}")
    moved = tuple((name, r) for name, r in (ranges or {}).items() if name != "l2")
    if not moved:
        raise ValueError("refine= moves drawn hyperparameters: give sample= with one other "
                         "than l2")
    settings = {**DEFAULTS, **refine}
    rate = settings["learning_rate"]
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1:
        raise ValueError(f"refine['learning_rate'] must be in (0, 1] (a step in unit "
                         f"coordinates), got {rate!r}")
    return Plan(moved, check_positive_int(settings["top"], "refine['top']"),
                check_positive_int(settings["steps"], "refine['steps']"), float(rate),
                check_positive_int(settings["backtracks"], "refine['backtracks']"))


def refine(result: GridResult, plan: Plan, problem: Problem) -> GridResult:
    """``result`` with ``refined`` set: its ``plan.top`` best runs refined (see the module).

    ``problem`` is the grid's (``jaxgd.pipeline.problem``): its ``hyper`` holds every run's
    traced inputs (flat, in grid order); its ``l2`` and ``curvatures`` pair each l2 with its
    Hessian's largest eigenvalue (None if unknown); its ``held`` the held-out data
    (``jaxgd.pipeline.holdout``), whose loss is then the objective.
    """
    engine, data, hyper, config, held = (problem.engine, problem.data, problem.hyper,
                                         problem.config, problem.held)
    l2_values, curvatures = problem.l2, problem.curvatures
    if problem.traced:
        raise ValueError("refine= picks its start points on the host: not inside the "
                         "caller's jit, vmap or grad")
    # With k folds ("fold", the last axis) a point is its k runs: ranked by their mean,
    # refined on it, each fold's runs with that fold's stability limit.
    k = np.shape(result.final_loss)[-1] if "fold" in hyper else 1
    order = _best_runs(result, hyper, plan.top, k)
    runs = order[:, None] * k + np.arange(k) if k > 1 else order
    start = {name: np.asarray(v)[runs] for name, v in hyper.items()}
    first = {name: v[:, 0] if k > 1 else v for name, v in start.items()}  # the point's own
    u0 = np.stack([np.asarray(r.to_unit(first[name])) for name, r in plan.ranges], -1)
    limited = has_exact_limit(config.optimizer.name, config.optimizer.schedule)
    curvature = np.full(runs.shape, np.nan)  # NaN: no known limit
    if limited and curvatures is not None:  # each start's λmax, by its l2 (and fold)
        known = np.atleast_1d(np.asarray(l2_values, np.float64))
        which = np.argmin(np.abs(np.asarray(first["l2"], np.float64)[:, None] - known), -1)
        curvature = np.asarray(curvatures, np.float64)[which]
    dtype = input_dtype("learning_rate")
    path, values, sizes, grads, run = _descend(
        engine, data, start, jnp.asarray(u0, dtype), jnp.asarray(curvature, dtype),
        jnp.asarray(plan.learning_rate, dtype), held, config=config, ranges=plan.ranges,
        steps=plan.steps, backtracks=plan.backtracks, limited=limited, folds=k > 1)
    end = {name: np.asarray(r.from_unit(np.asarray(path[-1, :, j], np.float64)))
           for j, (name, r) in enumerate(plan.ranges)}
    return result._replace(refined=Refinement(
        start=np.stack(np.unravel_index(order, np.shape(result.final_loss)[:-1] if k > 1
                                        else np.shape(result.final_loss)), -1),
        path={name: np.asarray(r.from_unit(np.asarray(path[..., j], np.float64))).T
              for j, (name, r) in enumerate(plan.ranges)},
        objective=np.asarray(values).T,
        step_size=np.asarray(sizes).T,
        gradient={name: np.asarray(grads[..., j]).T for j, (name, _) in enumerate(plan.ranges)},
        runs=_runs(result, jax.device_get(run), first, end, order, k),
    ))


def _best_runs(result: GridResult, hyper, top: int, k: int = 1) -> np.ndarray:
    """Flat indices of the ``top`` points with the lowest objective, best first: runs, or
    with k folds (the last axis) points judged by their mean over the folds, any fold
    diverged, unstable or not finite ruling the point out."""
    score = np.asarray(objective(result), np.float64).reshape(-1, k)
    # Runs above their stability limit may not have blown up yet: never a start point.
    above = np.asarray(hyper["unstable"], bool).reshape(-1, k)
    usable = (~np.asarray(result.diverged, bool).reshape(-1, k) & ~above
              & np.isfinite(score)).all(-1)
    score = score.mean(-1)
    if not usable.any():
        raise ValueError("refine: every run diverged or lies above its stability limit; "
                         "there is no point to start from")
    order = np.argsort(np.where(usable, score, np.inf), kind="stable")
    return order[: min(top, int(usable.sum()))]


def _runs(result: GridResult, run, start, end, order, k: int = 1) -> GridResult:
    """The refined end points as a ``GridResult`` over one sample axis (and the fold axis
    with k folds)."""
    varying = [name for name in result.values if name not in (SAMPLE_AXIS, "fold")]
    values = {SAMPLE_AXIS: np.arange(order.size),
              **{name: np.asarray(start[name]) for name in varying}, **end}
    if k > 1:
        values["fold"] = np.asarray(result.values["fold"])
    optimal = result.optimal_loss
    if optimal is not None and np.ndim(optimal):  # l2 or folds vary: each run keeps its own
        optimal = np.broadcast_to(optimal, np.shape(result.final_loss)).reshape(-1, k)[order]
        optimal = optimal if k > 1 else optimal[:, 0]
    axes = (SAMPLE_AXIS, "fold") if k > 1 else (SAMPLE_AXIS,)
    return GridResult(**run._asdict(), axes=axes, values=values,
                      fixed=result.fixed, engine=result.engine, reference=freeze(optimal),
                      feature_names=result.feature_names, target_name=result.target_name,
                      num_steps=result.num_steps, model=result.model)


@partial(jax.jit, static_argnames=("engine", "config", "ranges", "steps", "backtracks",
                                   "limited", "folds"))
def _descend(engine, data, start, u0, curvature, step0, held, *, config: RunConfig, ranges,
             steps: int, backtracks: int, limited: bool, folds: bool = False):
    """Every start point's projected, backtracking descent in unit coordinates, then its
    full run at the end point: one compiled program, vmapped over the points. With
    ``folds`` each point's inputs hold its k folds' runs (a leading axis), and the
    objective is their mean (a point is bad if any fold is)."""
    name = config.optimizer.name

    def value(u, base, curv):
        hyper = dict(base)
        for j, (key, r) in enumerate(ranges):
            hyper[key] = jnp.broadcast_to(r.from_unit(u[j]),
                                          jnp.shape(base[key])).astype(base[key].dtype)
        if limited:  # NaN curvature (unknown) compares False
            factor = limit_factor(name, hyper.get("momentum", jnp.zeros(())))
            hyper["unstable"] = hyper["learning_rate"] * curv > factor
        if folds:  # every fold's run; hyper["fold"] picks each one's data
            run = jax.vmap(lambda h: train(engine, data, h, config, held))(hyper)
        else:
            run = train(engine, data, hyper, config, held)
        loss = objective(run)
        bad = run.diverged | hyper["unstable"] | ~jnp.isfinite(loss)
        return jnp.mean(loss), (jnp.any(bad), run)

    def step(u, base, curv):
        (loss, _), grad = jax.value_and_grad(value, has_aux=True)(u, base, curv)
        grad = jnp.where(jnp.isfinite(grad), grad, 0.0)
        # A step of a given length along the steepest descent: the loss's scale (data units)
        # then does not set the step; the backtracking sets its length.
        norm = jnp.sqrt(jnp.sum(grad * grad))
        direction = grad / jnp.where(norm > 0, norm, 1.0)
        sizes = step0 * 0.5 ** jnp.arange(backtracks, dtype=u.dtype)
        trials = jnp.clip(u - sizes[:, None] * direction, 0.0, 1.0)
        tried, (bad, _) = jax.vmap(lambda t: value(t, base, curv))(trials)
        ok = ~bad & (tried < loss)
        pick = jnp.argmax(ok)  # the largest step that passes
        accept = ok.any()
        return (jnp.where(accept, trials[pick], u), jnp.where(accept, tried[pick], loss),
                jnp.where(accept, sizes[pick], 0.0), grad)

    def scan_step(carry, _):
        u, _loss = carry
        u, loss, size, grad = jax.vmap(step)(u, start, curvature)
        return (u, loss), (u, loss, size, grad)

    first, _ = jax.vmap(value)(u0, start, curvature)
    _, (us, losses, sizes, grads) = jax.lax.scan(scan_step, (u0, first), None, length=steps)
    path = jnp.concatenate([u0[None], us])
    values = jnp.concatenate([first[None], losses])
    _, (_, run) = jax.vmap(value)(path[-1], start, curvature)
    one = (0, 0) if folds else 0  # the step lists every run shares
    steps_of = {"snapshot_steps": run.snapshot_steps[one], "loss_steps": run.loss_steps[one]}
    return path, values, sizes, grads, run._replace(**steps_of)
