"""Which constant learning rates plain gradient descent can use on a dataset, and how fast.

The MSE is a quadratic whose Hessian is H = 2/n · AᵀA with A = [X, 1]. Gradient descent with
a constant learning rate η multiplies the error along each eigenvector of H by (1 − ηλ) per
step, so it converges exactly when η < 2/λmax, and converges fastest at η = 2/(λmax + λmin),
where the slowest direction shrinks by (κ − 1)/(κ + 1) per step, κ = λmax/λmin.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jaxgd.least_squares import design_matrix
from jaxgd.statistics import SufficientStats
from jaxgd.validation import check_data, check_non_negative


class Stability(NamedTuple):
    """Learning-rate limits of plain gradient descent on one dataset (float64).

    Attributes:
      eigenvalues: eigenvalues of the MSE Hessian, ascending.
      max_learning_rate: 2/λmax: every constant learning rate below it converges.
      fastest_learning_rate: 2/(λmax + λmin): the fastest constant learning rate (λmin the
        smallest non-zero eigenvalue).
      condition_number: λmax/λmin (inf when the features are linearly dependent).
    """

    eigenvalues: np.ndarray
    max_learning_rate: float
    fastest_learning_rate: float
    condition_number: float


def hessian(X, l2: float = 0.0) -> np.ndarray:
    """The Hessian over (weight, bias) of MSE + l2·‖weight‖²: 2·(AᵀA/n + l2·D), float64,
    with D the identity on the weights and 0 on the bias."""
    if isinstance(X, SufficientStats):  # AᵀA/n from the moments
        mean = np.asarray(X.mean_x, np.float64)
        gram = np.block([[np.asarray(X.cov_xx) + np.outer(mean, mean), mean[:, None]],
                         [mean[None, :], np.ones((1, 1))]])
    else:
        A = design_matrix(X)
        gram = A.T @ A / A.shape[0]
    penalty = np.diag(np.append(np.full(gram.shape[0] - 1, l2), 0.0))
    return 2.0 * (gram + penalty)


def stability(X, l2: float = 0.0) -> Stability:
    """Eigenvalues of the MSE Hessian and the learning-rate limits they imply.

    Args:
      X: features, shape ``(n_samples, n_features)``, or the data's ``SufficientStats``;
        the targets do not matter.
      l2: ridge strength (the Hessian of MSE + l2·‖weight‖²).

    Returns:
      A ``Stability``.

    Example:
      >>> import numpy as np
      >>> s = stability(np.array([[-1.0], [1.0]]))   # H = 2·I
      >>> s.max_learning_rate, s.fastest_learning_rate, s.condition_number
      (1.0, 0.5, 1.0)
    """
    if not isinstance(X, SufficientStats):
        X, _ = check_data(X, np.zeros(np.shape(X)[0] if np.ndim(X) else 0))
    eigenvalues = np.linalg.eigvalsh(hessian(X, check_non_negative(l2, "l2")))
    # eigvalsh can return tiny negative values for a singular H; they are zeros.
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    largest = float(eigenvalues[-1])
    tiny = largest * eigenvalues.size * np.finfo(np.float64).eps
    # A zero eigenvalue (linearly dependent features, a constant column) is a direction the
    # loss does not depend on: it never moves, so the fastest rate is set by the smallest
    # eigenvalue that is not zero. The condition number, though, is then infinite.
    positive = eigenvalues[eigenvalues > tiny]
    smallest = float(positive[0]) if positive.size else largest
    condition = largest / float(eigenvalues[0]) if eigenvalues[0] > tiny else float("inf")
    return Stability(
        eigenvalues=eigenvalues,
        max_learning_rate=2.0 / largest,
        fastest_learning_rate=2.0 / (largest + smallest),
        condition_number=condition,
    )


#: Optimizers whose constant-rate stability limit on a quadratic is known exactly.
LIMITED = ("sgd", "momentum", "nesterov")


def limit_factor(optimizer: str, momentum=0.0):
    """The largest stable η·λmax of ``optimizer`` with a constant learning rate η on a
    quadratic whose Hessian's largest eigenvalue is λmax (NumPy arrays broadcast).

    Per eigendirection with h = η·λ the error follows a linear recurrence; it shrinks iff
    every root of its characteristic polynomial lies inside the unit circle (Jury's test):

    - sgd: e ← (1 − h)e, stable iff h < 2;
    - momentum (optax's heavy ball, v ← g + βv, θ ← θ − ηv): z² − (1 + β − h)z + β, stable
      iff h < 2(1 + β);
    - nesterov (optax: θ ← θ − η(g + βv') with v' ← g + βv): z² − (1 + β)(1 − h)z +
      β(1 − h), stable iff h < 2(1 + β)/(1 + 2β).

    Example:
      >>> limit_factor("sgd"), limit_factor("momentum", 0.9)
      (2.0, 3.8)
      >>> round(limit_factor("nesterov", 0.9), 4)
      1.3571
    """
    if optimizer not in LIMITED:
        raise ValueError(f"no known stability limit for {optimizer!r}: only {LIMITED}")
    beta = np.asarray(momentum, np.float64)
    if optimizer == "sgd":
        return 2.0
    if optimizer == "momentum":
        return 2.0 * (1.0 + beta) if beta.ndim else float(2.0 * (1.0 + beta))
    factor = 2.0 * (1.0 + beta) / (1.0 + 2.0 * beta)
    return factor if beta.ndim else float(factor)
