"""The exact loss history of plain gradient descent, in closed form.

With H = 2/n · AᵀA and θ* the least-squares optimum, one step with learning rate η maps the
error e = θ − θ* to (I − ηH)e. In H's eigenbasis (H = QΛQᵀ, c = Qᵀe₀) every component just
scales, so after t steps

    loss_t = loss* + ½ Σᵢ λᵢ (1 − ηλᵢ)^(2t) cᵢ².

This is an oracle that shares nothing with the compiled loop: no autodiff, no iteration.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jaxgd.core.params import LinearParams
from jaxgd.inputs.validation import check_data, check_learning_rate, check_positive_int
from jaxgd.theory.least_squares import solve
from jaxgd.theory.stability import hessian


class Trajectory(NamedTuple):
    """The exact course of plain gradient descent (float64).

    Attributes:
      losses: ``(num_steps,)``; entry t is the loss before update t (entry 0 at the start).
      final_loss: the loss after the last update (0-d: every leaf is an array).
      params: the parameters after the last update.
    """

    losses: np.ndarray
    final_loss: np.ndarray
    params: LinearParams


def exact_trajectory(X, y, params0: LinearParams, learning_rate: float, num_steps: int,
                     l2: float = 0.0) -> Trajectory:
    """The loss history that ``num_steps`` steps of ``optax.sgd(learning_rate)`` must produce.

    Args:
      X: features, shape ``(n_samples, n_features)``.
      y: targets, shape ``(n_samples,)``.
      params0: the starting weight and bias.
      learning_rate: the constant learning rate η.
      num_steps: number of updates.
      l2: ridge strength: the history of MSE + l2·‖weight‖², a quadratic all the same.

    Returns:
      A ``Trajectory``; a divergent learning rate gives losses that grow to inf.

    Example:
      >>> import numpy as np
      >>> X, y = np.array([[-1.0], [1.0]]), np.array([0.0, 2.0])   # best: weight 1, bias 1
      >>> start = LinearParams(np.zeros(1), np.float64(0.0))
      >>> exact_trajectory(X, y, start, 0.25, 3).losses.round(12).tolist()
      [2.0, 0.5, 0.125]
    """
    X, y = check_data(X, y)
    learning_rate = check_learning_rate(learning_rate)
    num_steps = check_positive_int(num_steps, "num_steps")
    best = solve(X, y, l2)
    eigenvalues, Q = np.linalg.eigh(hessian(X, l2))
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    theta0 = np.append(np.asarray(params0.weight, np.float64), np.float64(params0.bias))
    theta_star = np.append(best.params.weight, best.params.bias)
    c = Q.T @ (theta0 - theta_star)
    contraction = 1.0 - learning_rate * eigenvalues
    steps = np.arange(num_steps + 1)[:, None]
    with np.errstate(over="ignore", invalid="ignore"):
        energy = 0.5 * eigenvalues * c * c
        # A zero eigenvalue contributes no loss; 0 * inf would give a spurious NaN.
        terms = np.where(energy == 0, 0.0, energy * contraction ** (2 * steps))
        losses = best.loss + terms.sum(axis=1)
        theta = theta_star + Q @ (contraction**num_steps * c)
    params = LinearParams(weight=theta[:-1], bias=np.asarray(theta[-1]))
    return Trajectory(losses=losses[:-1], final_loss=np.asarray(losses[-1]), params=params)
