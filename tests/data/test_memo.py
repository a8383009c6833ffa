"""The per-data memo of host work (jaxgd.data.memo): reused for the same content, never stale."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd import solve, sweep
from jaxgd.data import memo
from tests.conftest import well_conditioned


@pytest.fixture(autouse=True)
def empty_memo():
    memo.clear()
    yield
    memo.clear()


def test_same_content_is_computed_once_and_other_content_again():
    calls = []
    work = lambda: calls.append(1) or len(calls)  # noqa: E731
    X = np.arange(6.0).reshape(3, 2)
    assert memo.cached("k", [X, None], work) == 1
    assert memo.cached("k", [X.copy(), None], work) == 1  # another array, same bytes
    assert memo.cached("other kind", [X, None], work) == 2
    assert memo.cached("k", [X.astype(np.float32), None], work) == 3  # dtype is content
    assert memo.cached("k", [X.reshape(2, 3), None], work) == 4  # so is the shape
    X[1, 1] = -1.0  # mutated in place: a new key
    assert memo.cached("k", [X, None], work) == 5


def test_large_or_foreign_data_are_not_kept():
    big = np.zeros(memo.MAX_BYTES // 8 + 1)
    assert memo.content_key([big]) is None
    assert memo.content_key([[1.0, 2.0]]) is None  # a list: not hashed, not kept
    calls = []
    for _ in range(2):
        memo.cached("k", [big], lambda: calls.append(1))
    assert len(calls) == 2


def test_at_most_max_entries_are_kept():
    for i in range(memo.MAX_ENTRIES + 5):
        memo.cached("k", [np.full(2, float(i))], lambda: None)
    assert len(memo._cache) == memo.MAX_ENTRIES


def test_a_sweep_after_mutating_the_data_in_place_sees_the_new_data():
    # Oracle: the float64 least-squares loss of the data as they are at each call, and a
    # sweep on a fresh copy (nothing kept) for the histories.
    X, y = well_conditioned(0, n=40, d=2)
    kw = dict(learning_rates=[0.05, 0.2], num_steps=30)
    first = sweep(X, y, **kw)
    assert first.reference == pytest.approx(solve(X, y).loss, rel=1e-12)
    X[:, 0] *= 3.0  # same array object, new numbers
    y[:5] += 1.0
    second = sweep(X, y, **kw)
    assert second.reference == pytest.approx(solve(X, y).loss, rel=1e-12)
    assert second.reference != first.reference
    memo.clear()
    fresh = sweep(X.copy(), y.copy(), **kw)
    np.testing.assert_array_equal(second.losses, fresh.losses)
    np.testing.assert_array_equal(second.diverged, fresh.diverged)


def test_the_conditioning_warning_comes_on_every_call():
    X, y = well_conditioned(1, n=30, d=2)
    X = np.column_stack([X, X[:, 0]])  # linearly dependent: warned each time, memo or not
    for _ in range(2):
        with pytest.warns(RuntimeWarning, match="linearly dependent"):
            sweep(X, y, learning_rates=[0.01], num_steps=5)


def test_a_preparation_traced_in_a_jit_is_not_kept():
    # Concrete data inside the caller's jit still prepare as tracers of that trace: keeping
    # them would leak a tracer into the next call (found with the fused tests' jit and grad).
    X, y = well_conditioned(2, n=30, d=2)
    memo.clear()

    def total(rates):
        return sweep(X, y, learning_rates=rates, num_steps=5,
                     stopping=jaxgd.Stopping(reference=False)).final_loss.sum()

    rates = jnp.asarray([0.05, 0.2])
    jitted = jax.jit(total)(rates)
    grads = jax.grad(total)(rates)  # a new trace on the same data
    plain = total(np.asarray(rates))
    np.testing.assert_allclose(jitted, plain, rtol=1e-6)
    assert np.all(np.isfinite(grads))
