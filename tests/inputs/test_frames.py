"""Data that keep their names: DataFrames, Series and duck-typed tables through jaxgd.

pandas is the optional extra; these tests use it directly (the test extra installs it) and
also a table that is not pandas, to check that tables are recognised by duck typing.
"""

import subprocess
import sys
import warnings

import jax
import numpy as np
import pandas as pd
import pytest

import jaxgd
from jaxgd import Standardizer, datasets, unstandardize_params
from jaxgd.inputs import frames

FEATURES = ["weight", "horsepower", "automatic"]


@pytest.fixture(scope="module")
def cars():
    """30 made-up cars: a float, a nullable integer and a boolean feature, and the target."""
    rng = np.random.default_rng(0)
    n = 30
    weight = rng.uniform(1.8, 5.0, n)
    horsepower = rng.integers(60, 230, n)
    automatic = rng.random(n) < 0.5
    mpg = 50 - 5 * weight - 0.05 * horsepower - 2 * automatic + rng.normal(0, 0.5, n)
    return pd.DataFrame({
        "weight": weight,
        "horsepower": pd.array(horsepower, dtype="Int64"),
        "automatic": automatic,
        "origin": pd.Categorical(rng.choice(["usa", "europe", "japan"], n)),
        "name": [f"car {i}" for i in range(n)],
        "mpg": mpg,
    })


class Table:
    """A table that is not pandas: ``__array__`` and ``columns``, nothing else."""

    def __init__(self, array, columns):
        self.array, self.columns = np.asarray(array), tuple(columns)

    def __array__(self, dtype=None, copy=None):
        return self.array if dtype is None else self.array.astype(dtype)


class Column:
    """One named column that is not pandas: ``__array__`` and ``name``."""

    def __init__(self, array, name):
        self.array, self.name = np.asarray(array), name

    def __array__(self, dtype=None, copy=None):
        return self.array if dtype is None else self.array.astype(dtype)


def test_fit_sweep_and_grid_keep_the_names(cars):
    X, y = cars[FEATURES], cars["mpg"]
    fitted = jaxgd.fit(X, y, learning_rate=1e-5, num_steps=3,
                       stopping=jaxgd.Stopping(reference=False))
    swept = jaxgd.sweep(X, y, learning_rates=[1e-5, 2e-5], seeds=[0, 1], num_steps=3,
                        stopping=jaxgd.Stopping(reference=False))
    grid = jaxgd.grid_sweep(X, y, grid={"learning_rate": [1e-5], "momentum": [0.0, 0.5]},
                            optimizer="momentum", num_steps=3,
                            stopping=jaxgd.Stopping(reference=False))
    for result in (fitted, swept, grid, swept.run((1, 0)), swept.as_grid(), grid.run((0, 1))):
        assert result.feature_names == tuple(FEATURES)
        assert result.target_name == "mpg"


def test_a_y_whose_index_differs_from_x_s_is_matched_by_position_with_a_warning(cars):
    # jaxgd reads numbers, not labels: a y in another row order (or of another frame)
    # pairs its rows with X's by position, which pandas itself would align by index.
    X = cars[FEATURES].astype({"horsepower": float})
    shuffled = cars["mpg"].sample(frac=1.0, random_state=0)
    calls = {
        "fit": lambda y: jaxgd.fit(X, y, learning_rate=1e-5, num_steps=3,
                                   stopping=jaxgd.Stopping(reference=False)),
        "sweep": lambda y: jaxgd.sweep(X, y, learning_rates=[1e-5], num_steps=3,
                                       stopping=jaxgd.Stopping(reference=False)),
        "grid_sweep": lambda y: jaxgd.grid_sweep(X, y, grid={"learning_rate": [1e-5]},
                                                 num_steps=3,
                                                 stopping=jaxgd.Stopping(reference=False)),
        "from_arrays": lambda y: datasets.from_arrays(X, y),
    }
    for name, call in calls.items():
        with pytest.warns(UserWarning, match=r"y's index differs from X's.*matched to X's "
                          r"rows by position") as caught:
            call(shuffled)
        assert caught[0].filename == __file__, name  # the caller's line, not jaxgd's
        with warnings.catch_warnings():  # the same index, or y without one: no word
            warnings.simplefilter("error")
            call(cars["mpg"])
            call(shuffled.to_numpy())
    # Position it is: the same numbers as y's values in their order.
    with pytest.warns(UserWarning):
        by_position = jaxgd.fit(X, shuffled, learning_rate=1e-5, num_steps=3,
                                stopping=jaxgd.Stopping(reference=False))
    plain = jaxgd.fit(X, shuffled.to_numpy(), learning_rate=1e-5, num_steps=3,
                      stopping=jaxgd.Stopping(reference=False))
    np.testing.assert_array_equal(by_position.losses, plain.losses)


def test_names_are_static_so_results_stay_pytrees(cars):
    result = jaxgd.fit(cars[FEATURES], cars["mpg"], learning_rate=1e-5, num_steps=3,
                       stopping=jaxgd.Stopping(reference=False))
    leaves = jax.tree_util.tree_leaves(result)
    assert not any(isinstance(leaf, str) for leaf in leaves)
    doubled = jax.tree_util.tree_map(lambda a: a * 2, result)
    assert doubled.feature_names == tuple(FEATURES)


@pytest.mark.filterwarnings("ignore:the features are badly conditioned")
def test_a_frame_trains_exactly_as_its_array(cars):
    # The names are the only difference: same numbers in, the same histories out, bit for bit.
    X, y = cars[FEATURES], cars["mpg"]
    array = X.to_numpy(dtype=np.float64)
    named = jaxgd.fit(X, y, learning_rate=1e-5, num_steps=20)
    plain = jaxgd.fit(array, y.to_numpy(), learning_rate=1e-5, num_steps=20)
    assert plain.feature_names is None and plain.target_name is None
    for a, b in zip(jax.tree_util.tree_leaves(named), jax.tree_util.tree_leaves(plain),
                    strict=True):
        np.testing.assert_array_equal(a, b)


def test_arrays_and_traced_data_have_no_names(cars):
    X = cars[["weight"]].to_numpy()
    y = cars["mpg"].to_numpy()
    run = jax.jit(lambda a, b: jaxgd.fit(a, b, learning_rate=0.01, num_steps=3))
    result = run(X, y)
    assert result.feature_names is None and result.target_name is None


def test_a_duck_typed_table_keeps_its_names():
    X = Table([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [4.0, 1.0]], ("size", "flag"))
    y = Column([3.0, 5.0, 7.0, 9.0], "price")
    result = jaxgd.fit(X, y, learning_rate=0.05, num_steps=5,
                       stopping=jaxgd.Stopping(reference=False))
    assert result.feature_names == ("size", "flag") and result.target_name == "price"
    assert Standardizer.fit(X).feature_names == ("size", "flag")


def test_a_duck_typed_object_table_reads_missing_values_as_nan_and_names_text():
    table = Table(np.array([[1.0, None], [2.0, 3]], dtype=object), ("a", "b"))
    np.testing.assert_array_equal(frames.to_numpy(table, "X"), [[1.0, np.nan], [2.0, 3.0]])
    with pytest.raises(TypeError, match="X column 'b' holds object"):
        frames.to_numpy(Table(np.array([[1.0, "x"]], dtype=object), ("a", "b")), "X")


def test_dtypes_of_other_libraries_are_judged_by_their_numbers():
    class Dtype:  # like polars' dtypes: no NumPy kind letter
        pass

    table = Table([[1, 2], [3, 4]], ("a", "b"))
    table.dtypes = [Dtype(), Dtype()]
    np.testing.assert_array_equal(frames.to_numpy(table, "X"), [[1, 2], [3, 4]])
    table.array = np.array([[1.0, "x"]], dtype=object)
    with pytest.raises(TypeError, match="X column 'b'"):
        frames.to_numpy(table, "X")


def test_a_series_without_a_name_gives_no_target_name(cars):
    result = jaxgd.fit(cars[FEATURES], cars["mpg"].rename(None), learning_rate=1e-5,
                       num_steps=2, stopping=jaxgd.Stopping(reference=False))
    assert result.feature_names == tuple(FEATURES) and result.target_name is None


def test_non_string_column_labels_become_strings():
    X = pd.DataFrame(np.eye(3)[:, :2], columns=[10, 20])
    result = jaxgd.fit(X, pd.Series([1.0, 2.0, 3.0], name=0), learning_rate=0.1,
                       num_steps=2, stopping=jaxgd.Stopping(reference=False))
    assert result.feature_names == ("10", "20") and result.target_name == "0"


def test_nullable_integers_are_read_and_missing_values_name_the_rows(cars):
    X = cars[FEATURES].copy()
    X.loc[[3, 17], "horsepower"] = pd.NA
    with pytest.raises(ValueError, match=r"X has NaN or infinite values in rows 3, 17"):
        jaxgd.fit(X, cars["mpg"], learning_rate=1e-5, num_steps=2)
    y = pd.Series(pd.array([1, None, 3], dtype="Int64"), name="y")
    with pytest.raises(ValueError, match=r"y has NaN or infinite values in rows 1"):
        jaxgd.fit(np.ones((3, 1)), y, learning_rate=0.1, num_steps=2)
    with pytest.raises(ValueError, match=r"columns \[1\]"):
        Standardizer.fit(X)


def test_nullable_integers_without_missing_values_train_like_floats(cars):
    as_int = jaxgd.fit(cars[["horsepower"]], cars["mpg"], learning_rate=1e-5, num_steps=5,
                       stopping=jaxgd.Stopping(reference=False))
    as_float = jaxgd.fit(cars[["horsepower"]].astype(float), cars["mpg"], learning_rate=1e-5,
                         num_steps=5, stopping=jaxgd.Stopping(reference=False))
    np.testing.assert_array_equal(as_int.losses, as_float.losses)


@pytest.mark.parametrize("column, words", [("origin", "is categorical: its codes are labels"),
                                           ("name", r"holds \w+, not numbers")])
def test_categories_and_text_are_refused_by_column(cars, column, words):
    X = cars[["weight", column]]
    with pytest.raises(TypeError, match=f"X column '{column}' {words}.*get_dummies"):
        jaxgd.fit(X, cars["mpg"], learning_rate=0.01, num_steps=2)
    with pytest.raises(TypeError, match=f"X column '{column}'"):
        Standardizer.fit(X)
    with pytest.raises(TypeError, match=f"X column '{column}'"):
        datasets.from_arrays(X, cars["mpg"])
    with pytest.raises(TypeError, match=f"y column '{column}'"):
        jaxgd.fit(cars[["weight"]], cars[column], learning_rate=0.01, num_steps=2)


def test_integer_categories_are_refused_too():
    # Codes 0, 1, 2 would pass as numbers if read through __array__: refused by dtype.
    X = pd.DataFrame({"grade": pd.Categorical([1, 2, 3, 1])})
    with pytest.raises(TypeError, match="X column 'grade' is categorical"):
        jaxgd.fit(X, np.ones(4), learning_rate=0.1, num_steps=2)


def test_booleans_are_indicators(cars):
    X = cars[["automatic"]]
    assert X.dtypes.iloc[0] == np.dtype(bool)
    np.testing.assert_array_equal(frames.to_numpy(X, "X")[:, 0],
                                  cars["automatic"].to_numpy().astype(float))
    nullable = pd.DataFrame({"b": pd.array([True, None, False], dtype="boolean")})
    np.testing.assert_array_equal(frames.to_numpy(nullable, "X"), [[1.0], [np.nan], [0.0]])


def test_float32_frames_stay_float32_and_others_become_float64():
    single = pd.DataFrame({"a": np.float32([1, 2]), "b": np.float32([3, 4])})
    assert frames.to_numpy(single, "X").dtype == np.float32
    assert frames.to_numpy(single.assign(c=[1, 2]), "X").dtype == np.float64
    assert frames.to_numpy(pd.Series(np.float32([1.0]), name="y"), "y").dtype == np.float32


def test_dataset_from_a_frame_keeps_the_names(cars):
    data = datasets.from_arrays(cars[FEATURES], cars["mpg"])
    assert data.feature_names == tuple(FEATURES) and data.target_name == "mpg"
    assert data.X.dtype == np.float64 and data.X.shape == (30, 3)
    given = datasets.from_arrays(cars[FEATURES], cars["mpg"], ["a", "b", "c"], "t")
    assert given.feature_names == ("a", "b", "c") and given.target_name == "t"
    plain = datasets.from_arrays(np.ones((2, 1)), np.ones(2))
    assert plain.feature_names == ("x0",) and plain.target_name == "y"


def test_standardizer_keeps_names_and_checks_columns(cars):
    X = cars[FEATURES]
    scaler = Standardizer.fit(X)
    assert scaler.feature_names == tuple(FEATURES)
    standardized = scaler.transform(X)
    assert list(standardized.columns) == FEATURES  # still a frame: fit keeps the names
    np.testing.assert_allclose(standardized.to_numpy(dtype=float),
                               (X.to_numpy(dtype=float) - scaler.mean) / scaler.scale)
    with pytest.raises(ValueError, match="select those, in that order"):
        scaler.transform(X[FEATURES[::-1]])
    assert Standardizer.fit(X.to_numpy(dtype=float)).feature_names is None
    # Still a pytree of two arrays under jit, names static.
    jitted = jax.jit(lambda s: s)(scaler)
    assert jitted.feature_names == tuple(FEATURES)
    assert len(jax.tree_util.tree_leaves(scaler)) == 2


def test_named_params_in_original_units_match_the_least_squares_oracle(cars):
    # Three standardized features: Hessian eigenvalues 1.39 ... 2.40 (condition number 1.7),
    # so plain GD at 0.5 shrinks every error direction by at least |1 - 0.5·1.39| = 0.31 per
    # step; after 500 steps float32 GD sits at the float64 optimum to rounding. Mapped back to
    # original units, each weight within 1e-3 relative, the bound test_fit uses for Auto MPG
    # (seen: 1.4e-7 at most).
    X, y = cars[FEATURES], cars["mpg"]
    scaler = Standardizer.fit(X)
    result = jaxgd.fit(scaler.transform(X), y, learning_rate=0.5, num_steps=500)
    named = result.named_params(scaler)
    best = jaxgd.solve(X.to_numpy(dtype=float), y.to_numpy()).params
    assert list(named["weight"]) == FEATURES
    np.testing.assert_allclose([named["weight"][f] for f in FEATURES], best.weight, rtol=1e-3)
    np.testing.assert_allclose(named["bias"], float(best.bias), rtol=1e-3)
    # The same numbers as unstandardize_params, by name.
    mapped = unstandardize_params(result.params, scaler)
    np.testing.assert_allclose([named["weight"][f] for f in FEATURES], mapped.weight,
                               rtol=1e-6)


def test_named_params_of_a_sweep_have_the_grid_shape(cars):
    swept = jaxgd.sweep(cars[FEATURES], cars["mpg"], learning_rates=[1e-5, 2e-5],
                        seeds=[0, 1, 2], num_steps=3, stopping=jaxgd.Stopping(reference=False))
    named = swept.named_params()
    assert named["weight"]["weight"].shape == (2, 3) and named["bias"].shape == (2, 3)
    np.testing.assert_array_equal(named["weight"]["horsepower"], swept.params.weight[..., 1])


def test_named_params_refuse_mismatched_names_and_duplicates(cars):
    result = jaxgd.fit(cars[FEATURES], cars["mpg"], learning_rate=1e-5, num_steps=2,
                       stopping=jaxgd.Stopping(reference=False))
    other = Standardizer.fit(cars[FEATURES[::-1]])
    with pytest.raises(ValueError, match="not the standardizer's"):
        result.named_params(other)
    doubled = pd.DataFrame(np.eye(3)[:, :2], columns=["a", "a"])
    twice = jaxgd.fit(doubled, np.ones(3), learning_rate=0.1, num_steps=2,
                      stopping=jaxgd.Stopping(reference=False))
    with pytest.raises(ValueError, match=r"\['a'\] appear more than once"):
        twice.named_params()
    plain = jaxgd.fit(np.eye(3)[:, :2], np.ones(3), learning_rate=0.1, num_steps=2,
                      stopping=jaxgd.Stopping(reference=False))
    assert list(plain.named_params()["weight"]) == ["x0", "x1"]


def test_importing_jaxgd_does_not_import_pandas():
    code = "import sys, jaxgd; jaxgd.fit; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
