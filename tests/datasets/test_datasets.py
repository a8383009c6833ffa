"""Tests for jaxgd.datasets: the embedded data, synthetic data, CSV loading and arrays."""

import doctest
import importlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgd.core.params import LinearParams
from jaxgd.datasets import (
    AUTO_MPG_COLUMNS,
    Dataset,
    SyntheticDataset,
    auto_mpg,
    csv_blocks,
    from_arrays,
    load_csv,
    mlcc_cars,
    synthetic,
)

# ---------------------------------------------------------------- auto_mpg


def test_auto_mpg_all_features_drops_the_six_rows_without_horsepower():
    data = auto_mpg()
    assert isinstance(data, Dataset)
    assert data.X.shape == (392, 7) and data.y.shape == (392,)
    assert data.X.dtype == data.y.dtype == np.float64
    assert data.n_dropped == 6
    assert data.feature_names == AUTO_MPG_COLUMNS[:7]
    assert data.target_name == "mpg"
    assert "Quinlan" in data.source and "UCI" in data.source


def test_auto_mpg_weight_only_keeps_every_row():
    data = auto_mpg("weight")
    assert data.X.shape == (398, 1) and data.n_dropped == 0
    assert data.feature_names == ("weight",)
    # First row of the file: chevrolet chevelle malibu, 18 mpg, 3504 pounds.
    assert data.X[0, 0] == 3504.0 and data.y[0] == 18.0


def test_auto_mpg_first_row_values_in_the_order_asked():
    data = auto_mpg(["weight", "cylinders", "model_year"])
    assert data.X[0].tolist() == [3504.0, 8.0, 70.0]


def test_auto_mpg_any_numeric_column_may_be_the_target():
    data = auto_mpg(target="horsepower")
    assert "mpg" in data.feature_names and "horsepower" not in data.feature_names
    assert data.X.shape == (392, 7) and data.n_dropped == 6
    assert data.y[0] == 130.0


def test_auto_mpg_works_from_another_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the file is found through the package, not the cwd
    assert auto_mpg("weight").X.shape == (398, 1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"features": "wieght"}, r"unknown column 'wieght'.*Did you mean 'weight'.*cylinders"),
        ({"target": "speed"}, r"unknown column 'speed'.*Available columns: cylinders"),
        ({"features": ["weight", "mpg"]}, r"target 'mpg' is also a feature"),
        ({"features": "name"}, r"'name' holds each car's model as text"),
        ({"features": "weight", "target": "name"}, r"'name' .* not a number"),
        ({"features": []}, r"features is empty"),
        ({"features": ["weight", "weight"]}, r"more than once: weight"),
    ],
)
def test_auto_mpg_rejects_bad_column_choices(kwargs, match):
    with pytest.raises(ValueError, match=match):
        auto_mpg(**kwargs)


# ---------------------------------------------------------------- mlcc_cars


def test_mlcc_cars_is_the_course_table():
    data = mlcc_cars()
    assert data.X[:, 0].tolist() == [3.5, 3.69, 3.44, 3.43, 4.34, 4.42, 2.37]
    assert data.y.tolist() == [18.0, 15.0, 18.0, 16.0, 15.0, 14.0, 24.0]
    assert data.feature_names == ("weight_1000lbs",) and data.target_name == "mpg"
    assert data.X.dtype == np.float64 and data.n_dropped == 0


# ---------------------------------------------------------------- synthetic


def test_synthetic_shapes_types_and_determinism():
    data = synthetic(jax.random.key(0), 50, 3)
    again = synthetic(jax.random.key(0), 50, 3)
    other = synthetic(jax.random.key(1), 50, 3)
    assert isinstance(data, SyntheticDataset)
    assert data.X.shape == (50, 3) and data.y.shape == (50,)
    assert data.X.dtype == data.y.dtype == np.float64
    assert data.feature_names == ("x0", "x1", "x2") and data.n_dropped == 0
    assert isinstance(data.true_params, LinearParams)
    assert isinstance(data.true_params.weight, np.ndarray)
    assert data.true_params.weight.shape == (3,) and data.true_params.bias.shape == ()
    assert data.true_params.weight.dtype == data.true_params.bias.dtype == np.float64
    np.testing.assert_array_equal(data.X, again.X)
    np.testing.assert_array_equal(data.y, again.y)
    assert not np.array_equal(data.X, other.X)


def test_synthetic_noise_free_targets_follow_the_true_params_exactly():
    data = synthetic(jax.random.key(3), 20, 2, noise=0.0)
    w, b = data.true_params
    np.testing.assert_array_equal(data.y, data.X @ w + b)


def test_synthetic_given_params_and_scale_leave_the_draws_alone():
    base = synthetic(jax.random.key(2), 30, 2, noise=0.5)
    given = synthetic(
        jax.random.key(2), 30, 2, noise=0.5, weight=[1.0, 2.0], bias=-1.0, feature_scale=3.0
    )
    np.testing.assert_array_equal(given.X, 3.0 * base.X)
    assert given.true_params.weight.tolist() == [1.0, 2.0]
    assert given.true_params.bias.item() == -1.0
    # Same noise draw: the residual from the true model is identical.
    np.testing.assert_allclose(
        given.y - given.X @ given.true_params.weight - given.true_params.bias,
        base.y - base.X @ base.true_params.weight - base.true_params.bias,
        atol=1e-12,  # float64 rounding of sums of terms of size ~10
    )


def test_synthetic_accepts_an_old_style_key():
    assert synthetic(jax.random.PRNGKey(0), 4, 1).X.shape == (4, 1)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((0, 2), {}, ValueError, r"n_samples must be >= 1"),
        ((5, 0), {}, ValueError, r"n_features must be >= 1"),
        ((5, 2.0), {}, TypeError, r"n_features must be an integer"),
        ((5, 2), {"noise": -0.1}, ValueError, r"noise must be finite and >= 0"),
        ((5, 2), {"weight": [1.0]}, ValueError, r"weight must have shape \(2,\)"),
        ((5, 2), {"bias": [1.0]}, ValueError, r"bias must have shape \(\)"),
        ((5, 2), {"weight": [1.0, np.nan]}, ValueError, r"weight must be finite"),
    ],
)
def test_synthetic_rejects_bad_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        synthetic(jax.random.key(0), *args, **kwargs)


def test_synthetic_refuses_sizes_jax_or_memory_cannot_hold(monkeypatch):
    # 10⁹ × 10 used to abort the interpreter inside XLA (SIGABRT).
    with pytest.raises(ValueError, match=r"n_samples × n_features must be <= 2147483647.*"
                                         r"got 1000000000 × 10"):
        synthetic(jax.random.PRNGKey(0), 10**9, 10)
    monkeypatch.setattr("jaxgd.inputs.validation.memory_bytes", lambda: 2**30)  # a 1 GiB machine
    with pytest.raises(MemoryError, match=r"n_samples × n_features = 10000000 × 10 synthetic "
                                          r"data would take 2\.0 GiB, more than this machine's "
                                          r"1\.0 GiB"):
        synthetic(jax.random.key(0), 10**7, 10)


# ---------------------------------------------------------------- load_csv


def write(tmp_path, text, name="data.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def test_load_csv_selects_columns_and_drops_missing_rows(tmp_path):
    path = write(
        tmp_path,
        "a,b,label,c\n1,2,x,3\n4,?,y,6\n7,8,z,NA\n\n10, 11 ,w,12\n13,14,v,\n",
    )
    data = load_csv(path, ["b", "a"], "c")
    assert data.X.tolist() == [[2.0, 1.0], [11.0, 10.0]]
    assert data.y.tolist() == [3.0, 12.0]
    assert data.n_dropped == 3
    assert data.feature_names == ("b", "a") and data.target_name == "c"
    assert data.X.dtype == np.float64 and str(path) in data.source


def test_load_csv_reads_the_usual_missing_markers_in_any_case(tmp_path):
    # Spreadsheets and R write N/A, #N/A-less "n/a", NAN, Na: all mean "no value".
    markers = ["N/A", "n/a", "NAN", "nan", "NaN", "na", "Na", "?"]
    path = write(tmp_path, "a,b\n1,2\n" + "".join(f"{m},5\n" for m in markers) + "3,4\n")
    data = load_csv(path, "a", "b")
    assert data.X.tolist() == [[1.0], [3.0]] and data.n_dropped == len(markers)
    assert [y.tolist() for _, y in csv_blocks(path, "a", "b")] == [[2.0, 4.0]]
    # A marker of the caller's is read in any case too.
    other = write(tmp_path, "a,b\n1,2\nNone,5\nnone,6\n", name="other.csv")
    assert load_csv(other, "a", "b", missing=("none",)).n_dropped == 2


def test_load_csv_skips_lines_of_only_whitespace_as_blank(tmp_path):
    path = write(tmp_path, "   \na,b\n1,2\n   \n \t \n3,4\n  \n")
    data = load_csv(path, "a", "b")
    assert data.X.tolist() == [[1.0], [3.0]] and data.y.tolist() == [2.0, 4.0]
    assert data.n_dropped == 0 and data.feature_names == ("a",)
    assert [y.tolist() for _, y in csv_blocks(path, "a", "b")] == [[2.0, 4.0]]


def test_load_csv_only_drops_rows_missing_a_selected_column(tmp_path):
    path = write(tmp_path, "a,b,c\n1,?,3\n4,5,6\n")
    assert load_csv(path, "a", "c").n_dropped == 0
    assert load_csv(path, "b", "c").n_dropped == 1


def test_load_csv_delimiter_quotes_bom_and_custom_missing(tmp_path):
    path = write(tmp_path, '"x";"name";"y"\n1;"a;b";2\n-;"c";4\n3;"d";5\n', encoding="utf-8-sig")
    data = load_csv(str(path), "x", "y", delimiter=";", missing=("-",))
    assert data.X.tolist() == [[1.0], [3.0]] and data.y.tolist() == [2.0, 5.0]
    assert data.n_dropped == 1


def test_load_csv_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere.csv"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        load_csv(path, "a", "b")


@pytest.mark.parametrize(
    ("text", "features", "target", "match"),
    [
        ("", "a", "b", r"is empty: expected a header row"),
        ("\n\n", "a", "b", r"is empty: expected a header row"),
        ("alpha,beta\n1,2\n", "alpah", "beta", r"unknown column 'alpah'.*'alpha'.*alpha, beta"),
        ("a,b\n1,2\n", "a", "zzz", r"unknown column 'zzz'.*Available columns: a, b"),
        ("a,b\n1,2\n3,oops\n", "a", "b", r"line 3, column 'b': 'oops' is not a finite number"),
        ("a,b\n1,2\n\n3,inf\n", "a", "b", r"line 4, column 'b': 'inf' is not a finite"),
        ("a,b\n1,2\n3\n", "a", "b", r"line 3: 1 fields but the header has 2"),
        ("a,b\n1,2,3\n", "a", "b", r"line 2: 3 fields but the header has 2"),
        ("a,b\n?,2\n3,NA\n", "a", "b", r"no rows left: 2 rows were dropped .* in a, b"),
        ("a,b\n", "a", "b", r"has no data rows: only a header"),
        ("a,b\n1_000,2\n", "a", "b", r"line 2, column 'a': '1_000' is not a finite number"),
        ("a,b\n1,2\n", ["a", "b"], "b", r"target 'b' is also a feature"),
        ("a,a,b\n1,2,3\n", "a", "b", r"column 'a' appears more than once in the header"),
    ],
)
def test_load_csv_errors_say_what_and_where(tmp_path, text, features, target, match):
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=match):
        load_csv(path, features, target)


def test_load_csv_nan_is_an_error_when_not_a_missing_marker(tmp_path):
    path = write(tmp_path, "a,b\n1,nan\n")
    with pytest.raises(ValueError, match=r"line 2, column 'b': 'nan'"):
        load_csv(path, "a", "b", missing=())


# ---------------------------------------------------------------- from_arrays


def test_from_arrays_defaults_and_copies():
    X, y = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([5.0, 6.0])
    data = from_arrays(X, y)
    assert data.feature_names == ("x0", "x1") and data.target_name == "y"
    assert data.n_dropped == 0
    X[0, 0] = 99.0  # the data set keeps its own copy
    assert data.X[0, 0] == 1.0


def test_from_arrays_names_and_dtypes():
    data = from_arrays(jnp.array([[1.0], [2.0]], dtype=jnp.float32), [1, 2], "weight", "mpg")
    assert data.feature_names == ("weight",) and data.target_name == "mpg"
    assert isinstance(data.X, np.ndarray)
    assert data.X.dtype == data.y.dtype == np.float64


@pytest.mark.parametrize(
    ("X", "y", "names", "match"),
    [
        ([1.0, 2.0], [1.0, 2.0], None, r"X must be 2-D"),
        ([[1.0], [2.0]], [1.0], None, r"X has 2 rows but y has 1"),
        ([[1.0], [np.nan]], [1.0, 2.0], None, r"NaN or infinite values in rows 1"),
        ([[1.0, 2.0]], [1.0], ["only_one"], r"feature_names has 1 names but X has 2 columns"),
    ],
)
def test_from_arrays_rejects_bad_input(X, y, names, match):
    with pytest.raises(ValueError, match=match):
        from_arrays(X, y, names)


# ---------------------------------------------------------------- docstrings


@pytest.mark.parametrize("name", ["dataset", "csv", "auto_mpg", "cars", "synthetic"])
def test_docstring_examples_run(name):
    module = importlib.import_module(f"jaxgd.datasets.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_load_csv_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"a,b\n1,\xff\xfe2\n")
    with pytest.raises(ValueError, match=r"latin1\.csv' is not UTF-8 text"):
        load_csv(path, "a", "b")


def test_load_csv_reader_errors_name_the_line(tmp_path):
    import csv as csv_module

    previous = csv_module.field_size_limit(10)
    try:
        path = tmp_path / "long.csv"
        path.write_text("a,b\n1," + "9" * 50 + "\n")
        with pytest.raises(ValueError, match=r"line 2: field larger than field limit"):
            load_csv(path, "a", "b")
    finally:
        csv_module.field_size_limit(previous)


def test_a_semicolon_separated_file_gets_a_hint_and_reads_with_its_delimiter(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("weight;mpg\n3.5;18\n2.4;24\n4.4;14\n")
    with pytest.raises(ValueError, match=r"holds ';': is the file separated by ';'\? "
                                         r"Pass delimiter=';'"):
        load_csv(path, "weight", "mpg")
    data = load_csv(path, "weight", "mpg", delimiter=";")
    assert data.X[:, 0].tolist() == [3.5, 2.4, 4.4] and data.y.tolist() == [18, 24, 14]
