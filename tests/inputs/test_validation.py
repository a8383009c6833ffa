import numpy as np
import pytest

import jaxgd
from jaxgd import fit, sweep

X_OK, Y_OK = np.array([[1.0], [2.0], [3.0]]), np.array([1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    ("X", "y", "error", "message"),
    [
        (np.array([1.0, 2.0, 3.0]), Y_OK, ValueError, r"X must be 2-D .* got shape \(3,\)"),
        (X_OK, Y_OK[:, None], ValueError, r"y must be 1-D .* got shape \(3, 1\)"),
        (X_OK, Y_OK[:2], ValueError, "X has 3 rows but y has 2"),
        (np.zeros((0, 1)), np.zeros(0), ValueError, "the data are empty"),
        (np.zeros((3, 0)), Y_OK, ValueError, "X has no feature columns"),
        (np.array([[1.0], [np.nan], [np.inf]]), Y_OK, ValueError,
         "X has NaN or infinite values in rows 1, 2"),
        (X_OK, np.array([1.0, np.nan, 3.0]), ValueError, "y has NaN or infinite values in rows 1"),
        (np.array([["a"], ["b"], ["c"]]), Y_OK, TypeError, "X must hold numbers"),
        ("abc", Y_OK, TypeError, "X must be an array of numbers, got a string"),
        (X_OK, np.array([1 + 1j, 2, 3]), TypeError, "y must hold real numbers"),
    ],
)
def test_bad_data_is_named(X, y, error, message):
    with pytest.raises(error, match=message):
        fit(X, y, learning_rate=0.1, num_steps=5)
    with pytest.raises(error, match=message):
        sweep(X, y, learning_rates=[0.1], num_steps=5)


def test_many_bad_rows_are_listed_with_a_count():
    X = np.full((30, 1), np.nan)
    with pytest.raises(ValueError, match=r"rows 0, 1, .*, 9, \.\.\. \(20 more\)"):
        fit(X, np.zeros(30), learning_rate=0.1, num_steps=5)


@pytest.mark.parametrize("rate", [0.0, -1.0, np.nan, np.inf])
def test_learning_rate_must_be_finite_and_positive(rate):
    with pytest.raises(ValueError, match="learning_rate must be finite and positive"):
        fit(X_OK, Y_OK, learning_rate=rate, num_steps=5)
    with pytest.raises(ValueError, match=r"learning_rates must be finite and positive.*index 1"):
        sweep(X_OK, Y_OK, learning_rates=[0.1, rate], num_steps=5)


def test_num_steps_beyond_int32_is_refused_naming_it():
    # It used to raise OverflowError from inside JAX.
    with pytest.raises(ValueError, match=r"num_steps must be <= 2147483647 \(the loop counts "
                                         r"its steps in int32\), got 1000000000000"):
        fit(X_OK, Y_OK, learning_rate=0.1, num_steps=10**12)
    with pytest.raises(ValueError, match="num_steps must be <= 2147483647"):
        sweep(X_OK, Y_OK, learning_rates=[0.1], num_steps=2**31)
    with pytest.raises(ValueError, match=r"epochs × ceil\(n / batch_size\) must be <= "):
        fit(X_OK, Y_OK, learning_rate=0.1, batches=jaxgd.MiniBatches(batch_size=1, epochs=2**30))


def test_other_bad_arguments():
    with pytest.raises(TypeError, match="learning_rate must be a number, got str"):
        fit(X_OK, Y_OK, learning_rate="0.1", num_steps=5)
    with pytest.raises(ValueError, match="learning_rates is empty"):
        sweep(X_OK, Y_OK, learning_rates=[], num_steps=5)
    with pytest.raises(ValueError, match="learning_rates must be 1-D"):
        sweep(X_OK, Y_OK, learning_rates=[[0.1]], num_steps=5)
    for steps in (0, -3):
        with pytest.raises(ValueError, match=f"num_steps must be >= 1, got {steps}"):
            fit(X_OK, Y_OK, learning_rate=0.1, num_steps=steps)
    with pytest.raises(TypeError, match="num_steps must be an integer"):
        fit(X_OK, Y_OK, learning_rate=0.1, num_steps=2.5)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        fit(X_OK, Y_OK, learning_rate=0.1, num_steps=5, seed=-1)
    with pytest.raises(ValueError, match="seeds is empty"):
        sweep(X_OK, Y_OK, learning_rates=[0.1], num_steps=5, seeds=[])
    with pytest.raises(ValueError, match="init_scale must be finite and >= 0"):
        fit(X_OK, Y_OK, learning_rate=0.1, num_steps=5, init=-1.0)
    with pytest.raises(ValueError, match="divergence_factor must be > 1"):
        fit(X_OK, Y_OK, learning_rate=0.1, num_steps=5,
            stopping=jaxgd.Stopping(divergence_factor=0.5))
    with pytest.raises(ValueError, match="patience must be >= 1"):
        fit(X_OK, Y_OK, learning_rate=0.1, num_steps=5, stopping=jaxgd.Stopping(patience=0))


def test_diverging_learning_rate_is_a_result_not_an_error():
    result = fit(X_OK, Y_OK, learning_rate=10.0, num_steps=50)
    assert bool(result.diverged) and int(result.diverged_step) > 0


def test_zero_dimensional_arrays_are_numbers():
    import jax.numpy as jnp

    result = fit(X_OK, Y_OK, learning_rate=jnp.float32(0.1), num_steps=np.int64(5),
                 seed=jnp.int32(3), l2=np.array(0.0))
    assert result.losses.shape == (5,)
    with pytest.raises(TypeError, match="learning_rate must be a number"):
        fit(X_OK, Y_OK, learning_rate=np.array([0.1]), num_steps=5)


def test_seeds_and_grid_axes_must_be_lists():
    from jaxgd import grid_sweep

    with pytest.raises(ValueError, match="seeds must be a list of seeds"):
        sweep(X_OK, Y_OK, learning_rates=[0.1], num_steps=5, seeds=3)
    with pytest.raises(ValueError, match=r"grid\['seed'\] must be a list of values"):
        grid_sweep(X_OK, Y_OK, grid={"seed": 1}, learning_rate=0.1, num_steps=5)
    with pytest.raises(ValueError, match="a batch_seed axis needs mini-batch SGD"):
        grid_sweep(X_OK, Y_OK, grid={"batch_seed": [0, 1]}, learning_rate=0.1, num_steps=5)


def test_missing_targets_and_bad_optimizer_factories_are_named():
    X = np.array([[1.0], [2.0], [3.0]])
    with pytest.raises(TypeError, match="y is required"):
        fit(X, None, learning_rate=0.1, num_steps=5)
    with pytest.raises(TypeError, match="y is required"):
        jaxgd.solve(X)
    with pytest.raises(TypeError, match="returned int"):
        fit(X, np.arange(3.0), learning_rate=0.1, num_steps=5, optimizer=lambda lr: 5)


def test_accumulate_names_the_block_and_rows_of_bad_data():
    from jaxgd.data.statistics import accumulate

    good = (np.ones((3, 2)), np.zeros(3))
    bad_value = (np.array([[1.0, 2.0], [np.nan, 1.0]]), np.zeros(2))
    with pytest.raises(ValueError, match=r"block 1 \(rows 3–4\): NaN or infinite values in row"):
        accumulate([good, bad_value])
    with pytest.raises(ValueError, match=r"block 1 .*3 feature columns, earlier blocks had 2"):
        accumulate([good, (np.ones((2, 3)), np.zeros(2))])
    with pytest.raises(ValueError, match=r"block 0 .*X has 3 rows but y has 2"):
        accumulate([(np.ones((3, 2)), np.zeros(2))])
