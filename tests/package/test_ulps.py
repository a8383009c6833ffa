"""The tests' ulp comparison (tests/ulps.py) passes what it should and fails the rest."""

import numpy as np
import pytest

from tests.ulps import assert_close_ulps, ulps_apart


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ulps_are_counted_in_the_expected_dtype(dtype):
    x = dtype(1.5)
    one, three = np.nextafter(x, dtype(2)), x + 3 * np.spacing(x)
    assert ulps_apart(one, x) == 1 and ulps_apart(three, x) == 3
    assert_close_ulps(np.array([one, x]), np.array([x, x]), ulps=1)
    with pytest.raises(AssertionError, match=r"1 of 2 entries more than 2 ulps apart.*"
                                             r"the worst, at \(1,\).*3 ulps"):
        assert_close_ulps(np.array([x, three]), np.array([x, x]), ulps=2, err_msg="losses")


def test_nan_and_infinities():
    nan, inf = np.float32(np.nan), np.float32(np.inf)
    assert_close_ulps([nan, inf, -inf, 0.0], np.array([nan, inf, -inf, 0.0], np.float32), 0)
    for actual, expected in ((nan, 1.0), (1.0, nan), (inf, -inf), (inf, 3e38)):
        with pytest.raises(AssertionError, match="more than 1000 ulps"):
            assert_close_ulps(np.float32(actual), np.float32(expected), ulps=1000)


def test_floor_counts_ulps_of_a_larger_scale():
    tiny = np.float32(1e-20)
    assert ulps_apart(2 * tiny, tiny) > 1e6  # near 0, one spacing is minute
    assert ulps_apart(2 * tiny, tiny, floor=1.0) < 1e-12
    with pytest.raises(AssertionError):
        assert_close_ulps(2 * tiny, tiny, ulps=4)
    assert_close_ulps(2 * tiny, tiny, ulps=4, floor=1.0)


def test_integers_and_shapes_must_match_exactly():
    assert_close_ulps(np.array([3, -1]), np.array([3, -1]))
    with pytest.raises(AssertionError):
        assert_close_ulps(np.array([3, -1]), np.array([4, -1]), ulps=10)
    with pytest.raises(AssertionError, match="shapes differ"):
        assert_close_ulps(np.zeros(3), np.zeros(4))
