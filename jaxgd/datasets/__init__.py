"""Data for linear regression: the embedded Auto MPG and crash-course cars, synthetic data,
a user's CSV file or arrays, all returned as a ``Dataset``."""

from jaxgd.datasets.auto_mpg import AUTO_MPG_COLUMNS, auto_mpg
from jaxgd.datasets.cars import mlcc_cars
from jaxgd.datasets.csv import load_csv
from jaxgd.datasets.dataset import Dataset, from_arrays
from jaxgd.datasets.stream import (
    DEFAULT_BLOCK_ROWS,
    OpenRows,
    RowSource,
    csv_blocks,
    csv_rows,
    npy_blocks,
    npy_rows,
)
from jaxgd.datasets.synthetic import SyntheticDataset, synthetic

__all__ = [
    "AUTO_MPG_COLUMNS",
    "DEFAULT_BLOCK_ROWS",
    "Dataset",
    "OpenRows",
    "RowSource",
    "SyntheticDataset",
    "auto_mpg",
    "csv_blocks",
    "csv_rows",
    "from_arrays",
    "load_csv",
    "mlcc_cars",
    "npy_blocks",
    "npy_rows",
    "synthetic",
]
