"""Sobol' points in [0, 1)^d, plain or scrambled (linear matrix scrambling + digital shift).

A Sobol' sequence fills the unit cube more evenly than independent uniform draws: every
prefix of 2^m points has exactly 2^(m - k) points in each dyadic interval [j/2^k, (j+1)/2^k)
of any single coordinate (k ≤ m), and the 2-D projections are nets too. Point i of dimension
j is the XOR of the direction numbers v_jk over the bits k of the Gray code of i (Antonov and
Saleev's ordering, the one Joe and Kuo's and SciPy's generators use), read as a binary
fraction with ``BITS`` bits.

Scrambling (Matoušek's linear matrix scrambling with a random digital shift) multiplies each
dimension's direction numbers by a random lower-triangular binary matrix with a unit
diagonal and XORs a random shift onto the points: the net properties survive, the point at
0 and the lattice structure go, and a seed reproduces them. This runs on the host in NumPy
(it prepares inputs, like a grid's values); no SciPy needed.
"""

from __future__ import annotations

import numpy as np

#: Bits per coordinate: points are multiples of 2^-32, and up to 2^32 of them differ.
BITS = 32

# Direction numbers from S. Joe and F. Y. Kuo, "Constructing Sobol sequences with better
# two-dimensional projections", SIAM J. Sci. Comput. 30, 2635-2654 (2008), file
# new-joe-kuo-6.21201 (https://web.maths.unsw.edu.au/~fkuo/sobol/), its dimensions 2 to 21:
# (d, s, a, m_1 ... m_s): s the degree of the primitive polynomial, a its inner
# coefficients as bits, m_k the initial direction integers. Dimension 1 has all m_k = 1.
_JOE_KUO = """
2 1 0 1
3 2 1 1 3
4 3 1 1 3 1
5 3 2 1 1 1
6 4 1 1 1 3 3
7 4 4 1 3 5 13
8 5 2 1 1 5 5 17
9 5 4 1 1 5 5 5
10 5 7 1 1 7 11 19
11 5 11 1 1 5 1 1
12 5 13 1 1 1 3 11
13 5 14 1 3 5 5 31
14 6 1 1 3 3 9 7 49
15 6 13 1 1 1 15 21 21
16 6 16 1 3 1 13 27 49
17 6 19 1 1 1 15 7 5
18 6 22 1 3 1 15 13 25
19 6 25 1 1 5 5 19 61
20 7 1 1 3 7 11 23 15 103
21 7 4 1 3 7 13 13 15 69
"""

#: The most dimensions this module has direction numbers for.
MAX_DIMENSIONS = 21


def _table() -> list[tuple[int, int, list[int]]]:
    rows = [[int(v) for v in line.split()] for line in _JOE_KUO.strip().splitlines()]
    return [(row[1], row[2], row[3:]) for row in rows]


def direction_numbers(dimensions: int) -> np.ndarray:
    """The direction numbers v_jk (k = 1..BITS) as ``(dimensions, BITS)`` uint64 integers,
    v_jk = m_jk · 2^(BITS - k), from Joe and Kuo's recurrence
    m_k = 2a_1 m_(k-1) ⊕ 4a_2 m_(k-2) ⊕ ... ⊕ 2^(s-1) a_(s-1) m_(k-s+1) ⊕ 2^s m_(k-s) ⊕ m_(k-s).

    Example:
      >>> v = direction_numbers(2)
      >>> (v[:, :3] / 2.0**BITS).tolist()
      [[0.5, 0.25, 0.125], [0.5, 0.75, 0.625]]
    """
    if not 1 <= dimensions <= MAX_DIMENSIONS:
        raise ValueError(f"Sobol' points come in 1 to {MAX_DIMENSIONS} dimensions here, "
                         f"got {dimensions}")
    m = np.ones((dimensions, BITS), np.uint64)
    for j, (s, a, initial) in enumerate(_table()[: dimensions - 1], start=1):
        m[j, :s] = initial
        for k in range(s, BITS):
            value = m[j, k - s] ^ (m[j, k - s] << np.uint64(s))
            for i in range(1, s):  # bit i-1 of a, counted from the most significant
                if (a >> (s - 1 - i)) & 1:
                    value ^= m[j, k - i] << np.uint64(i)
            m[j, k] = value
    shifts = np.arange(BITS - 1, -1, -1, dtype=np.uint64)  # 2^(BITS - k) for k = 1..BITS
    return m << shifts


def sobol(num_points: int, dimensions: int, *, scramble: bool = True,
          seed: int = 0) -> np.ndarray:
    """The first ``num_points`` Sobol' points in [0, 1)^dimensions, float64.

    Take a power of two for the balance properties (each 2^m prefix is a net).

    Args:
      num_points: how many points, 1 to 2^32.
      dimensions: 1 to ``MAX_DIMENSIONS``.
      scramble: linear matrix scrambling and a digital shift, drawn from ``seed``; False
        gives the plain sequence, starting at the origin.
      seed: the scrambling's seed (a non-negative integer); the same seed gives the same
        points.

    Returns:
      ``(num_points, dimensions)`` array.

    Example:
      >>> sobol(4, 2, scramble=False).tolist()
      [[0.0, 0.0], [0.5, 0.5], [0.75, 0.25], [0.25, 0.75]]
      >>> points = sobol(8, 3, seed=1)
      >>> eighths = sorted((points[:, 0] * 8).astype(int).tolist())
      >>> bool(((points >= 0) & (points < 1)).all()), eighths
      (True, [0, 1, 2, 3, 4, 5, 6, 7])
    """
    if isinstance(num_points, bool) or not isinstance(num_points, int | np.integer) or not (
            1 <= num_points <= 2**BITS):
        raise ValueError(f"num_points must be an integer from 1 to 2^{BITS}, got "
                         f"{num_points!r}")
    v = direction_numbers(dimensions)
    shift = np.zeros(dimensions, np.uint64)
    if scramble:
        rng = np.random.default_rng(seed)
        v = _scramble(v, rng)
        shift = rng.integers(0, 2**BITS, size=dimensions, dtype=np.uint64)
    index = np.arange(num_points, dtype=np.uint64)
    gray = index ^ (index >> np.uint64(1))
    points = np.broadcast_to(shift, (num_points, dimensions)).copy()
    for k in range(BITS):
        bit = ((gray >> np.uint64(k)) & np.uint64(1)).astype(bool)
        points[bit] ^= v[:, k]
    return points.astype(np.float64) / 2.0**BITS


def _scramble(v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each dimension's direction numbers times a random lower-triangular binary matrix with
    a unit diagonal (bits counted from the most significant: output bit r mixes input bits
    0..r, so the leading digits, which decide the nets, stay a bijection)."""
    dimensions = v.shape[0]
    lower = np.tril(rng.integers(0, 2, size=(dimensions, BITS, BITS), dtype=np.uint64), -1)
    lower[:, np.arange(BITS), np.arange(BITS)] = 1
    place = np.arange(BITS - 1, -1, -1, dtype=np.uint64)  # bit r (from the top) is 2^(31-r)
    bits = (v[:, None, :] >> place[None, :, None]) & np.uint64(1)  # (dims, bit r, k)
    mixed = np.einsum("jrc,jck->jrk", lower, bits) & np.uint64(1)  # mod 2
    return (mixed << place[None, :, None]).sum(axis=1, dtype=np.uint64)
