"""The closed-form least-squares optimum: the reference that gradient descent should reach."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jaxgd.core.params import LinearParams
from jaxgd.data.statistics import SufficientStats
from jaxgd.inputs.validation import check_data, check_non_negative


class LeastSquares(NamedTuple):
    """The MSE-optimal linear model, computed in float64 on the host.

    Attributes:
      params: ``LinearParams`` of float64 NumPy arrays (the minimum-norm optimum when the
        features are linearly dependent).
      loss: the MSE of ``params`` on the data, a 0-d float64 array (every leaf is an
        array, so the result passes through ``jit`` and ``tree_map``).
    """

    params: LinearParams
    loss: np.ndarray


def design_matrix(X: np.ndarray) -> np.ndarray:
    """A = [X, 1] in float64: the bias is the weight of a column of ones."""
    X = np.asarray(X, dtype=np.float64)
    return np.concatenate([X, np.ones((X.shape[0], 1))], axis=1)


def solve(X, y=None, l2: float = 0.0) -> LeastSquares:
    """Least-squares weight and bias for ``y ≈ X @ weight + bias``, by SVD in float64.

    An independent oracle for what gradient descent converges to; it shares no code with
    the descent loop. With ``l2 > 0`` it is the ridge optimum of MSE + l2·‖weight‖² (bias
    not penalized), solved as the least-squares problem with √(n·l2)·I appended under A.

    Args:
      X: features, shape ``(n_samples, n_features)``, or the data's
        ``jaxgd.data.statistics.SufficientStats`` (then y is None): the optimum from moments.
      y: targets, shape ``(n_samples,)``.
      l2: ridge strength, >= 0.

    Returns:
      ``LeastSquares(params, loss)``; with l2 the loss is the ridge objective.

    Example:
      >>> import numpy as np
      >>> best = solve(np.array([[0.0], [1.0], [2.0]]), np.array([1.0, 3.0, 5.0]))
      >>> best.params.weight.round(6).tolist(), round(float(best.params.bias), 6)
      ([2.0], 1.0)
    """
    if isinstance(X, SufficientStats):
        return _solve_moments(X, check_non_negative(l2, "l2"))
    X, y = check_data(X, y)
    l2 = check_non_negative(l2, "l2")
    A = design_matrix(X)
    y = np.asarray(y, dtype=np.float64)
    n, d = X.shape
    penalty = np.sqrt(n * l2) * np.eye(d, d + 1)  # rows [√(n·l2)·I, 0]: the bias is free
    theta, *_ = np.linalg.lstsq(np.vstack([A, penalty]), np.append(y, np.zeros(d)),
                                rcond=None)
    residual = A @ theta - y
    weight = theta[:-1]
    loss = np.mean(residual * residual) + l2 * np.sum(weight * weight)
    return LeastSquares(params=LinearParams(weight=weight, bias=np.asarray(theta[-1])),
                        loss=np.asarray(loss, np.float64))


def _solve_moments(stats: SufficientStats, l2: float) -> LeastSquares:
    # Centred normal equations (Σ + l2·I) w = s; the bias then centres the prediction.
    cov = np.asarray(stats.cov_xx, np.float64)
    s = np.asarray(stats.cov_xy, np.float64)
    weight, *_ = np.linalg.lstsq(cov + l2 * np.eye(cov.shape[0]), s, rcond=None)
    bias = float(stats.mean_y) - float(np.asarray(stats.mean_x) @ weight)
    loss = float(stats.var_y) - 2 * s @ weight + weight @ cov @ weight + l2 * weight @ weight
    return LeastSquares(LinearParams(weight=weight, bias=np.asarray(bias, np.float64)),
                        np.asarray(loss, np.float64))
