"""Sufficient statistics of a data set, and the MSE computed from them in O(d²).

The MSE of a linear model depends on the data only through a few moments. With x̄, ȳ the
means, Σ = cov(X), s = cov(X, y) and v = var(y) (all population moments),

    MSE(w, b) = wᵀΣw − 2sᵀw + v + (b + x̄ᵀw − ȳ)²

exactly: the centred cross terms vanish because centred columns sum to zero. Each step then
costs O(d²) whatever the number of rows. Centring is what keeps float32 honest: the raw Gram
form θᵀ(AᵀA/n)θ − 2(Aᵀy/n)ᵀθ + yᵀy/n subtracts numbers of the size of ȳ² to get a loss that
may be far smaller, while the centred form only cancels the explained part of var(y). The
moments are accumulated in float64 (Chan, Golub and LeVeque's pairwise update), so data can
arrive in chunks from a file of any length.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.model import dot
from jaxgd.params import LinearParams


class SufficientStats(NamedTuple):
    """Row count, means and centred second moments (divided by n) of (X, y).

    Attributes:
      n: number of rows.
      mean_x: ``(d,)``; mean_y: ``()``.
      cov_xx: ``(d, d)``; cov_xy: ``(d,)``; var_y: ``()``.
    """

    n: jax.Array
    mean_x: jax.Array
    mean_y: jax.Array
    cov_xx: jax.Array
    cov_xy: jax.Array
    var_y: jax.Array


def sufficient_statistics(X, y) -> SufficientStats:
    """The moments of one block of rows, in float64 on the host.

    Example:
      >>> s = sufficient_statistics(np.array([[0.0], [2.0]]), np.array([1.0, 5.0]))
      >>> float(s.mean_x[0]), float(s.cov_xx[0, 0]), float(s.cov_xy[0])
      (1.0, 1.0, 2.0)
    """
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.float64)
    mean_x, mean_y = X.mean(axis=0), y.mean()
    Xc, yc = X - mean_x, y - mean_y
    n = X.shape[0]
    return SufficientStats(
        n=np.float64(n),
        mean_x=mean_x,
        mean_y=np.float64(mean_y),
        cov_xx=Xc.T @ Xc / n,
        cov_xy=Xc.T @ yc / n,
        var_y=np.float64(yc @ yc / n),
    )


def merge(a: SufficientStats, b: SufficientStats) -> SufficientStats:
    """The moments of two blocks of rows together (pairwise update, float64).

    Example:
      >>> X, y = np.arange(6.0).reshape(3, 2), np.array([1.0, 4.0, 2.0])
      >>> both = merge(sufficient_statistics(X[:1], y[:1]), sufficient_statistics(X[1:], y[1:]))
      >>> bool(np.allclose(both.cov_xy, sufficient_statistics(X, y).cov_xy))
      True
    """
    n = a.n + b.n
    fa, fb = a.n / n, b.n / n
    dx, dy = b.mean_x - a.mean_x, b.mean_y - a.mean_y
    return SufficientStats(
        n=n,
        mean_x=a.mean_x + fb * dx,
        mean_y=a.mean_y + fb * dy,
        cov_xx=fa * a.cov_xx + fb * b.cov_xx + fa * fb * np.outer(dx, dx),
        cov_xy=fa * a.cov_xy + fb * b.cov_xy + fa * fb * dx * dy,
        var_y=fa * a.var_y + fb * b.var_y + fa * fb * dy * dy,
    )


def accumulate(blocks: Iterable[tuple[np.ndarray, np.ndarray]]) -> SufficientStats:
    """The moments of all rows of an iterable of (X, y) blocks, in one pass.

    Example:
      >>> X, y = np.arange(8.0).reshape(4, 2), np.array([1.0, 4.0, 2.0, 0.0])
      >>> s = accumulate([(X[:3], y[:3]), (X[3:], y[3:])])
      >>> bool(np.allclose(s.cov_xx, np.cov(X.T, bias=True))), int(s.n)
      (True, 4)
    """
    total = None
    for X, y in blocks:
        block = sufficient_statistics(X, y)
        total = block if total is None else merge(total, block)
    if total is None:
        raise ValueError("no rows: the data source yielded no blocks")
    return total


def gram_mse(params: LinearParams | tuple[jax.Array, ...], stats: SufficientStats) -> jax.Array:
    """The MSE of ``params`` from the data's moments: O(d²), the same function as ``mse``.

    ``params`` is ``LinearParams``, or the tuple ``(w₀, …, w_d₋₁, b)`` of scalars that
    ``jaxgd.layout`` holds narrow models as (then the sums are written out term by term).

    Example:
      >>> X, y = np.array([[0.0], [2.0]]), np.array([1.0, 5.0])
      >>> p = LinearParams(jnp.array([1.5]), jnp.array(0.5))
      >>> float(gram_mse(p, sufficient_statistics(X, y)))   # residuals -0.5 and -1.5
      1.25
    """
    if isinstance(params, tuple) and not isinstance(params, LinearParams):
        return _clamped(_gram_mse_scalars(params, stats))
    w, b = params.weight, params.bias
    # Wide models (see jaxgd.layout): under vmap these become (runs × d) · (d × d) products,
    # whose summation order may depend on how many runs share them, so runs agree across
    # sweep or chunk sizes to float rounding rather than bit for bit.
    offset = b + dot(stats.mean_x, w) - stats.mean_y
    loss = (dot(w, dot(stats.cov_xx, w)) - 2.0 * dot(stats.cov_xy, w) + stats.var_y
            + offset * offset)
    return _clamped(loss)


def _gram_mse_scalars(params: tuple[jax.Array, ...], stats: SufficientStats) -> jax.Array:
    # wᵀΣw − 2sᵀw as Σᵢ wᵢ·(Σᵢᵢwᵢ + 2·Σⱼ₍ⱼ>ᵢ₎ Σᵢⱼwⱼ − 2sᵢ): d(d+1)/2 products, each
    # elementwise over the runs of a sweep.
    *w, b = params
    cov, s, mean_x = stats.cov_xx, stats.cov_xy, stats.mean_x
    offset = b - stats.mean_y
    quadratic = 0.0
    for i, wi in enumerate(w):
        offset = offset + mean_x[i] * wi
        inner = cov[i, i] * wi - 2.0 * s[i]
        for j in range(i + 1, len(w)):
            inner = inner + 2.0 * cov[i, j] * w[j]
        quadratic = quadratic + wi * inner
    return quadratic + stats.var_y + offset * offset


def _clamped(loss: jax.Array) -> jax.Array:
    # Near an exact fit the float sum can round below 0, which no MSE is. Report 0 there but
    # keep the formula's gradient (the clamp is invisible to jax.grad).
    return loss + jax.lax.stop_gradient(jnp.maximum(loss, 0.0) - loss)


def to_device(stats: SufficientStats, dtype=None) -> SufficientStats:
    """The moments as JAX arrays in ``dtype`` (JAX's default float if None)."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    return jax.tree_util.tree_map(lambda a: device_array(a, dtype), stats)


def device_array(a, dtype) -> jax.Array:
    """``a`` as a JAX array of ``dtype``, converted on the host first (JAX would compile a
    small conversion program for every shape)."""
    return jnp.asarray(np.asarray(a, dtype))
