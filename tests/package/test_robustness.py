"""Tests that try to break jaxgd: random shapes, dtypes, learning rates, seeds and step counts;
repeated calls that must not compile again. (The command line's own: tests/cli/test_runs.py.)"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jaxgd
from tests.conftest import compiles

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
# Few distinct shapes: every new one compiles a program.
ROWS, FEATURES, STEPS = (1, 5, 50), (1, 4), (1, 7, 50)


@st.composite
def problems(draw):
    """Finite data of a small shape in one of several dtypes, some of it degenerate."""
    n, d = draw(st.sampled_from(ROWS)), draw(st.sampled_from(FEATURES))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    kind = draw(st.sampled_from(["float32", "float64", "int", "constant", "tiny", "large"]))
    X = rng.standard_normal((n, d))
    y = X @ rng.standard_normal(d) + rng.standard_normal(n)
    if kind == "float32":
        X, y = X.astype(np.float32), y.astype(np.float32)
    elif kind == "int":
        X, y = np.round(3 * X).astype(np.int64), np.round(3 * y).astype(np.int32)
    elif kind == "constant":  # a constant column: the Hessian is singular
        X[:, 0] = 2.0
    elif kind == "tiny":
        X, y = X * 1e-6, y * 1e-6
    elif kind == "large":
        X, y = X * 1e3, y * 1e3
    return X, y


learning_rates = st.floats(-6, 3).map(lambda e: float(10.0**e))
seeds = st.integers(0, 2**32 - 1)
DOCUMENTED = (ValueError, TypeError)


def stable(X, rate):
    # Below 2/λmax plain gradient descent contracts; 1% of margin absorbs float32 rounding.
    return rate < 0.99 * jaxgd.stability(X).max_learning_rate


@SETTINGS
@given(problem=problems(), rate=learning_rates, seed=seeds,
       num_steps=st.sampled_from(STEPS))
def test_fit_never_breaks(problem, rate, seed, num_steps):
    X, y = problem
    result = jaxgd.fit(X, y, learning_rate=rate, num_steps=num_steps, seed=seed)
    d = X.shape[1]
    assert result.losses.shape == (num_steps,)
    assert result.params.weight.shape == (d,) and result.params.bias.shape == ()
    assert result.snapshots.weight.shape[1:] == (d,)
    assert -1 <= int(result.converged_step) < num_steps
    assert -1 <= int(result.diverged_step) <= num_steps
    assert bool(result.diverged) == (int(result.diverged_step) >= 0)
    if not bool(result.diverged):
        assert np.isfinite(result.final_loss) and np.isfinite(result.losses).all()
    if stable(X, rate):
        assert not bool(result.diverged)
        assert np.isfinite(result.params.weight).all() and np.isfinite(result.params.bias)
        assert np.isfinite(result.gap)


@SETTINGS
@given(problem=problems(), rates=st.lists(learning_rates, min_size=1, max_size=3),
       seed_list=st.one_of(st.none(), st.lists(seeds, min_size=2, max_size=2)),
       num_steps=st.sampled_from(STEPS))
def test_sweep_never_breaks(problem, rates, seed_list, num_steps):
    X, y = problem
    rates = [rates[0]] * 3 if len(rates) != 3 else rates  # one shape of grid per seed axis
    result = jaxgd.sweep(X, y, learning_rates=rates, seeds=seed_list, num_steps=num_steps)
    grid = (3,) if seed_list is None else (3, 2)
    assert result.losses.shape == (*grid, num_steps)
    assert result.final_loss.shape == result.diverged.shape == grid
    assert result.params.weight.shape == (*grid, X.shape[1])
    for index in np.ndindex(*grid):
        if stable(X, rates[index[0]]):
            assert not bool(result.diverged[index])
            assert np.isfinite(result.losses[index]).all()
    if not np.asarray(result.diverged).all():
        best = result.best()
        assert not bool(result.diverged[best]) and np.isfinite(result.final_loss[best])
    else:
        with pytest.raises(ValueError, match="every run diverged"):
            result.best()


@SETTINGS
@given(X=st.one_of(
    st.lists(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=3),
             min_size=0, max_size=4),
    st.text(max_size=3), st.none(), st.integers(), st.just([[1.0], [2.0, 3.0]])),
    rate=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3),
                   st.text(max_size=2), st.none(), st.booleans()),
    num_steps=st.one_of(st.integers(-2, 3), st.floats(0, 3), st.none()))
def test_anything_else_is_a_type_or_value_error(X, rate, num_steps):
    try:
        result = jaxgd.fit(X, [1.0] * (len(X) if isinstance(X, list) else 1),
                           learning_rate=rate, num_steps=num_steps)
    except DOCUMENTED:
        return
    assert result.losses.shape == (num_steps,)  # it was valid after all


# ------------------------------------------------------------------ recompilation

def test_repeated_fits_and_sweeps_of_one_shape_compile_once():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((37, 3)), rng.standard_normal(37)  # shapes no other test uses
    with compiles() as first:
        jaxgd.fit(X, y, learning_rate=0.1, num_steps=23)
        jaxgd.sweep(X, y, learning_rates=[0.1, 0.2], seeds=[0, 1], num_steps=23)
    assert first  # the listener hears compilations
    with compiles() as again:
        for i in range(3):
            jaxgd.fit(X + i, y - i, learning_rate=0.01 * (i + 1), num_steps=23, seed=i)
            jaxgd.sweep(X * (i + 1), y, learning_rates=[0.05 * (i + 1), 0.3], seeds=[i, 9],
                        num_steps=23)
    assert again == []
