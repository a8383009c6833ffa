"""``fit``: one linear-regression run by gradient descent, a thin layer over ``descend``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgd import convergence
from jaxgd import engine as engines
from jaxgd.descent import Descent, check_snapshot_steps, default_snapshot_steps, descend
from jaxgd.least_squares import solve
from jaxgd.params import LinearParams, init_params
from jaxgd.validation import (
    check_data,
    check_learning_rate,
    check_non_negative,
    check_positive_int,
)

#: Builds an optax optimizer from a learning rate, e.g. ``optax.sgd`` or ``optax.adam``.
OptimizerFactory = Callable[[jax.Array], optax.GradientTransformation]


class RunConfig(NamedTuple):
    """Everything about a run that is fixed at compile time (hashable, so jit can key on it)."""

    num_steps: int
    optimizer: OptimizerFactory
    init_scale: float
    tol: float
    patience: int
    divergence_factor: float
    stop_at_convergence: bool
    snapshot_steps: tuple[int, ...]
    progress_every: int = 0
    log_every: int = 1


class FitResult(NamedTuple):
    """The outcome of ``fit``: a pytree of arrays (plus the reference loss when asked for).

    Attributes:
      params: final ``LinearParams``.
      losses: ``(num_steps,)`` loss history; entry t is the loss before update t.
      final_loss: loss after the last update.
      converged_step: first step of the flat stretch that proved convergence, -1 if never.
      diverged: whether the run blew up (see ``jaxgd.convergence``).
      diverged_step: the step at which it did, -1 if never.
      snapshots: ``LinearParams`` with a leading axis, one entry per snapshot step.
      snapshot_steps: the steps of the snapshots (``num_steps`` = final parameters).
      loss_steps: the step of each history entry (0, k, 2k, ... with ``log_every=k``).
      learning_rate: the learning rate used.
      engine: the engine that ran, "direct" or "gram".
      optimal_loss: least-squares MSE (float64) when ``reference=True``, else None.
    """

    params: LinearParams
    losses: jax.Array
    final_loss: jax.Array
    converged_step: jax.Array
    diverged: jax.Array
    diverged_step: jax.Array
    snapshots: LinearParams
    snapshot_steps: jax.Array
    loss_steps: jax.Array
    learning_rate: jax.Array
    engine: str = "direct"
    optimal_loss: float | None = None

    @property
    def converged(self) -> jax.Array:
        """Whether the run converged (``converged_step >= 0``)."""
        return self.converged_step >= 0

    @property
    def gap(self) -> np.ndarray:
        """``final_loss - optimal_loss``: how far above the least-squares optimum it ended."""
        if self.optimal_loss is None:
            raise ValueError("no reference loss: run with reference=True")
        return np.asarray(self.final_loss, np.float64) - self.optimal_loss


def make_config(
    num_steps: int,
    optimizer: OptimizerFactory | None,
    init_scale: float,
    tol: float,
    patience: int,
    divergence_factor: float,
    stop_at_convergence: bool,
    snapshot_steps: Sequence[int] | None,
    progress_every: int = 0,
    log_every: int = 1,
) -> RunConfig:
    """Validates the run options shared by ``fit`` and ``sweep``."""
    num_steps = check_positive_int(num_steps, "num_steps")
    if optimizer is None:
        optimizer = optax.sgd
    if isinstance(optimizer, optax.GradientTransformation) or not callable(optimizer):
        raise TypeError(
            "optimizer must build an optax optimizer from a learning rate, such as optax.sgd "
            "or optax.adam (or lambda lr: optax.sgd(lr, momentum=0.9)), not "
            f"{type(optimizer).__name__}"
        )
    if snapshot_steps is None:
        snapshot_steps = default_snapshot_steps(num_steps)
    divergence_factor = check_non_negative(divergence_factor, "divergence_factor")
    if divergence_factor <= 1:
        raise ValueError(f"divergence_factor must be > 1, got {divergence_factor}")
    return RunConfig(
        num_steps=num_steps,
        optimizer=optimizer,
        init_scale=check_non_negative(init_scale, "init_scale"),
        tol=check_non_negative(tol, "tol"),
        patience=check_positive_int(patience, "patience"),
        divergence_factor=divergence_factor,
        stop_at_convergence=bool(stop_at_convergence),
        snapshot_steps=check_snapshot_steps(snapshot_steps, num_steps),
        progress_every=check_positive_int(progress_every, "progress_every", minimum=0),
        log_every=check_positive_int(log_every, "log_every"),
    )


def train(data, learning_rate: jax.Array, seed: jax.Array, config: RunConfig) -> Descent:
    """One run, traceable: draw the start from ``seed``, then descend on the MSE.

    ``data`` is what the engine reads (``jaxgd.engine.prepare``). ``fit`` jits this;
    ``sweep`` vmaps it over learning rates and seeds, so a sweep member and the matching fit
    run the very same computation.
    """
    params = init_params(jax.random.key(seed), engines.n_features(data), config.init_scale,
                         engines.dtype_of(data))
    return descend(
        engines.loss_function(data),
        params,
        config.optimizer(learning_rate),
        config.num_steps,
        tol=config.tol,
        patience=config.patience,
        divergence_factor=config.divergence_factor,
        stop_at_convergence=config.stop_at_convergence,
        snapshot_steps=config.snapshot_steps,
        progress_every=config.progress_every,
        log_every=config.log_every,
    )


@partial(jax.jit, static_argnames="config")
def _fit_compiled(data, learning_rate, seed, config: RunConfig) -> Descent:
    return train(data, learning_rate, seed, config)


def device_data(X, y, engine_name: str, num_steps: int, num_runs: int):
    """Checks the data on the host, picks the engine, and prepares what it reads on device.

    Returns:
      (engine that will run, its data in JAX's default float dtype).
    """
    X, y = check_data(X, y)
    chosen = engines.choose_engine(engine_name, X.shape[0], X.shape[1], num_steps, num_runs)
    return chosen, engines.prepare(chosen, X, y)


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
    num_steps: int,
    seed: int = 0,
    optimizer: OptimizerFactory | None = None,
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
    step takes the loss's gradient with ``jax.grad`` and applies ``optimizer(learning_rate)``.
    The whole run is one compiled program; calling ``fit`` again with the same shapes and
    options (any learning rate or seed) reuses it.

    Args:
      X: features, shape ``(n_samples, n_features)``.
      y: targets, shape ``(n_samples,)``.
      learning_rate: step size, finite and positive.
      num_steps: number of updates, >= 1.
      seed: picks the random starting point.
      optimizer: builds an optax optimizer from the learning rate; ``optax.sgd`` (plain
        gradient descent) if None. Pass the same function object each time to avoid
        recompiling.
      init_scale: standard deviation of the starting weight and bias; 0 means zeros.
      tol, patience, divergence_factor: convergence and divergence criteria, see
        ``jaxgd.convergence``.
      stop_at_convergence: stop updating once converged (the history keeps its length).
      snapshot_steps: steps whose parameters to keep; if None, the beginning, the middle on a
        log scale (√num_steps) and the end.
      reference: also compute the least-squares optimum's loss (float64), for ``gap``.
      progress_every: report progress every this many steps (see ``jaxgd.progress``).
      engine: "direct" computes the loss from X at every step; "gram" from the data's
        float64 moments, O(d²) per step; "auto" picks the cheaper (see ``jaxgd.engine``).
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
    learning_rate = check_learning_rate(learning_rate)
    seed = check_seed(seed)
    config = make_config(num_steps, optimizer, init_scale, tol, patience, divergence_factor,
                         stop_at_convergence, snapshot_steps, progress_every, log_every)
    chosen, data = device_data(X, y, engine, config.num_steps, 1)
    rate = jnp.asarray(learning_rate, jnp.result_type(float))
    run = _fit_compiled(data, rate, jnp.asarray(seed, jnp.uint32), config)
    return FitResult(
        **run._asdict(),
        learning_rate=rate,
        engine=chosen,
        optimal_loss=solve(X, y).loss if reference else None,
    )
