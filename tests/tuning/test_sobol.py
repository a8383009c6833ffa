import numpy as np
import pytest

from jaxgd.tuning.sobol import BITS, MAX_DIMENSIONS, direction_numbers, sobol

# scipy.stats.qmc.Sobol(d=3, scramble=False).random(8), written out: the Gray-code order of
# Joe and Kuo's generator. Checked by hand: dimension 1 has v = 1/2, 1/4, 1/8; dimension 2
# (m = 1, 3) v = 1/2, 3/4; dimension 3 (m = 1, 3, 1) v = 1/2, 3/4, 1/8... and point i is the
# XOR of the v_k over the bits of gray(i) = i ^ (i >> 1): point 2 (gray 3) = 1/2 ^ 3/4 = 1/4
# in dimensions 2 and 3, 1/2 ^ 1/4 = 3/4 in dimension 1.
FIRST_EIGHT = [
    [0.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.75, 0.25, 0.25],
    [0.25, 0.75, 0.75],
    [0.375, 0.375, 0.625],
    [0.875, 0.875, 0.125],
    [0.625, 0.125, 0.875],
    [0.125, 0.625, 0.375],
]

# new-joe-kuo-6.21201, dimensions 2-21, copied again here for an independent reference.
JOE_KUO = [
    (1, 0, [1]), (2, 1, [1, 3]), (3, 1, [1, 3, 1]), (3, 2, [1, 1, 1]), (4, 1, [1, 1, 3, 3]),
    (4, 4, [1, 3, 5, 13]), (5, 2, [1, 1, 5, 5, 17]), (5, 4, [1, 1, 5, 5, 5]),
    (5, 7, [1, 1, 7, 11, 19]), (5, 11, [1, 1, 5, 1, 1]), (5, 13, [1, 1, 1, 3, 11]),
    (5, 14, [1, 3, 5, 5, 31]), (6, 1, [1, 3, 3, 9, 7, 49]), (6, 13, [1, 1, 1, 15, 21, 21]),
    (6, 16, [1, 3, 1, 13, 27, 49]), (6, 19, [1, 1, 1, 15, 7, 5]),
    (6, 22, [1, 3, 1, 15, 13, 25]), (6, 25, [1, 1, 5, 5, 19, 61]),
    (7, 1, [1, 3, 7, 11, 23, 15, 103]), (7, 4, [1, 3, 7, 13, 13, 15, 69]),
]


def reference(num_points, dims):
    """Joe and Kuo's own C loop, transcribed with Python integers: V[i] = m_i << (32 - i),
    V[i] = V[i-s] ^ (V[i-s] >> s) ^ (a_k V[i-k] for k < s), and the point-to-point update
    X_(i+1) = X_i ^ V[c] with c the position of the lowest zero bit of i (Antonov-Saleev)."""
    out = np.zeros((num_points, dims))
    for j in range(dims):
        V = [0] * (BITS + 1)
        if j == 0:
            for i in range(1, BITS + 1):
                V[i] = 1 << (32 - i)
        else:
            s, a, m = JOE_KUO[j - 1]
            for i in range(1, s + 1):
                V[i] = m[i - 1] << (32 - i)
            for i in range(s + 1, BITS + 1):
                V[i] = V[i - s] ^ (V[i - s] >> s)
                for k in range(1, s):
                    V[i] ^= ((a >> (s - 1 - k)) & 1) * V[i - k]
        x = 0
        for i in range(1, num_points):
            c, value = 1, i - 1
            while value & 1:
                value >>= 1
                c += 1
            x ^= V[c]
            out[i, j] = x / 2.0**32
    return out


def test_first_points_match_the_published_sequence():
    np.testing.assert_array_equal(sobol(8, 3, scramble=False), FIRST_EIGHT)
    np.testing.assert_array_equal(sobol(4, 1, scramble=False).ravel(), [0, 0.5, 0.75, 0.25])


def test_every_dimension_matches_joe_and_kuos_generator():
    # 1024 points use direction numbers 1..10: the recurrence of every dimension (degree ≤ 7).
    np.testing.assert_array_equal(sobol(1024, MAX_DIMENSIONS, scramble=False),
                                  reference(1024, MAX_DIMENSIONS))


def test_direction_numbers_are_odd_multiples_below_two_to_the_k():
    v = direction_numbers(MAX_DIMENSIONS)
    m = v >> np.arange(BITS - 1, -1, -1, dtype=np.uint64)
    assert (m % 2 == 1).all() and (m < 2 ** np.arange(1, BITS + 1, dtype=np.uint64)).all()


@pytest.mark.parametrize("scramble", [False, True])
def test_each_power_of_two_prefix_has_one_point_per_elementary_interval(scramble):
    points = sobol(256, MAX_DIMENSIONS, scramble=scramble, seed=5)
    for m in range(9):
        prefix = points[: 2**m]
        cells = np.floor(prefix * 2**m).astype(int)  # 1-D elementary intervals of length 2^-m
        for column in cells.T:
            assert sorted(column) == list(range(2**m))
    # Dimensions 1 and 2 form a (0, m, 2)-net: each 1/4 × 1/4 box holds one of 16 points.
    cells = np.floor(points[:16, :2] * [4, 4]).astype(int)
    assert len({tuple(c) for c in cells}) == 16


def test_scrambled_points_stay_in_the_unit_cube_and_follow_their_seed():
    a = sobol(512, 6, seed=1)
    assert ((a >= 0) & (a < 1)).all()
    np.testing.assert_array_equal(a, sobol(512, 6, seed=1))  # reproducible
    b = sobol(512, 6, seed=2)
    assert not np.isclose(a, b).any(axis=1).all()  # another seed, other points
    assert not (a == 0).all(axis=1).any()  # scrambling moves the origin
    # A scrambled point set estimates a mean far better than random points: their error
    # here is about 0.785 / sqrt(1024) = 0.025.
    f = lambda p: np.prod(1 + (p - 0.5), axis=1)  # noqa: E731  (mean 1 over the cube)
    assert abs(f(sobol(1024, 6, seed=3)).mean() - 1) < 3e-3


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, 2**32 + 1])
def test_bad_num_points_are_named(bad):
    with pytest.raises(ValueError, match="num_points"):
        sobol(bad, 2)


@pytest.mark.parametrize("bad", [0, MAX_DIMENSIONS + 1])
def test_bad_dimensions_are_named(bad):
    with pytest.raises(ValueError, match="dimensions"):
        sobol(4, bad)
