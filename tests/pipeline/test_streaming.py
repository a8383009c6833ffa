"""Mini-batch SGD streamed from files: batch order, agreement with an independent NumPy SGD and
with full-batch descent, determinism, one order per sweep, CSV handling and bad input."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import jaxgd
from jaxgd import fit, grid_sweep, sweep
from jaxgd.api.settings import group
from jaxgd.data.statistics import accumulate
from jaxgd.datasets import csv_blocks, csv_rows, npy_rows
from jaxgd.inputs import frames
from jaxgd.pipeline import streaming
from tests.ulps import assert_close_ulps

N, BLOCK, D = 1000, 128, 3  # the file is ~8 blocks: every batch order crosses blocks


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(11)
    X = rng.standard_normal((N, D))
    y = X @ [1.0, -2.0, 0.5] + 3.0 + 0.3 * rng.standard_normal(N)
    path = tmp_path_factory.mktemp("streaming") / "rows.npy"
    np.save(path, np.c_[X, y])
    return path, X, y


@pytest.fixture
def reads(monkeypatch):
    """Every (step, batch_size) the host is asked for, in order."""
    asked = []
    batch = streaming.BatchReader.batch

    def recording(self, step, batch_size):
        asked.append((int(step), int(batch_size)))
        return batch(self, step, batch_size)

    monkeypatch.setattr(streaming.BatchReader, "batch", recording)
    return asked


def numpy_sgd(X, y, learning_rate, batch_size, epochs, batch_seed=0):
    """Plain float64 mini-batch SGD from zeros, in the documented batch order: per epoch
    ``epoch_order`` cut into batches of ``batch_size``, the last one partial."""
    n, d = X.shape
    w, b = np.zeros(d), 0.0
    losses, epoch_losses = [], []
    for epoch in range(epochs):
        epoch_losses.append(np.mean((X @ w + b - y) ** 2))
        order = streaming.epoch_order(batch_seed, epoch, n, BLOCK)
        for start in range(0, n, batch_size):
            rows = order[start:start + batch_size]
            residual = X[rows] @ w + b - y[rows]
            losses.append(np.mean(residual**2))
            w = w - learning_rate * 2 * X[rows].T @ residual / rows.size
            b = b - learning_rate * 2 * residual.mean()
    epoch_losses.append(np.mean((X @ w + b - y) ** 2))
    return w, b, np.array(losses), np.array(epoch_losses)


def test_every_row_once_per_epoch_in_a_block_wise_shuffle(data, reads):
    path, X, y = data
    n_blocks = -(-N // BLOCK)
    orders = [streaming.epoch_order(7, epoch, N, BLOCK) for epoch in range(3)]
    for order in orders:
        assert sorted(order.tolist()) == list(range(N))  # each row exactly once
        # Block-wise: the epoch visits whole blocks one after another, in a shuffled order.
        blocks = order // BLOCK
        changes = np.flatnonzero(np.diff(blocks)) + 1
        assert changes.size == n_blocks - 1 and sorted(blocks[np.r_[0, changes]]) == list(
            range(n_blocks))
    assert not np.array_equal(orders[0], orders[1])  # a new order every epoch
    # The host reads exactly these batches: the epoch's order cut into batches of 96 (the
    # last of each epoch holds the 1000 mod 96 = 40 left over), each sorted into file order.
    with npy_rows(path, block_rows=BLOCK).open() as rows:
        reader = streaming.BatchReader(rows, 7, np.float64)
        for epoch in range(3):
            seen = []
            for index in range(11):
                Xb, yb, real = reader.batch(epoch * 11 + index, 96)
                expected = np.sort(orders[epoch][index * 96:(index + 1) * 96])
                assert real.sum() == expected.size == (40 if index == 10 else 96)
                np.testing.assert_array_equal(Xb[real], X[expected])
                np.testing.assert_array_equal(yb[real], y[expected])
                assert not Xb[~real].any()
                seen.extend(expected.tolist())
            assert sorted(seen) == list(range(N))
        Xb, _, _ = reader.batch(3, 96)  # random access: any step again gives its batch
        np.testing.assert_array_equal(Xb, X[np.sort(orders[0][288:384])])


def test_streamed_sgd_equals_an_independent_numpy_sgd(data, reads):
    path, X, y = data
    result = fit(npy_rows(path, block_rows=BLOCK), None, learning_rate=0.05,
                 batches=jaxgd.MiniBatches(batch_size=96, epochs=4),
                 init=0.0)
    w, b, losses, epoch_losses = numpy_sgd(X, y, 0.05, 96, 4)
    assert result.losses.shape == (44,) and result.engine == "direct"
    assert reads == [(step, 96) for step in range(44)]  # one read per step, in order
    # float32 against float64: each step's batch loss and update carry a few float32
    # roundings (eps 6e-8 relative) and SGD on this well-conditioned problem contracts
    # errors rather than growing them: the 44 batch losses agree to ~1.5e-6 (measured), so
    # rtol 2e-5 leaves room without letting a wrong batch through (another batch of these
    # rows changes a batch loss by several percent). The epoch losses come from the gram
    # formula, whose float32 terms are as large as var(y) ≈ 14: 16 ulps of var(y) absolute.
    atol = 16 * np.finfo(np.float32).eps * np.var(y)
    np.testing.assert_allclose(result.losses, losses, rtol=2e-5)
    np.testing.assert_allclose(result.epoch_losses, epoch_losses, rtol=2e-5, atol=atol)
    np.testing.assert_allclose(result.params.weight, w, rtol=2e-5, atol=1e-6)
    assert float(result.params.bias) == pytest.approx(b, rel=2e-5)
    assert float(result.final_loss) == pytest.approx(epoch_losses[-1], rel=2e-5, abs=atol)
    assert result.optimal_loss == pytest.approx(jaxgd.solve(X, y).loss, rel=1e-10)
    assert 0 < float(result.gap) < 0.05 * result.optimal_loss  # near the optimum after 4 epochs


def test_batch_size_n_is_full_batch_descent(data):
    path, X, y = data
    full = fit(X, y, learning_rate=0.1, num_steps=30, engine="direct")
    streamed = fit(npy_rows(path, block_rows=BLOCK), None, learning_rate=0.1,
                   batches=jaxgd.MiniBatches(batch_size=N, epochs=30))
    # One batch of every row, in file order: the direct engine's steps, in another program
    # (a step per call, fed from the host, against one scan), which XLA may sum in another
    # order by what the CPU vectorizes (bit for bit on some CPUs): within 64 ulps, as
    # test_minibatch's full batch (30 stable steps: a bias of an ulp at every step moves
    # them by a few ulps). The convergence step exactly: the losses do not flatten out near
    # the tolerance.
    assert_close_ulps(streamed.losses, full.losses, 64)
    assert_close_ulps(streamed.params.weight, full.params.weight, 64)
    assert int(streamed.converged_step) == int(full.converged_step)
    # The loss on all the data comes from the float64 moments (gram formula): equal to the
    # direct loss to float32 rounding of its O(var y) terms, i.e. to 16 ulps of var(y).
    atol = 16 * np.finfo(np.float32).eps * np.var(y)
    np.testing.assert_allclose(streamed.epoch_losses[:-1], full.losses, rtol=1e-6, atol=atol)


def test_same_seed_same_run_and_batch_seed_picks_the_order(data, reads):
    path, _, _ = data
    source = npy_rows(path, block_rows=BLOCK)
    options = {"learning_rate": 0.05, "batches": jaxgd.MiniBatches(batch_size=100, epochs=2)}
    first, again = fit(source, None, **options), fit(source, None, **options)
    np.testing.assert_array_equal(first.losses, again.losses)
    np.testing.assert_array_equal(first.params.weight, again.params.weight)
    other = {**options, "batches": jaxgd.MiniBatches(batch_size=100, epochs=2, seed=1)}
    assert not np.array_equal(first.losses, fit(source, None, **other).losses)
    # The default order is batch_seed 0 whatever the seed (one order serves every run).
    other_start = fit(source, None, seed=5, **options)
    zero = {**options, "batches": jaxgd.MiniBatches(batch_size=100, epochs=2, seed=0)}
    np.testing.assert_array_equal(other_start.losses, fit(source, None, seed=5,
                                                          **zero).losses)


def test_a_sweep_streams_one_order_for_every_run(data, reads):
    path, _, _ = data
    source = npy_rows(path, block_rows=BLOCK)
    rates = [0.01, 0.05, 0.1]
    result = sweep(source, None, learning_rates=rates, seeds=[0, 1],
                   batches=jaxgd.MiniBatches(batch_size=100, epochs=2, seed=3))
    assert reads == [(step, 100) for step in range(20)]  # once per step, not per run
    assert result.losses.shape == (3, 2, 20) and result.epoch_losses.shape == (3, 2, 3)
    for i, rate in enumerate(rates):
        for j, seed in enumerate([0, 1]):
            one = fit(source, None, learning_rate=rate, seed=seed,
                      batches=jaxgd.MiniBatches(batch_size=100, epochs=2, seed=3))
            np.testing.assert_allclose(result.losses[i, j], one.losses, rtol=1e-5)
    grid = grid_sweep(source, None, grid={"learning_rate": [0.05], "batch_seed": [3]},
                      batches=jaxgd.MiniBatches(batch_size=100, epochs=2))
    np.testing.assert_allclose(grid.losses[0, 0], result.losses[1, 0], rtol=1e-5)
    with pytest.raises(ValueError, match="a batch_seed axis may hold one value only"):
        grid_sweep(source, None, grid={"learning_rate": [0.05], "batch_seed": [3, 4]},
                   batches=jaxgd.MiniBatches(batch_size=100, epochs=2))


def _csv_of(X, y, tmp_path):
    """The rows as a CSV file (columns a, b, c, target, every digit of each float64) and an
    empty folder for its temporary copy."""
    csv = tmp_path / "rows.csv"
    lines = ["a,b,c,target"] + [",".join(map(repr, row)) for row in np.c_[X, y].tolist()]
    csv.write_text("\n".join(lines) + "\n")
    temp = tmp_path / "temp"
    temp.mkdir()
    return csv, temp


def test_a_csv_file_streams_like_the_same_rows_in_a_npy_file(data, tmp_path):
    path, X, y = data
    csv, temp = _csv_of(X, y, tmp_path)
    source = csv_rows(csv, ["a", "b", "c"], "target", block_rows=BLOCK, temp_dir=temp)
    options = {"learning_rate": 0.05, "batches": jaxgd.MiniBatches(batch_size=96, epochs=2)}
    from_csv = fit(source, None, **options)
    from_npy = fit(npy_rows(path, block_rows=BLOCK), None, **options)
    np.testing.assert_array_equal(from_csv.losses, from_npy.losses)  # the same float64 rows
    np.testing.assert_array_equal(from_csv.params.weight, from_npy.params.weight)
    assert list(temp.iterdir()) == []  # the temporary copy is gone after the run
    # Without batch_size a RowSource trains on its moments, as accumulate(...) does.
    full = fit(source, None, learning_rate=0.05, num_steps=50)
    stats = fit(accumulate(csv_blocks(csv, ["a", "b", "c"], "target")), None,
                learning_rate=0.05, num_steps=50)
    assert full.engine == stats.engine == "eigen"
    np.testing.assert_allclose(full.losses, stats.losses, rtol=1e-6)


def test_rescaled_rows_train_like_rescaled_arrays(data):
    path, X, y = data
    source = npy_rows(path, block_rows=BLOCK).rescaled([10.0, 1.0, 1.0], 2.0)
    streamed = fit(source, None, learning_rate=0.002,
                   batches=jaxgd.MiniBatches(batch_size=N, epochs=5))
    memory = fit(X * [10.0, 1.0, 1.0], 2.0 * y, learning_rate=0.002, num_steps=5,
                 engine="direct")
    # The same steps in another program (as test_batch_size_n_is_full_batch_descent): a
    # few ulps; a wrong scale would be off by far more.
    assert_close_ulps(streamed.losses, memory.losses, 64)


def test_streamed_minibatch_bad_input(data, tmp_path):
    path, _, _ = data
    source = npy_rows(path, block_rows=BLOCK)
    with pytest.raises(ValueError, match=r"batch_size must be <= the number of rows \(1000\)"):
        fit(source, None, learning_rate=0.1, batches=jaxgd.MiniBatches(batch_size=1001, epochs=1))
    with pytest.raises(ValueError, match="y must be None"):
        fit(source, np.ones(N), learning_rate=0.1,
            batches=jaxgd.MiniBatches(batch_size=10, epochs=1))
    with pytest.raises(ValueError, match="mini-batch SGD needs engine='direct'"):
        fit(source, None, learning_rate=0.1, batches=jaxgd.MiniBatches(batch_size=10, epochs=1),
            engine="gram")
    with pytest.raises(ValueError, match="engine='direct' computes the loss from the rows"):
        fit(source, None, learning_rate=0.1, num_steps=3, engine="direct")
    with pytest.raises(ValueError, match="refine= differentiates through the run"):
        grid_sweep(source, None, sample=jaxgd.Sample({"learning_rate": ("log", 0.01, 0.1)}, 2),
                   refine={"top": 1}, batches=jaxgd.MiniBatches(batch_size=10, epochs=1))
    with pytest.raises(FileNotFoundError, match=r"no \.npy file at"):
        npy_rows(tmp_path / "none.npy")
    with pytest.raises(FileNotFoundError, match="no CSV file at"):
        csv_rows(tmp_path / "none.csv", "a", "b")
    np.save(tmp_path / "text.npy", np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="must hold a 2-D array of real numbers"):
        npy_rows(tmp_path / "text.npy")
    with pytest.raises(ValueError, match="has 4 columns: no column 5"):
        npy_rows(path, features=[5])
    bad = np.ones((300, 2))
    bad[250, 0] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(ValueError, match="NaN or infinite value in row 250"):
        fit(npy_rows(tmp_path / "nan.npy", block_rows=100), None, learning_rate=0.1,
            batches=jaxgd.MiniBatches(batch_size=10, epochs=1))


GOOD_ROWS = "".join(f"{i},{2 * i}\n" for i in range(50))  # blocks copied before the error


def test_the_temporary_copy_of_a_csv_file_never_has_a_name(data, tmp_path):
    """Nothing to leave behind even when the process is killed while the copy is in use."""
    _, X, y = data
    csv, temp = _csv_of(X, y, tmp_path)
    with csv_rows(csv, ["a", "b", "c"], "target", block_rows=BLOCK,
                  temp_dir=temp).open() as rows:
        assert list(temp.iterdir()) == []  # in use, and already nameless
        got_X, got_y = rows.read(0, rows.n)
    np.testing.assert_array_equal(got_X, X)
    np.testing.assert_array_equal(got_y, y)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a,b\n" + GOOD_ROWS + "3\n", "line 52: 1 fields but the header has 2"),
        ("a,b\n" + GOOD_ROWS + "3,oops\n", "line 52, column 'b': 'oops' is not a finite"),
        ("a,b\n", "has no rows"),
        ("a,b\n" + GOOD_ROWS, r"batch_size must be <= the number of rows \(50\)"),
    ],
)
def test_a_bad_csv_file_is_named_and_leaves_no_temporary_copy(tmp_path, text, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    temp = tmp_path / "temp"
    temp.mkdir()
    with pytest.raises(ValueError, match=match):
        fit(csv_rows(path, "a", "b", block_rows=8, temp_dir=temp), None, learning_rate=0.1,
            batches=jaxgd.MiniBatches(batch_size=100, epochs=1))
    assert list(temp.iterdir()) == []


SHARDED = textwrap.dedent("""
    import json, sys
    import jax, numpy as np, jaxgd
    from jaxgd.pipeline import streaming
    reads = []
    batch = streaming.BatchReader.batch
    streaming.BatchReader.batch = lambda self, s, b: reads.append(int(s)) or batch(self, s, b)
    source = jaxgd.datasets.npy_rows(sys.argv[1], block_rows=128)
    rates = [0.01, 0.02, 0.05, 0.1]
    batches = jaxgd.MiniBatches(batch_size=100, epochs=2)
    four = jaxgd.sweep(source, None, learning_rates=rates, batches=batches)
    spans = len(four.losses.sharding.device_set)
    one = jaxgd.sweep(source, None, learning_rates=rates, batches=batches,
                      placement=jaxgd.Placement(sharding="none"))
    print(json.dumps({"devices": jax.device_count(), "spans": spans, "reads": reads,
                      "close": bool(np.allclose(four.losses, one.losses, rtol=1e-5))}))
""")


def test_a_sweep_sharded_over_devices_reads_each_batch_once(data):
    path, _, _ = data
    env = {**os.environ, "JAX_PLATFORMS": "cpu",  # host devices, also on a GPU machine
           "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run([sys.executable, "-c", SHARDED, str(path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["devices"] == 4 and out["spans"] == 4 and out["close"]
    # The callback's operands are replicated: XLA runs it once per step for all 4 devices.
    assert out["reads"] == list(range(20)) * 2  # the sharded sweep, then the unsharded one


# Names: a CSV file's header names reach the results, as an in-memory DataFrame's do.
NAMED = ["c", "a"]  # not the header's order: the weights follow the chosen order


@pytest.fixture(scope="module")
def named_csv(data, tmp_path_factory):
    """The rows as a CSV file whose header has the target first, a text column and the
    features out of order; and the same file read into memory by pandas."""
    import pandas as pd

    _, X, y = data
    path = tmp_path_factory.mktemp("names") / "named.csv"
    lines = ["target,a,label,b,c"] + [f"{t!r},{a!r},row{i},{b!r},{c!r}" for i, (a, b, c, t)
                                      in enumerate(np.c_[X, y].tolist())]
    path.write_text("\n".join(lines) + "\n")
    return path, pd.read_csv(path)


def _named_runs(entry, X, y, **options):
    options = group(options)  # the old flat spellings, grouped here
    if entry == "fit":
        return fit(X, y, learning_rate=0.05, **options)
    if entry == "sweep":
        return sweep(X, y, learning_rates=[0.05, 0.02], **options)
    return grid_sweep(X, y, grid={"learning_rate": [0.05, 0.02], "seed": [0, 1]}, **options)


@pytest.mark.parametrize("entry", ["fit", "sweep", "grid_sweep"])
@pytest.mark.parametrize("path", ["moments", "batches"])
def test_a_csv_header_names_the_results_as_a_dataframe_does(named_csv, entry, path):
    csv, frame = named_csv
    source = csv_rows(csv, NAMED, "target", block_rows=BLOCK)
    # The streamed runs hold out the DataFrame's rows, its columns in X's order: the file's
    # chosen columns are X's names, as a DataFrame's are, so the table is accepted (the
    # test below refuses them in another order). The training runs are those without.
    held = {"validation": (frame[NAMED], frame["target"])}
    if path == "moments":  # full-batch descent on the file's sufficient statistics
        streamed = _named_runs(entry, source, None, num_steps=40, **held)
        memory = _named_runs(entry, frame[NAMED], frame["target"], num_steps=40)
    else:  # mini-batch SGD reading its batches from the file; batch_size = n is full-batch
        streamed = _named_runs(entry, source, None, batch_size=N, epochs=40, **held)
        memory = _named_runs(entry, frame[NAMED], frame["target"], num_steps=40,
                             engine="direct")
    in_memory = jaxgd.datasets.load_csv(csv, NAMED, "target")
    assert streamed.feature_names == memory.feature_names == in_memory.feature_names == (
        "c", "a")
    assert streamed.validation_losses is not None
    assert streamed.target_name == memory.target_name == in_memory.target_name == "target"
    by_name, expected = streamed.named_params(), memory.named_params()
    assert list(by_name["weight"]) == list(expected["weight"]) == NAMED
    # The same float64 rows (pandas parses them to the same values as the csv reader) go
    # to the same engine (eigen on the moments, direct for batch_size = n): measured
    # identical in float32 on CPU. rtol 1e-5 (~80 float32 ulps) leaves room for another
    # backend's summation order over 40 contracting steps; a swapped pair of names
    # (weights ~0.5 and ~1.0) is off by 50%.
    for name in NAMED:
        np.testing.assert_allclose(by_name["weight"][name], expected["weight"][name],
                                   rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(by_name["bias"], expected["bias"], rtol=1e-5)


def test_a_csv_header_names_a_shuffled_minibatch_run(data, named_csv):
    # batch_size < n: the batches come in the file's block-wise order, so the in-memory
    # reference is the independent NumPy SGD in that order, on the DataFrame's columns.
    _, frame = named_csv
    source = csv_rows(named_csv[0], NAMED, "target", block_rows=BLOCK)
    result = fit(source, None, learning_rate=0.05,
                 batches=jaxgd.MiniBatches(batch_size=96, epochs=4), init=0.0)
    w, b, _, _ = numpy_sgd(frame[NAMED].to_numpy(), frame["target"].to_numpy(), 0.05, 96, 4)
    assert (result.feature_names, result.target_name) == (("c", "a"), "target")
    named = result.named_params()
    for i, name in enumerate(NAMED):  # the tolerances of the NumPy SGD test above
        assert named["weight"][name] == pytest.approx(w[i], rel=2e-5, abs=1e-6)
    assert named["bias"] == pytest.approx(b, rel=2e-5)


@pytest.mark.parametrize("entry", ["fit", "sweep", "grid_sweep"])
@pytest.mark.parametrize("path", ["moments", "batches"])
def test_validation_tables_are_checked_against_a_csv_header_as_against_a_dataframe(
        named_csv, entry, path):
    # The file's chosen columns are X's names, as a DataFrame's are: a validation table
    # with them in another order would be matched by position to the wrong weights. (The
    # test above runs each of these with the table in X's order: accepted.)
    csv, frame = named_csv
    source = csv_rows(csv, NAMED, "target", block_rows=BLOCK)
    assert frames.names_of(source, None) == (("c", "a"), "target")
    options = ({"num_steps": 3} if path == "moments" else {
        "batches": jaxgd.MiniBatches(batch_size=100, epochs=1), "engine": "direct"})
    swapped = (frame[["a", "c"]], frame["target"])
    for X, y in ((frame[NAMED], frame["target"]), (source, None)):
        with pytest.raises(ValueError, match=re.escape(
                "validation: X_val has columns ('a', 'c'), X has ('c', 'a')")):
            _named_runs(entry, X, y, validation=swapped, **options)


def test_a_npy_file_has_no_names_and_rescaling_keeps_them(data, named_csv):
    path, _, _ = data
    npy = npy_rows(path, block_rows=BLOCK)
    assert npy.feature_names is None and npy.target_name is None
    for options in ({"num_steps": 3}, {"batches": jaxgd.MiniBatches(500, epochs=1)}):
        result = fit(npy, None, learning_rate=0.05, **options)
        assert result.feature_names is None and result.target_name is None
        assert list(result.named_params()["weight"]) == ["x0", "x1", "x2"]
    source = csv_rows(named_csv[0], NAMED, "target").rescaled([2.0, 1.0])
    assert (source.feature_names, source.target_name) == (("c", "a"), "target")


FLOAT64_NAMES = textwrap.dedent("""
    import json, sys
    import numpy as np, pandas as pd, jaxgd
    from jaxgd.datasets import csv_rows
    path, names = sys.argv[1], sys.argv[2].split(",")
    frame, source = pd.read_csv(path), csv_rows(path, names, "target", block_rows=128)
    out = {}
    for route, streamed, memory in [
        ("moments", {"num_steps": 40}, {"num_steps": 40}),
        ("batches", {"batches": jaxgd.MiniBatches(len(frame), epochs=40)},
         {"num_steps": 40, "engine": "direct"}),
    ]:
        a = jaxgd.fit(source, None, learning_rate=0.05, **streamed)
        b = jaxgd.fit(frame[names], frame["target"], learning_rate=0.05, **memory)
        pa, pb = a.named_params(), b.named_params()
        out[route] = {
            "names": [list(a.feature_names), a.target_name],
            "dtype": str(a.params.weight.dtype),
            "weights": [[pa["weight"][n], pb["weight"][n]] for n in pb["weight"]],
            "biases": [pa["bias"], pb["bias"]],
        }
    print(json.dumps(out))
""")


def test_a_csv_header_names_float64_results_as_a_dataframe_does(named_csv):
    # JAX_ENABLE_X64 for the whole process: float64 from the file to the weights.
    env = {**os.environ, "JAX_ENABLE_X64": "1"}
    done = subprocess.run([sys.executable, "-c", FLOAT64_NAMES, str(named_csv[0]),
                           ",".join(NAMED)], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    for route, found in json.loads(done.stdout.splitlines()[-1]).items():
        assert found["names"] == [NAMED, "target"] and found["dtype"] == "float64", route
        # float64 (eps 2.2e-16): the moments merged block by block and the DataFrame's
        # differ in their last bits (measured 6e-16 relative after 40 steps, 0 for the
        # batches, both direct); 1e-12 leaves a wide margin and is still 7 orders below
        # the float32 tolerance above.
        for streamed, memory in [*found["weights"], found["biases"]]:
            assert streamed == pytest.approx(memory, rel=1e-12), route


def test_streamed_minibatch_under_a_thread_local_x64_context_is_refused(tmp_path):
    # `with jax.enable_x64(True):` holds in its own thread only; the batch callback may run on
    # one of XLA's, where JAX read the float64 batch as a float32 output and failed mid-run
    # (at 200 rows; 40 rows ran inline and passed). Refused up front at any size, with the fix.
    import jax

    rows = np.linspace(-1.0, 1.0, 200)
    path = tmp_path / "d.csv"
    path.write_text("x,y\n" + "".join(f"{float(a)!r},{float(2 * a + 3)!r}\n" for a in rows))
    for n in (40, 200):
        source = csv_rows(path, "x", "y", block_rows=128)
        with jax.enable_x64(True), pytest.raises(ValueError, match="JAX_ENABLE_X64=1"):
            fit(source, None, learning_rate=0.1, batches=jaxgd.MiniBatches(batch_size=n, epochs=1))
    # Without the context (float32 here) the same run goes through.
    r = fit(csv_rows(path, "x", "y", block_rows=128), None, learning_rate=0.1,
            batches=jaxgd.MiniBatches(batch_size=40, epochs=1))
    assert r.losses.shape == (5,)
