"""Which constant learning rates gradient descent (plain, momentum, Nesterov) can use on a
dataset, and how fast.

The MSE is a quadratic whose Hessian is H = 2/n · AᵀA with A = [X, 1]. Gradient descent with
a constant learning rate η multiplies the error along each eigenvector of H by (1 − ηλ) per
step, so it converges exactly when η < 2/λmax, and converges fastest at η = 2/(λmax + λmin),
where the slowest direction shrinks by (κ − 1)/(κ + 1) per step, κ = λmax/λmin. With
momentum or Nesterov each direction follows a two-term recurrence instead; its roots give
the limits 2(1 + β)/λmax and 2(1 + β)/((1 + 2β)·λmax) (``limit_factor``) and each
direction's rate (``Stability.rates``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

from jaxgd.data.statistics import SufficientStats
from jaxgd.inputs.validation import check_data, check_non_negative, is_traced
from jaxgd.theory.least_squares import design_matrix

#: Each optimizer's stability limit as a formula (see ``limit_factor``).
LIMIT_NAMES = {"sgd": "2/λmax", "momentum": "2(1+β)/λmax", "nesterov": "2(1+β)/((1+2β)λmax)"}


class Stability(NamedTuple):
    """Learning-rate limits of an optimizer with a constant learning rate on one dataset
    (float64).

    Attributes:
      eigenvalues: eigenvalues of the MSE Hessian, ascending.
      max_learning_rate: every constant learning rate below it converges: 2/λmax for plain
        gradient descent, 2(1 + β)/λmax with momentum β, 2(1 + β)/((1 + 2β)·λmax) for
        Nesterov (see ``limit_factor``).
      fastest_learning_rate: the constant learning rate whose slowest direction shrinks
        fastest: 2/(λmax + λmin) for plain gradient descent (λmin the smallest non-zero
        eigenvalue), found numerically for momentum and Nesterov (where every rate of an
        interval may do equally well, each direction shrinking by √β: then its middle).
      condition_number: λmax/λmin (inf when the features are linearly dependent).
      optimizer: "sgd", "momentum" or "nesterov" (static pytree metadata, not a leaf).
      momentum: β (0 for plain gradient descent).

    The numbers are 0-d float64 arrays, so every leaf is an array and a ``Stability``
    passes through ``jit`` and ``jax.tree_util.tree_map``:

      >>> import jax, numpy as np
      >>> s = stability(np.array([[-1.0], [1.0]]))
      >>> jax.tree_util.tree_map(lambda a: a * 2, s).max_learning_rate.item(), s.optimizer
      (2.0, 'sgd')
    """

    eigenvalues: np.ndarray
    max_learning_rate: np.ndarray
    fastest_learning_rate: np.ndarray
    condition_number: np.ndarray
    optimizer: str = "sgd"
    momentum: np.ndarray = np.asarray(0.0)

    @property
    def limit_name(self) -> str:
        """The limit's formula, e.g. "2/λmax" (``max_learning_rate``).

        Example:
          >>> import numpy as np
          >>> stability(np.array([[-1.0], [1.0]]), optimizer="momentum").limit_name
          '2(1+β)/λmax'
        """
        return LIMIT_NAMES[self.optimizer]

    def rates(self, learning_rate: float) -> np.ndarray:
        """Per eigendirection, the factor by which its error shrinks per step at this
        constant learning rate (the spectral radius of its iteration; > 1: it grows; the
        loss shrinks by its square).

        Example:
          >>> import numpy as np
          >>> stability(np.array([[-1.0], [1.0]])).rates(0.25).tolist()   # 1 - 0.25·2
          [0.5, 0.5]
        """
        return spectral_radius(learning_rate * self.eigenvalues, self.optimizer,
                               self.momentum)


# A NamedTuple's every field would be a leaf: the optimizer's name is static metadata instead
# (a string is no array, and jit would refuse it).
_LEAVES = tuple(name for name in Stability._fields if name != "optimizer")
jax.tree_util.register_pytree_with_keys(
    Stability,
    lambda s: (tuple((jax.tree_util.GetAttrKey(n), getattr(s, n)) for n in _LEAVES),
               s.optimizer),
    lambda optimizer, leaves: Stability(**dict(zip(_LEAVES, leaves, strict=True)),
                                        optimizer=optimizer),
    flatten_func=lambda s: (tuple(getattr(s, n) for n in _LEAVES), s.optimizer))


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


def stability(X, l2: float = 0.0, optimizer: str = "sgd",
              momentum: float | None = None) -> Stability:
    """Eigenvalues of the MSE Hessian and the learning-rate limits they imply.

    Args:
      X: features, shape ``(n_samples, n_features)``, or the data's ``SufficientStats``;
        the targets do not matter.
      l2: ridge strength (the Hessian of MSE + l2·‖weight‖²).
      optimizer: "sgd" (plain gradient descent), "momentum" or "nesterov" (optax's).
      momentum: β for momentum and Nesterov (default 0.9, as ``jaxgd.core.optimizers``); with
        "sgd" only None or 0.

    Raises:
      ValueError: momentum outside [0, 1), or a non-zero momentum with optimizer "sgd".

    Returns:
      A ``Stability``.

    Example:
      >>> import numpy as np
      >>> s = stability(np.array([[-1.0], [1.0]]))   # H = 2·I
      >>> float(s.max_learning_rate), float(s.fastest_learning_rate), float(s.condition_number)
      (1.0, 0.5, 1.0)
      >>> momentum = stability(np.array([[-1.0], [1.0]]), optimizer="momentum")
      >>> round(float(momentum.max_learning_rate), 6)
      1.9
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
    if optimizer == "sgd" and momentum is not None and momentum != 0:
        # Plain gradient descent has no β: dropping it would answer another question than
        # the one asked (β = 0, sgd's own, is what Stability.momentum holds for it).
        raise ValueError(f"momentum={momentum!r} does not apply to optimizer 'sgd' (plain "
                         "gradient descent has none): momentum is for optimizer "
                         "'momentum' or 'nesterov'")
    beta = 0.0 if optimizer == "sgd" else float(0.9 if momentum is None else momentum)
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
    limit = limit_factor(optimizer, beta) / largest
    fastest = (2.0 / (largest + smallest) if optimizer == "sgd"
               else _fastest(smallest, largest, optimizer, beta, limit))
    number = lambda value: np.asarray(value, np.float64)  # noqa: E731  (leaves are arrays)
    return Stability(eigenvalues=eigenvalues, max_learning_rate=number(limit),
                     fastest_learning_rate=number(fastest), condition_number=number(condition),
                     optimizer=optimizer, momentum=number(beta))


def spectral_radius(h, optimizer: str = "sgd", momentum: float = 0.0) -> np.ndarray:
    """The spectral radius of one eigendirection's iteration at h = η·λ (arrays broadcast):
    |1 − h| for sgd, the largest root of the characteristic polynomials in
    ``limit_factor`` for momentum and Nesterov."""
    h = np.asarray(h, np.float64)
    if optimizer == "sgd":
        return np.abs(1.0 - h)
    beta = float(momentum)
    if optimizer == "momentum":
        a1, a0 = -(1.0 + beta - h), np.full_like(h, beta)
    elif optimizer == "nesterov":
        a1, a0 = -(1.0 + beta) * (1.0 - h), beta * (1.0 - h)
    else:
        raise ValueError(f"no known iteration for {optimizer!r}: only {LIMITED}")
    root = np.sqrt((a1 * a1 - 4.0 * a0).astype(complex))
    return np.maximum(np.abs((-a1 + root) / 2.0), np.abs((-a1 - root) / 2.0))


def _fastest(smallest: float, largest: float, optimizer: str, beta: float,
             limit: float) -> float:
    # The radius is smallest in the middle of each direction's stable range and rises to 1
    # at both ends, so the slowest direction is λmin's or λmax's: minimise the larger of the
    # two over η in (0, limit), on a fine grid and then on finer ones around its best. With
    # momentum the best is often a whole interval (every direction's roots complex, all
    # shrinking by √β): then its middle, the rate farthest from either end.
    low, high = 0.0, limit
    for _ in range(3):
        eta = np.linspace(low, high, 4001)[1:-1]
        worst = np.maximum(spectral_radius(eta * smallest, optimizer, beta),
                           spectral_radius(eta * largest, optimizer, beta))
        flat = np.flatnonzero(worst <= worst.min() + 1e-12)
        if flat.size > 1:
            return float((eta[flat[0]] + eta[flat[-1]]) / 2.0)
        best = int(flat[0])
        step = eta[1] - eta[0]
        low, high = max(eta[best] - step, 0.0), min(eta[best] + step, limit)
    return float(eta[best])


#: Optimizers whose constant-rate stability limit on a quadratic is known exactly.
LIMITED = ("sgd", "momentum", "nesterov")


def has_exact_limit(optimizer: str, schedule: str = "constant") -> bool:
    """Whether ``optimizer`` with ``schedule`` has an exact stability limit on the MSE (a
    constant learning rate of plain gradient descent, momentum or Nesterov), the one rule
    that the unstable-run verdicts, refinement and ``lr_range`` ask.

    Example:
      >>> has_exact_limit("momentum"), has_exact_limit("adam")
      (True, False)
      >>> has_exact_limit("sgd", "cosine_decay")
      False
    """
    return optimizer in LIMITED and schedule == "constant"


def limit_factor(optimizer: str, momentum=0.0):
    """The largest stable η·λmax of ``optimizer`` with a constant learning rate η on a
    quadratic whose Hessian's largest eigenvalue is λmax (NumPy arrays broadcast; a traced
    momentum gives a traced factor).

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
    traced = is_traced(momentum)  # inside a traced program (jaxgd.tuning.refinement): JAX math
    beta = momentum if traced else np.asarray(momentum, np.float64)
    if optimizer == "sgd":
        return 2.0
    if optimizer == "momentum":
        factor = 2.0 * (1.0 + beta)
    else:
        factor = 2.0 * (1.0 + beta) / (1.0 + 2.0 * beta)
    return factor if traced or beta.ndim else float(factor)
