"""The gram engine: the MSE from the data's moments, written around its optimum.

With x̄ the feature means, Σ = cov(X) = RᵀR, and (w*, b*) the least-squares optimum with
loss L*, the MSE of any (w, b) is exactly

    MSE(w, b) = L* + ‖R(w − w*)‖² + (b − b* + x̄ᵀ(w − w*))²

(expand it: Σw* = cov(X, y) and b* = ȳ − x̄ᵀw* make the cross terms vanish). Each step costs
O(d²) whatever n is, as with the textbook form wᵀΣw − 2sᵀw + var(y) + (b + x̄ᵀw − ȳ)², but
without its cancellation: that form subtracts terms as large as var(y) to get a loss that
may be far smaller, so in float32 a near-exact fit's loss is lost in the rounding of var(y)
(and can even come out below L*). Here every term is a square added to L*: the loss is
never below L*, and is exact to the rounding of the loss itself. The parameters are not
rotated (unlike ``jaxgd.engines.eigen``), so the descent is exactly that of the optimizer on the
MSE for any optimizer, Adam included. The ridge penalty l2·‖w‖² is added on top, per run,
so l2 may differ across the runs of a sweep (w* stays the unpenalized optimum).

R, w*, b* and L* come from the data's float64 moments on the host (``prepare``), or, for
data traced by the caller's ``jit``/``vmap``, from a Cholesky factor in the traced program
(``prepare_traced``: full-rank features only).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core.model import PRECISION, dot, mse
from jaxgd.core.params import LinearParams
from jaxgd.data.statistics import SufficientStats, device_array
from jaxgd.engines import layout
from jaxgd.theory.least_squares import solve


class Quadratic(NamedTuple):
    """The MSE as a quadratic around its optimum (see the module).

    Attributes:
      root: R, ``(d, d)``, with RᵀR = cov(X).
      mean_x: x̄, ``(d,)``.
      weight: w*, ``(d,)``; bias: b*, ``()``: the least-squares optimum (minimum norm).
      optimal_loss: L*, ``()``, the optimum's MSE.
    """

    root: jax.Array
    mean_x: jax.Array
    weight: jax.Array
    bias: jax.Array
    optimal_loss: jax.Array


def quadratic(stats: SufficientStats) -> Quadratic:
    """The quadratic of the data's moments, in float64 NumPy.

    Example:
      >>> from jaxgd.data.statistics import sufficient_statistics
      >>> q = quadratic(sufficient_statistics(np.array([[0.0], [2.0]]), np.array([1., 5.])))
      >>> q.weight.tolist(), float(q.bias), float(q.optimal_loss)
      ([2.0], 1.0, 0.0)
    """
    cov = np.asarray(stats.cov_xx, np.float64)
    sigma, V = np.linalg.eigh(cov)
    root = np.sqrt(np.clip(sigma, 0.0, None))[:, None] * V.T
    best = solve(stats)
    return Quadratic(root=root, mean_x=np.asarray(stats.mean_x, np.float64),
                     weight=best.params.weight, bias=np.float64(best.params.bias),
                     optimal_loss=np.float64(max(best.loss, 0.0)))


def prepare(stats: SufficientStats, dtype=None) -> Quadratic:
    """``quadratic(stats)`` as JAX arrays in ``dtype`` (JAX's default float if None)."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    return jax.tree_util.tree_map(lambda a: device_array(a, dtype), quadratic(stats))


def prepare_traced(X: jax.Array, y: jax.Array) -> Quadratic:
    """The quadratic of traced rows, computed in the traced program (X's dtype).

    Σ is factored by Cholesky, so the features must be linearly independent; L* is the
    optimum's MSE on the rows themselves (no cancellation).
    """
    n = X.shape[0]
    mean_x, mean_y = jnp.mean(X, axis=0), jnp.mean(y)
    Xc, yc = X - mean_x, y - mean_y
    cov = jnp.matmul(Xc.T, Xc, precision=PRECISION) / n
    cross = jnp.matmul(Xc.T, yc, precision=PRECISION) / n
    lower = jnp.linalg.cholesky(cov)
    weight = jax.scipy.linalg.cho_solve((lower, True), cross)
    bias = mean_y - dot(mean_x, weight)
    best = mse(LinearParams(weight, bias), X, y)
    return Quadratic(root=lower.T, mean_x=mean_x, weight=weight, bias=bias, optimal_loss=best)


def gram_loss(coordinates, q: Quadratic) -> jax.Array:
    """The MSE at ``coordinates``: ``LinearParams``, or the tuple ``(w₀, …, w_d₋₁, b)`` of
    scalars that ``jaxgd.engines.layout`` holds narrow models as (then written out term by
    term, each elementwise over the runs of a sweep).

    Example:
      >>> from jaxgd.data.statistics import sufficient_statistics
      >>> q = prepare(sufficient_statistics(np.array([[0.0], [2.0]]), np.array([1., 5.])))
      >>> p = LinearParams(jnp.array([1.5]), jnp.array(0.5))   # residuals -0.5 and -1.5
      >>> float(gram_loss(p, q))
      1.25
    """
    if isinstance(coordinates, LinearParams):
        error = coordinates.weight - q.weight
        rotated = dot(error, q.root.T)
        offset = coordinates.bias - q.bias + dot(error, q.mean_x)
        return q.optimal_loss + jnp.sum(rotated * rotated, axis=-1) + offset * offset
    *w, b = coordinates
    error = [wi - q.weight[i] for i, wi in enumerate(w)]
    offset = b - q.bias
    for i, ei in enumerate(error):
        offset = offset + q.mean_x[i] * ei
    total = q.optimal_loss + offset * offset
    for k in range(len(error)):
        rotated = q.root[k, 0] * error[0]
        for i in range(1, len(error)):
            rotated = rotated + q.root[k, i] * error[i]
        total = total + rotated * rotated
    return total


def to_coordinates(q: Quadratic, params: LinearParams):
    """Narrow models as a tuple of scalars (``jaxgd.engines.layout``), wider ones as they are."""
    if layout.use_scalars(q.mean_x.shape[0]):
        return layout.to_scalars(layout.flatten(params))
    return params


def from_coordinates(q: Quadratic, coordinates) -> LinearParams:
    """The inverse of ``to_coordinates``; leading axes (runs, snapshots) are kept."""
    if isinstance(coordinates, LinearParams):
        return coordinates
    return layout.unflatten(layout.from_scalars(coordinates))
