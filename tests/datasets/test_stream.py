import numpy as np
import pytest

from jaxgd import fit, solve, stability, sweep
from jaxgd.data.statistics import accumulate
from jaxgd.datasets import csv_blocks, npy_blocks


@pytest.fixture
def big(tmp_path):
    """A file 20 times larger than the block size used to read it."""
    rng = np.random.default_rng(5)
    X = 10 + 3 * rng.standard_normal((2000, 3))
    y = X @ [0.5, -1.0, 2.0] + 4 + rng.standard_normal(2000)
    path = tmp_path / "data.npy"
    np.save(path, np.c_[X, y])
    return path, X, y


def test_streamed_statistics_train_like_the_data_in_memory(big):
    # Both paths form the moments in float64 (one block vs 20 merged blocks): they agree to
    # ~1e-15, which float32 training cannot see beyond an ulp: rtol 1e-6.
    path, X, y = big
    stats = accumulate(npy_blocks(path, block_rows=100))
    assert int(stats.n) == 2000
    for engine in ("eigen", "gram"):  # auto picks eigen for plain gradient descent
        streamed = sweep(stats, None, learning_rates=[0.001, 0.01], num_steps=300,
                         engine="auto" if engine == "eigen" else engine)
        memory = sweep(X, y, learning_rates=[0.001, 0.01], num_steps=300, engine=engine)
        assert streamed.engine == memory.engine == engine
        np.testing.assert_allclose(streamed.losses, memory.losses, rtol=1e-6)
        one = fit(stats, None, learning_rate=0.01, num_steps=300, engine=engine)
        np.testing.assert_allclose(one.losses, memory.losses[1], rtol=1e-6)
    assert one.optimal_loss == pytest.approx(solve(X, y).loss, rel=1e-10)
    assert stability(stats).max_learning_rate == pytest.approx(
        stability(X).max_learning_rate, rel=1e-10)
    ridge = solve(stats, l2=0.5)
    np.testing.assert_allclose(ridge.params.weight, solve(X, y, l2=0.5).params.weight,
                               rtol=1e-9)


def test_csv_blocks_match_npy_blocks(big, tmp_path):
    path, X, y = big
    csv = tmp_path / "data.csv"
    lines = ["a,b,c,target"] + [",".join(map(repr, row)) for row in np.c_[X, y].tolist()]
    csv.write_text("\n".join(lines) + "\n")
    from_csv = accumulate(csv_blocks(csv, ["a", "b", "c"], "target", block_rows=128))
    from_npy = accumulate(npy_blocks(path, block_rows=128))
    for a, b in zip(from_csv, from_npy, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_stream_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no \.npy file at"):
        npy_blocks(tmp_path / "none.npy")  # checked at the call, before any block is read
    np.save(tmp_path / "flat.npy", np.arange(5.0))
    with pytest.raises(ValueError, match="must hold a 2-D array of real numbers"):
        next(npy_blocks(tmp_path / "flat.npy"))
    np.save(tmp_path / "text.npy", np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="must hold a 2-D array of real numbers"):
        next(npy_blocks(tmp_path / "text.npy"))
    np.save(tmp_path / "narrow.npy", np.ones((4, 2)))
    with pytest.raises(ValueError, match="has 2 columns: no column 5"):
        next(npy_blocks(tmp_path / "narrow.npy", features=[5]))
    bad = np.ones((300, 2))
    bad[250, 0] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(ValueError, match="NaN or infinite value in row 250"):
        list(npy_blocks(tmp_path / "nan.npy", block_rows=100))
    with pytest.raises(ValueError, match="y must be None"):
        fit(accumulate(npy_blocks(tmp_path / "narrow.npy")), np.ones(4), learning_rate=0.1,
            num_steps=3)
    with pytest.raises(ValueError, match="gram or eigen engine only"):
        fit(accumulate(npy_blocks(tmp_path / "narrow.npy")), None, learning_rate=0.1,
            num_steps=3, engine="direct")


def test_npy_files_that_are_not_what_they_seem_are_named(tmp_path):
    np.save(tmp_path / "complex.npy", np.ones((4, 2), complex))
    with pytest.raises(ValueError, match=r"real numbers, got shape \(4, 2\) and dtype complex"):
        next(npy_blocks(tmp_path / "complex.npy"))  # not silently cut to the real part
    (tmp_path / "text.npy").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"is not a \.npy file .* with b'a,b\\n1,'"):
        next(npy_blocks(tmp_path / "text.npy"))
    np.save(tmp_path / "whole.npy", np.ones((100, 3)))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "whole.npy").read_bytes()[:500])
    with pytest.raises(ValueError, match="is truncated or damaged"):
        next(npy_blocks(tmp_path / "cut.npy"))
