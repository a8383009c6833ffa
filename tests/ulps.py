"""Floats of two different compiled programs compared in ulps (units in the last place).

What XLA guarantees is that the same compiled program on the same machine gives the same
bits. Change the program (the number of runs vmapped, the chunking, the segments, padding,
the engine, the fused kernel, the sharding) and its code generation for the CPU at hand may
sum a reduction in another order: segmented eigen losses 1 to 3 ulps off the plain scan's
on CPUs with AVX2 or AVX-512, bit for bit on others. Tests of such pairs use
``assert_close_ulps`` with a bound justified where it is used; tests of one program run
twice stay exact (``np.testing.assert_array_equal``).
"""

import numpy as np


def ulps_apart(actual, expected, floor=0.0) -> np.ndarray:
    """Elementwise |actual - expected| in spacings (``np.spacing``) of ``expected``'s float
    dtype at the larger magnitude of the two, or at ``floor`` where that is larger (for
    values that shrink toward 0 but carry the rounding of larger terms, e.g. a loss
    computed from parameters of order 1). 0 where both are NaN or equal (equal infinities
    too); inf where only one is NaN or an infinity differs."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    dtype = expected.dtype
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        magnitude = np.maximum(np.maximum(np.abs(a), np.abs(e)), floor)
        spacing = np.spacing(magnitude.astype(dtype)).astype(np.float64)
        apart = np.abs(a - e) / spacing
    same = (a == e) | (np.isnan(a) & np.isnan(e))
    apart = np.where(same, 0.0, apart)
    return np.where(np.isnan(apart), np.inf, apart)


def assert_close_ulps(actual, expected, ulps=4, *, floor=0.0, err_msg=""):
    """Asserts that ``actual`` is within ``ulps`` of ``expected`` (see ``ulps_apart``), with
    the same shape, and reports the worst entry. Integer and bool arrays (steps, verdicts)
    must be equal."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    name = f"{err_msg}: " if err_msg else ""
    assert actual.shape == expected.shape, (
        f"{name}shapes differ, {actual.shape} and {expected.shape}")
    if expected.dtype.kind != "f":
        np.testing.assert_array_equal(actual, expected, err_msg=err_msg)
        return
    apart = ulps_apart(actual, expected, floor)
    over = apart > ulps
    if over.any():
        worst = np.unravel_index(np.argmax(apart), apart.shape)
        raise AssertionError(
            f"{name}{int(over.sum())} of {apart.size} entries more than {ulps} ulps "
            f"apart (floor {floor}); the worst, at {tuple(map(int, worst))}: "
            f"{actual[worst]!r} (actual) vs {expected[worst]!r} (expected), "
            f"{apart[worst]:.4g} ulps of {expected.dtype}")

