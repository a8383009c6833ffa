"""Tests for jaxgd.results.tables: result.to_dataframe(), one row per run and logged step."""

import sys

import numpy as np
import pandas as pd
import pytest

import jaxgd
from jaxgd.results import tables

X = np.array([[-1.0, 0.5], [0.0, -0.5], [1.0, 1.0], [2.0, 0.0]])
Y = np.array([1.0, 3.0, 5.5, 7.0])


def test_fit_gives_one_row_per_logged_step():
    result = jaxgd.fit(X, Y, learning_rate=0.1, num_steps=10, record=jaxgd.Record(log_every=3))
    table = result.to_dataframe()
    assert list(table.columns) == ["learning_rate", "step", "loss", *tables.VERDICTS]
    assert table["step"].tolist() == [0, 3, 6, 9]
    np.testing.assert_array_equal(table["loss"], result.losses)
    assert (table["learning_rate"] == np.float32(0.1)).all()
    assert (table["final_loss"] == result.final_loss).all()
    assert (table["converged_step"] == int(result.converged_step)).all()


def test_sweep_rows_follow_the_grid_and_keep_each_runs_verdict():
    # 3.0 is far above this data's limit 2/λmax (~0.5): that run diverges, its losses turn
    # NaN after diverged_step, and its rows say so.
    result = jaxgd.sweep(X, Y, learning_rates=[0.05, 3.0], seeds=[4, 7, 9], num_steps=12)
    table = result.to_dataframe()
    assert len(table) == 2 * 3 * 12
    assert list(table.columns[:5]) == ["learning_rate", "seed", "step", "loss", "final_loss"]
    for (k, s), run in table.groupby(["learning_rate", "seed"], sort=False):
        i = int(np.flatnonzero(result.learning_rates == k)[0])
        j = int(np.flatnonzero(result.seeds == s)[0])
        np.testing.assert_array_equal(run["loss"], result.losses[i, j])
        np.testing.assert_array_equal(run["step"], result.loss_steps)
        assert (run["diverged"] == bool(result.diverged[i, j])).all()
        assert (run["diverged_step"] == int(result.diverged_step[i, j])).all()
    diverged = table[table["learning_rate"] == np.float32(3.0)]
    assert diverged["diverged"].all() and diverged["loss"].isna().any()
    assert not table[table["learning_rate"] == np.float32(0.05)]["diverged"].any()


def test_grid_has_every_axis_as_a_column_in_order():
    grid = {"momentum": [0.0, 0.5], "learning_rate": [0.01, 0.02, 0.05], "l2": [0.0, 0.1]}
    result = jaxgd.grid_sweep(X, Y, grid=grid, optimizer="momentum", num_steps=4)
    table = result.to_dataframe()
    assert list(table.columns[:4]) == ["momentum", "learning_rate", "l2", "step"]
    assert len(table) == 2 * 3 * 2 * 4
    first_of_each_run = table.iloc[::4]
    for row, index in zip(first_of_each_run.itertuples(), np.ndindex(2, 3, 2), strict=True):
        point = result.point(index)
        assert (row.momentum, row.learning_rate, row.l2) == pytest.approx(
            (point["momentum"], point["learning_rate"], point["l2"]))
        assert row.loss == result.losses[index][0]


def test_tidy_columns_need_no_pandas(monkeypatch):
    result = jaxgd.fit(X, Y, learning_rate=0.1, num_steps=3)
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now fails
    columns = tables.tidy_columns(result)
    assert all(isinstance(c, np.ndarray) and c.shape == (3,) for c in columns.values())
    with pytest.raises(ImportError, match=r"jaxgd\[pandas\]"):
        result.to_dataframe()


def test_the_table_is_a_real_dataframe():
    table = jaxgd.fit(X, Y, learning_rate=0.1, num_steps=3).to_dataframe()
    assert isinstance(table, pd.DataFrame)
    assert table["converged"].dtype == bool
