"""Engines: how each step's loss is computed from the data, and in which coordinates.

- ``direct``: from X itself, ``mean((X @ w + b - y)²)``: O(n·d) per step and run.
- ``gram``: from the data's sufficient statistics (``jaxgd.data.statistics``), computed once in
  float64 and written around the optimum (``jaxgd.engines.gram``): O(d²) per step and run, whatever
  n is. Any optimizer.
- ``eigen``: the same moments, rotated once into the eigenbasis of the loss's curvature
  (``jaxgd.engines.eigen``): O(d) per step and run. Exact for optimizers whose update is linear in
  the gradients (sgd, momentum, nesterov), with one l2 for all runs.
- ``auto``: direct or the moments by this cost model, counting multiply-adds of forward and
  backward passes: direct costs 2·n·(d+1) per run-step on the device; gram 2·(d+1)² per
  run-step on the device plus n·(d+1)² once on the host, in float64, for the statistics. A
  host multiply-add counts as ``HOST_COST[backend]`` device ones: 1 on a CPU, where host and
  device are the same cores, so for any data with more rows than features the moments win
  and ``auto`` means eigen where it is exact, else gram, except for very wide or very short
  problems; thousands on a GPU, where a million rows' float64 pass on the host (~0.6 s)
  takes longer than the direct engine's whole sweep. On a GPU or TPU each step of a scan
  also costs its kernel launches (``LAUNCH_COST``), which the fused path (below) does not
  pay: there ``auto`` takes the fused moment engine for narrow models even for one run.
- ``eigen-fused``, ``gram-fused``: the same engines, with the whole descent of a block of
  runs in one Pallas kernel (``jaxgd.engines.fused``): the same loss, optimizer and verdicts, off
  the per-step kernel launches that bind the scan loop on an accelerator. Narrow models
  (d + 1 <= 16) only; on a CPU they run in Pallas's interpreter, slowly: the scan path stays
  the reference and the CPU default.

Every engine differentiates its loss with ``jax.grad``, and all three losses are the same
function of the parameters: histories agree to float rounding (see tests/engines/test_engine.py).
The moment engines hold narrow models as one scalar per coordinate (``jaxgd.engines.layout``).
Each engine is a value, an ``Engine`` of pure functions (``BY_NAME``), that the compiled
loop calls without asking which one it is. Data traced by the caller's ``jit``/``vmap``
(a bootstrap, say) have no host-side float64 moments: ``auto`` then picks ``direct``, and
the moment engines compute their moments in the traced program (full-rank features only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core.model import dot, mse
from jaxgd.core.params import LinearParams
from jaxgd.data.statistics import SufficientStats, on_device, sufficient_statistics
from jaxgd.engines import eigen, gram, layout
from jaxgd.inputs.validation import check_choice, default_float, is_traced

ENGINES = ("auto", "direct", "gram", "eigen", "gram-fused", "eigen-fused")
#: Backends where "auto" runs a moment engine's whole descent in one kernel (jaxgd.engines.fused).
ACCELERATORS = ("gpu", "cuda", "rocm", "tpu")


class Rows(NamedTuple):
    """The data itself, for the direct engine.

    ``weight`` (None: every row counts alike) weighs each row's squared error, summing to
    1: a k-fold keeps all rows and weighs out the held-out ones (``jaxgd.pipeline.holdout``).
    """

    X: jax.Array
    y: jax.Array
    weight: jax.Array | None = None


#: What a float64 multiply-add on the host costs in the device's multiply-adds, by backend.
#: GPU: the H100 ran the direct engine at ~6·10¹² multiply-adds/s (issue 11: n = 10⁶,
#: d = 32, K = 64, T = 200 in 143 ms) and the host's float64 moments at ~2·10⁹/s (1.1·10⁹ in
#: 584 ms): 3,000. TPU: taken as the GPU's (not measured).
HOST_COST = {"cpu": 1.0, "gpu": 3000.0, "tpu": 3000.0}
#: What one step of a scan loop costs in kernel launches on an accelerator, in the device's
#: multiply-adds: ~1 µs at ~6·10¹² multiply-adds/s (the H100's bare eigenbasis scan at
#: unroll=32 took 0.72 ms for 1,000 steps; issue 11). A fused engine runs all the steps in
#: one kernel and does not pay it; on a CPU a step costs no launch.
LAUNCH_COST = 6e6


def step_cost(engine: str, n_samples: int, n_features: int) -> float:
    """Multiply-adds of one run-step's loss and gradient on ``engine`` (forward and
    backward): direct 2·n·(d+1), gram 2·(d+1)², eigen 2·(d+1); a fused engine as its own.

    Example:
      >>> step_cost("direct", 392, 7), step_cost("gram", 392, 7), step_cost("eigen-fused", 392, 7)
      (6272.0, 128.0, 16.0)
    """
    width = n_features + 1
    base = engine.removesuffix("-fused")
    cost = {"direct": 2.0 * n_samples * width, "gram": 2.0 * width * width,
            "eigen": 2.0 * width}
    return cost[base]


def choose_engine(engine: str, n_samples: int, n_features: int, num_steps: int,
                  num_runs: int, optimizer: str = "sgd", fixed_l2: bool = True,
                  traced_data: bool = False, backend: str | None = None) -> str:
    """Resolves ``engine`` ("auto", "direct", "gram" or "eigen") to the engine that will run.

    Args:
      engine: the engine asked for.
      n_samples, n_features, num_steps, num_runs: the work, for the cost model.
      optimizer: the optimizer's name (``jaxgd.core.optimizers``); "custom" for a factory.
      fixed_l2: whether every run has the same, concrete l2 (the eigen engine needs that).
      traced_data: whether X or y are traced (then "auto" means "direct").
      backend: where the runs compute ("cpu", "gpu", "tpu"; None: JAX's default backend),
        for the price of the host's float64 pass (``HOST_COST``), the scan's launches
        (``LAUNCH_COST``) and whether the fused path runs there.

    Example:
      >>> choose_engine("auto", n_samples=392, n_features=7, num_steps=1000, num_runs=64)
      'eigen'
      >>> choose_engine("auto", 392, 7, 1000, 64, optimizer="adam")
      'gram'
      >>> choose_engine("auto", n_samples=10, n_features=500, num_steps=1000, num_runs=1)
      'direct'

      A million rows: the host's float64 moments cost more than a GPU's whole direct sweep.

      >>> [choose_engine("auto", 10**6, 32, 200, 64, backend=b) for b in ("cpu", "gpu")]
      ['eigen', 'direct']

      Auto MPG, one run: on a GPU the fused kernel's single launch beats a thousand steps
      of the direct scan, though the host pass costs more than the direct engine's work.

      >>> choose_engine("auto", 392, 7, 1000, 1, backend="gpu")
      'eigen-fused'
    """
    check_choice(engine, "engine", ENGINES)
    exact = moment_engine(optimizer, fixed_l2) == "eigen"
    if engine.startswith("eigen") and not exact:
        why = (f"optimizer {optimizer!r} scales each coordinate by its own history"
               if optimizer not in eigen.ROTATION_INVARIANT
               else "l2 varies across the runs (the basis depends on it)")
        exact_for = ", ".join(eigen.ROTATION_INVARIANT)
        raise ValueError(f"engine={engine!r} is exact only for {exact_for} "
                         f"with one l2 for all runs, but {why}: use engine='gram' or 'auto'")
    if engine.endswith("-fused") and not layout.use_scalars(n_features):
        raise ValueError(f"engine={engine!r} holds a run's coordinates as scalars, for at most "
                         f"{layout.MAX_SCALARS - 1} features; this model has {n_features}: use "
                         f"engine={engine.removesuffix('-fused')!r}")
    if engine != "auto":
        return engine
    if traced_data:
        return "direct"
    width = n_features + 1
    run_steps = num_steps * num_runs
    accelerated = on_accelerator() if backend is None else backend in ACCELERATORS
    backend = jax.default_backend() if backend is None else backend
    host = HOST_COST.get(backend, HOST_COST["gpu"])
    fused = accelerated and layout.use_scalars(n_features)  # one kernel, not one a step
    launches = LAUNCH_COST * num_steps if accelerated else 0.0
    direct = step_cost("direct", n_samples, n_features) * run_steps + launches
    gram = (step_cost("gram", n_samples, n_features) * run_steps
            + host * n_samples * width * width + (0.0 if fused else launches))
    if direct <= gram:
        return "direct"
    chosen = "eigen" if exact else "gram"
    return f"{chosen}-fused" if fused else chosen


def on_accelerator() -> bool:
    """Whether JAX's default backend is a GPU or TPU (where ``auto`` picks a fused engine).

    Example:
      >>> on_accelerator()  # on the CPU that runs the doctests
      False
    """
    return jax.default_backend() in ACCELERATORS


def moment_engine(optimizer: str, fixed_l2: bool) -> str:
    """The moment engine for this optimizer: eigen where it is exact, else gram."""
    return "eigen" if optimizer in eigen.ROTATION_INVARIANT and fixed_l2 else "gram"


class Engine(NamedTuple):
    """An engine as a value (like optax's ``GradientTransformation``): pure functions of the
    data it prepared, so the compiled loop never asks which engine it runs.

    Attributes:
      name: one of ``ENGINES`` but "auto".
      prepare: ``(X, y, l2, dtype) -> data``: what the loss reads, on device. X and y are
        arrays (concrete or traced), or ``SufficientStats`` with y None for the moment
        engines; l2 matters only to the eigen engine, whose basis depends on it.
      to_coordinates: ``(data, LinearParams) -> coordinates`` the loop descends in.
      from_coordinates: its inverse (leading axes kept).
      loss: ``(data, l2) -> (coordinates -> loss)``: the ridge objective MSE + l2·‖weight‖².
      noise: ``data -> ``the loss's absolute rounding floor near the optimum: h² =
        (d+1)·(eps/2)²·mean(y²) in the data's dtype, the same from every engine's data;
        the direct engine's is the pair ``(h², 2u/√n)``, for its rounding of each residual
        (see ``jaxgd.core.convergence``).
      n_features: ``data -> d``.
      fused: run the whole descent of a block of runs in one kernel (``jaxgd.engines.fused``)
        instead of the scan loop (``jaxgd.core.descent``).
      held_loss: ``(data, held, coordinates) -> loss`` on held-out data; None: the held-out
        MSE of the linear model (``jaxgd.pipeline.holdout.validation_loss``). A user's model
        gives its own loss (``jaxgd.engines.model``).
      batch_loss: ``(data, params, batch, padded) -> loss`` on a mini-batch's rows
        (``jaxgd.core.minibatch.Batch``), the run descending in ``to_coordinates`` of its
        drawn start; None: the linear model's MSE in weight and bias.
      start: ``(data, inputs) -> params``: a user's model's start, read from the run's
        traced inputs (``jaxgd.core.custom_model.Model.start_values``), so that it is data
        of the compiled program, not a constant; None: the linear start (drawn from the
        seed, or given as ``init_weight`` and ``init_bias``).
    """

    name: str
    prepare: Callable[..., Any]
    to_coordinates: Callable[[Any, LinearParams], Any]
    from_coordinates: Callable[[Any, Any], LinearParams]
    loss: Callable[[Any, Any], Callable]
    noise: Callable[[Any], Any]
    n_features: Callable[[Any], int]
    fused: bool = False
    held_loss: Callable[..., Any] | None = None
    batch_loss: Callable[..., Any] | None = None
    start: Callable[[Any, Any], Any] | None = None


def _direct_prepare(X, y, l2, dtype):
    if isinstance(X, SufficientStats):
        raise ValueError("data given as sufficient statistics train with the gram or eigen "
                         "engine only (no rows to compute a direct loss from)")
    return Rows(_as(X, dtype), _as(y, dtype))


def _direct_loss(data: Rows, l2):
    return lambda params: rows_mse(params, data) + l2 * jnp.sum(params.weight * params.weight)


def rows_mse(params: LinearParams, data: Rows) -> jax.Array:
    """The MSE on the rows, weighted by ``data.weight`` when there is one."""
    if data.weight is None:
        return mse(params, data.X, data.y)
    residual = dot(data.X, params.weight) + params.bias - data.y
    return jnp.sum(data.weight * (residual * residual), axis=-1)


def _gram_prepare(X, y, l2, dtype):
    if is_traced((X, y)):
        return gram.prepare_traced(_as(X, dtype), _as(y, dtype))
    stats = X if isinstance(X, SufficientStats) else sufficient_statistics(X, y)
    return gram.prepare(stats, dtype)


def _gram_loss(data: gram.Quadratic, l2):
    if layout.use_scalars(data.mean_x.shape[0]):  # the coordinates are a tuple of scalars
        return lambda scalars: gram.gram_loss(scalars, data) + l2 * sum(
            w * w for w in scalars[:-1])
    return lambda params: gram.gram_loss(params, data) + l2 * jnp.sum(
        params.weight * params.weight)


def _eigen_prepare(X, y, l2, dtype):
    if is_traced((X, y, l2)):
        if isinstance(X, SufficientStats):
            raise ValueError("engine='eigen' with a traced l2 needs the rows (X, y), not "
                             "sufficient statistics: use engine='gram'")
        return eigen.prepare_traced(_as(X, dtype), _as(y, dtype), l2)
    stats = X if isinstance(X, SufficientStats) else sufficient_statistics(X, y)
    return eigen.to_device(eigen.eigen_basis(stats, l2), dtype)


def _scaled(values, dtype):
    """``values`` times eps/2 of ``dtype`` (half an ulp at most: a number's largest rounding),
    before any squaring: targets of 1e20 square to 1e40, past float32's range, where
    eps·1e20 squares to 1.4e26."""
    return values * (jnp.finfo(dtype).eps / 2)


def _rows_floor(data: Rows):
    """``(h², 2u/√n)`` from the rows: u² = (eps/2)²·mean(y²) (weighted like the loss when
    the rows are weighted, n then their effective number 1/Σwᵢ²) and h² = (d+1)·u², as a
    prediction sums d + 1 terms, each rounded (and each parameter held) to half an ulp of a
    number the size of a target, at most. Each step the direct loss rounds each residual
    anew, by up to u at its last sum (of the size of its target), which moves a loss L by
    2·mean(r·δ) ≈ ±2u·√(L/n), its residuals' roundings being unrelated to the residuals.
    Plus ``MOMENT_ULPS`` float64 ulps of var(y), to which L* is known (``_moments_rounding``):
    an exact fit's float64 loss is flat at that, in every engine."""
    scaled = _scaled(data.y, data.y.dtype)
    if data.weight is None:
        square, count = jnp.mean(scaled * scaled, axis=-1), data.y.shape[-1]
        mean = lambda values: jnp.mean(values, axis=-1, keepdims=True)  # noqa: E731
    else:
        square = jnp.sum(data.weight * (scaled * scaled), axis=-1)
        count = 1 / jnp.sum(data.weight * data.weight, axis=-1)
        mean = lambda values: jnp.sum(data.weight * values, axis=-1, keepdims=True)  # noqa: E731
    # L* itself is known to MOMENT_ULPS float64 ulps of var(y), as the moment engines' is.
    centred = _moments_scale(data.y - mean(data.y))
    variance = mean(centred * centred)[..., 0]
    return square * (data.X.shape[-1] + 1) + variance, 2 * jnp.sqrt(square / count)


#: Float64 ulps of var(y) by which the moment engines' L* may lie above the rows' optimum:
#: the moments give it as var(y) − 2·sᵀw* + w*ᵀΣw*, three terms up to var(y) that cancel
#: (an exact fit of 50 rows: 3.6e-15 where the rows give 9e-29, 1.1 ulps of var(y)). The
#: loss of those engines never reads below it, so float64 exact fits would be "far".
MOMENT_ULPS = 4


def _moments_rounding(optimal_loss, explained):
    """MOMENT_ULPS float64 ulps of var(y) = L* + var(ŷ*): ``explained`` is var(ŷ*), the
    variance of the optimum's predictions, already times those ulps (its terms scaled by
    ``_moments_scale`` before squaring: float32 squares of targets of 1e20 overflow)."""
    return MOMENT_ULPS * float(np.finfo(np.float64).eps) * optimal_loss + explained


def _moments_scale(values):
    """``values`` times √(MOMENT_ULPS·eps₆₄), so that their squares sum to ``explained``."""
    return values * float(np.sqrt(MOMENT_ULPS * np.finfo(np.float64).eps))


def _gram_floor(q: gram.Quadratic):
    """h² = (d+1)·(eps/2)²·mean(y²) from the moments: mean(y²) = L* + ȳ² + ‖R w*‖² at the
    optimum; plus the rounding of L* from the moments (``MOMENT_ULPS``), var(y) = L* +
    ‖R w*‖²."""
    dtype = q.optimal_loss.dtype
    mean_y = _scaled(q.bias + jnp.sum(q.mean_x * q.weight, axis=-1), dtype)
    rotated = jnp.einsum("...ij,...j->...i", q.root, q.weight)
    spread, explained = _scaled(rotated, dtype), _moments_scale(rotated)
    floor = (q.mean_x.shape[-1] + 1) * (_scaled(_scaled(q.optimal_loss, dtype), dtype)
                                        + mean_y * mean_y + jnp.sum(spread * spread, axis=-1))
    return floor + _moments_rounding(q.optimal_loss, jnp.sum(explained * explained, axis=-1))


def _eigen_floor(e: eigen.EigenBasis):
    """h² = (d+1)·(eps/2)²·mean(y²) from the eigenbasis: mean(y²) = L* + Σᵢ λᵢ z*ᵢ² (plus
    the ridge penalty's share when l2 > 0); plus the rounding of L* from the moments
    (``MOMENT_ULPS``), var(y) = L* + Σᵢ λᵢ z*ᵢ² − ȳ², where ȳ = (Mθ*)_bias = Σᵢ Q_bias,ᵢ λᵢ z*ᵢ
    (M's bias row is [x̄, 1])."""
    dtype = e.optimal_loss.dtype
    z, moments = _scaled(e.optimum, dtype), _moments_scale(e.optimum)
    floor = e.optimum.shape[-1] * (_scaled(_scaled(e.optimal_loss, dtype), dtype)
                                   + jnp.sum(e.curvature * (z * z), axis=-1))
    mean_y = jnp.sum(e.basis[..., -1, :] * e.curvature * moments, axis=-1)
    explained = jnp.sum(e.curvature * (moments * moments), axis=-1) - mean_y * mean_y
    return floor + _moments_rounding(e.optimal_loss, jnp.maximum(explained, 0.0))


def _as(array, dtype):
    return on_device(array, dtype)


DIRECT = Engine(
    name="direct",
    prepare=_direct_prepare,
    to_coordinates=lambda data, params: params,
    from_coordinates=lambda data, coordinates: coordinates,
    loss=_direct_loss,
    noise=_rows_floor,
    n_features=lambda data: data.X.shape[1],
)
GRAM = Engine(
    name="gram",
    prepare=_gram_prepare,
    to_coordinates=gram.to_coordinates,
    from_coordinates=gram.from_coordinates,
    loss=_gram_loss,
    noise=_gram_floor,
    n_features=lambda data: data.mean_x.shape[0],
)
EIGEN = Engine(
    name="eigen",
    prepare=_eigen_prepare,
    to_coordinates=lambda data, params: eigen.to_eigen(params, data),
    from_coordinates=lambda data, z: eigen.from_eigen(z, data),
    # The penalty is part of the basis (made for one l2 by ``prepare``).
    loss=lambda data, l2: lambda z: eigen.eigen_mse(z, data),
    noise=_eigen_floor,
    n_features=lambda data: data.basis.shape[0] - 1,
)
GRAM_FUSED = GRAM._replace(name="gram-fused", fused=True)
EIGEN_FUSED = EIGEN._replace(name="eigen-fused", fused=True)
#: The engines by name.
BY_NAME: dict[str, Engine] = {engine.name: engine for engine in (
    DIRECT, GRAM, EIGEN, GRAM_FUSED, EIGEN_FUSED)}


def prepare(engine: str, X, y, dtype=None, l2=0.0) -> Any:
    """What the named engine's loss reads, on device (see ``Engine.prepare``)."""
    dtype = default_float() if dtype is None else dtype
    return BY_NAME[engine].prepare(X, y, l2, dtype)


def dtype_of(data):
    """The float dtype the engine's data (and so its loss) has."""
    return jax.tree_util.tree_leaves(data)[0].dtype
