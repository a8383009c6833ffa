"""Sufficient statistics of a data set: row count, means and centred second moments.

The MSE of a linear model depends on the data only through these few moments (x̄, ȳ the
means, Σ = cov(X), s = cov(X, y), v = var(y), all population moments), so the moment engines
(``jaxgd.engines.gram``, ``jaxgd.engines.eigen``) train on them in O(d²) or O(d) per step
whatever the number of rows. They are accumulated in float64 with Chan, Golub and LeVeque's
pairwise update, so data can arrive in blocks from a file of any length;
centring keeps their digits.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


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


def remove(total: SufficientStats, part: SufficientStats) -> SufficientStats:
    """The moments of the rows of ``total`` that are not in ``part`` (``merge`` undone):
    a k-fold's training moments as all rows' minus its held-out block's, no copy of X.

    Example:
      >>> X, y = np.arange(8.0).reshape(4, 2), np.array([1.0, 4.0, 2.0, 0.0])
      >>> rest = remove(sufficient_statistics(X, y), sufficient_statistics(X[1:3], y[1:3]))
      >>> kept = sufficient_statistics(X[[0, 3]], y[[0, 3]])
      >>> bool(np.allclose(rest.cov_xx, kept.cov_xx)), float(rest.n)
      (True, 2.0)
    """
    n = total.n - part.n
    if not n > 0:
        raise ValueError(f"part has {part.n} rows, total {total.n}: nothing would remain")
    fr, fb = n / total.n, part.n / total.n
    mean_x = (total.mean_x - fb * part.mean_x) / fr
    mean_y = (total.mean_y - fb * part.mean_y) / fr
    dx, dy = part.mean_x - mean_x, part.mean_y - mean_y
    return SufficientStats(
        n=n,
        mean_x=mean_x,
        mean_y=mean_y,
        cov_xx=(total.cov_xx - fb * part.cov_xx - fr * fb * np.outer(dx, dx)) / fr,
        cov_xy=(total.cov_xy - fb * part.cov_xy - fr * fb * dx * dy) / fr,
        var_y=(total.var_y - fb * part.var_y - fr * fb * dy * dy) / fr,
    )


def accumulate(blocks: Iterable[tuple[np.ndarray, np.ndarray]]) -> SufficientStats:
    """The moments of all rows of an iterable of (X, y) blocks, in one pass.

    Example:
      >>> X, y = np.arange(8.0).reshape(4, 2), np.array([1.0, 4.0, 2.0, 0.0])
      >>> s = accumulate([(X[:3], y[:3]), (X[3:], y[3:])])
      >>> bool(np.allclose(s.cov_xx, np.cov(X.T, bias=True))), int(s.n)
      (True, 4)
    """
    total, rows = None, 0
    for index, (X, y) in enumerate(blocks):
        X, y = _checked_block(X, y, index, rows, None if total is None else total.mean_x.size)
        block = sufficient_statistics(X, y)
        total = block if total is None else merge(total, block)
        rows += X.shape[0]
    if total is None:
        raise ValueError("no rows: the data source yielded no blocks")
    return total


def _checked_block(X, y, index: int, first_row: int, width: int | None):
    """A block's shapes and values, checked, naming the block and the rows (counted from
    the first row of the first block)."""
    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    where = f"block {index} (rows {first_row}–{first_row + max(len(X), 1) - 1})"
    if X.ndim != 2 or y.ndim != 1:
        raise ValueError(f"{where}: X must be 2-D and y 1-D, got shapes {X.shape} and "
                         f"{y.shape}")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"{where}: X has {X.shape[0]} rows but y has {y.shape[0]}")
    if width is not None and X.shape[1] != width:
        raise ValueError(f"{where}: {X.shape[1]} feature columns, earlier blocks had {width}")
    bad = np.flatnonzero(~(np.isfinite(X).all(axis=1) & np.isfinite(y)))
    if bad.size:
        rows = ", ".join(str(first_row + int(r)) for r in bad[:10])
        more = f", ... ({bad.size - 10} more)" if bad.size > 10 else ""
        raise ValueError(f"{where}: NaN or infinite values in rows {rows}{more}")
    return X, y


def to_device(stats: SufficientStats, dtype=None) -> SufficientStats:
    """The moments as JAX arrays in ``dtype`` (JAX's default float if None)."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    return jax.tree_util.tree_map(lambda a: device_array(a, dtype), stats)


def device_array(a, dtype) -> jax.Array:
    """``a`` as a JAX array of ``dtype``, converted on the host first and copied with
    ``jax.device_put`` (``jnp.asarray`` and a device-side conversion each compile a small
    program for every shape), after ``host_array``'s range check."""
    return jax.device_put(host_array(a, dtype))


def on_device(x, dtype) -> jax.Array:
    """``x`` as a JAX array of ``dtype`` without a compiled conversion: values on the host
    are converted by NumPy and copied with ``jax.device_put`` (``jnp.asarray`` compiles a
    small program for every shape and dtype, a tenth of a second each on a CPU); JAX arrays
    and the caller's tracers are converted by JAX.

    Example:
      >>> on_device([1, 2], jnp.float32).dtype
      dtype('float32')
    """
    dtype = jax.dtypes.canonicalize_dtype(dtype)
    if isinstance(x, jax.Array):
        return x if x.dtype == dtype else jnp.asarray(x, dtype)
    return jax.device_put(np.asarray(x, dtype))


def host_array(a, dtype) -> np.ndarray:
    """``a`` as a NumPy array of ``dtype``.

    Raises:
      ValueError: if finite values of ``a`` (the data's moments, or what the engines make of
        them) lie beyond ``dtype``'s range: in float32 they would become inf, and every
        verdict after them would be wrong.
    """
    host = np.asarray(a)
    with np.errstate(over="ignore"):
        out = np.asarray(host, dtype)
    if not np.isfinite(out).all() and np.isfinite(host).all():
        raise ValueError(f"the data's sums of squares and products exceed {np.dtype(dtype).name}'s "
                         f"range (|value| > {np.finfo(dtype).max:.3g}): rescale X or y, or "
                         "compute in float64 (JAX_ENABLE_X64=1, or "
                         "jax.config.update('jax_enable_x64', True))")
    return out
