"""The data of a ``jaxgd run``: loaded into memory or streamed from a file, ``data.scale``
applied, every way a file can fail turned into a ``ConfigError`` that starts with "data:".

- ``load_data``: the rows in memory (``auto_mpg``, ``mlcc_cars``, ``synthetic``, ``csv``);
- ``load_stream``: a file read once, block by block, into its float64 sufficient statistics
  (``npy``, or ``csv`` with ``data.stream = true``);
- ``load_rows``: the same file as rows that mini-batch SGD reads batch by batch.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Iterator
from typing import TYPE_CHECKING

import jax
import numpy as np

from jaxgd import datasets
from jaxgd.cli.toml_text import ConfigError

if TYPE_CHECKING:
    from jaxgd.cli.config import Config
from jaxgd.data.statistics import SufficientStats, accumulate, host_array
from jaxgd.inputs.validation import default_float, memory_bytes
from jaxgd.pipeline.preparation import check_range


def is_streamed(config: Config) -> bool:
    """Whether the config's data are streamed from a file into their moments: a .npy file
    always is, a CSV file with ``data.stream = true``."""
    return config.data.dataset == "npy" or bool(getattr(config.data, "stream", False))


@contextlib.contextmanager
def _data_errors(path: str | None, what: str) -> Iterator[None]:
    """Turns the ways a data file can fail into ``ConfigError`` messages starting "data:"."""
    try:
        yield
    except ConfigError:
        raise
    except UnicodeDecodeError as error:
        raise ConfigError(f"data: {path} is not UTF-8 text: {error}") from None
    except csv.Error as error:  # e.g. a field longer than the csv module's limit
        raise ConfigError(f"data: {path} is not a CSV file jaxgd can read: {error}") \
            from None
    except (ValueError, TypeError, FileNotFoundError, OSError) as error:
        raise ConfigError(f"data: {error}") from None
    except MemoryError:
        raise ConfigError(f"data: not enough memory to load {path or what}") from None


def load_data(config: Config) -> datasets.Dataset:
    """The config's dataset in original units, with ``data.scale`` applied to its columns."""
    data = config.data
    if data.dataset in ("mlcc_cars", "synthetic") and (data.features is not None
                                                       or data.target is not None):
        raise ConfigError(f"data.features and data.target choose columns of auto_mpg or csv "
                          f"data; data.dataset = {data.dataset!r} has fixed columns: "
                          "remove them")
    if data.dataset == "synthetic":  # before drawing them: the sizes are known
        check_stages([
            (f"data.n_samples × data.n_features = {data.n_samples} × {data.n_features} "
             "synthetic data", data_bytes(data.n_samples, data.n_features)),
            hessian_stage(data.n_features, "data.n_features"),
        ])
    with _data_errors(data.path, data.dataset):
        if data.dataset == "auto_mpg":
            dataset = datasets.auto_mpg(data.features, data.target or "mpg")
        elif data.dataset == "mlcc_cars":
            dataset = datasets.mlcc_cars()
        elif data.dataset == "synthetic":
            dataset = datasets.synthetic(jax.random.key(data.seed), data.n_samples,
                                         data.n_features, data.noise)
        elif data.dataset == "csv":
            dataset = datasets.load_csv(data.path, data.features, data.target,
                                        delimiter=data.delimiter)
        else:
            raise ConfigError(f"data.dataset = {data.dataset!r} is streamed: see load_stream")
    dataset = _rescale(dataset, data.scale)
    _in_range(lambda: check_range(dataset.X, dataset.y))
    return dataset


def load_stream(config: Config) -> tuple[datasets.Dataset, SufficientStats]:
    """The config's file read once, block by block, into its float64 sufficient statistics
    (``data.scale`` applied); no rows are kept.

    Returns:
      A ``Dataset`` holding the names and source but no rows (``X`` is ``(0, d)``), and the
      moments of all the rows.
    """
    data = config.data
    with _data_errors(data.path, data.dataset):
        source = _source(config)  # checks a .npy file's header now, reads rows lazily
        names, target_name = _stream_columns(source)
        # The moments are (d + 1)² per block: refused before the first block is read.
        check_stages([hessian_stage(len(names), "the number of features")])
        stats = accumulate(source.blocks())
    stats, names, target_name = _rescale_stats(stats, names, target_name, data.scale)
    _in_range(lambda: [host_array(a, default_float()) for a in stats])  # as engines cast
    where = f".npy file {data.path}" if source.kind == "npy" else f"CSV file {data.path}"
    empty = datasets.Dataset(np.zeros((0, len(names))), np.zeros(0), names, target_name, 0,
                             f"{where}, streamed")
    return empty, stats


def _source(config: Config) -> datasets.RowSource:
    """The config's file as a ``RowSource`` in its own units: what both the moments and the
    mini-batches are read from, and where the columns' names come from."""
    data = config.data
    if data.dataset == "npy":
        return datasets.npy_rows(data.path, target=data.target_column,
                                 block_rows=data.block_rows)
    return datasets.csv_rows(data.path, data.features, data.target,
                             delimiter=data.delimiter, block_rows=data.block_rows)


def _stream_columns(source: datasets.RowSource) -> tuple[tuple[str, ...], str]:
    """Feature and target names of a streamed file: the source's own (a CSV file's header
    names, as the library's results carry them), else by position (a .npy file's columns
    are x0, x1, … skipping the target's index, and its target is y)."""
    if source.feature_names is not None:
        return source.feature_names, source.target_name
    width = np.load(source.path, mmap_mode="r", allow_pickle=False).shape[1]
    target = int(source.target) % width
    return tuple(f"x{i}" for i in range(width) if i != target), "y"


def load_rows(config: Config) -> datasets.RowSource:
    """The config's file as rows for mini-batch SGD to read batch by batch, ``data.scale``
    applied to each row (``load_stream`` has checked the file and the scale's names)."""
    data = config.data
    with _data_errors(data.path, data.dataset):
        source = _source(config)
        names, target = _stream_columns(source)
    return source.rescaled([data.scale.get(name, 1.0) for name in names],
                           data.scale.get(target, 1.0))


def _in_range(check) -> None:
    """The library's refusal of data beyond the float range the run computes in (its
    squares or moments would be inf), as a config error, before anything runs."""
    try:
        check()
    except ValueError as error:
        raise ConfigError(f"data: {error}, or shrink the columns with data.scale") from None


def _rescale(dataset: datasets.Dataset, scale: dict[str, float]) -> datasets.Dataset:
    columns = (*dataset.feature_names, dataset.target_name)
    unknown = sorted(set(scale) - set(columns))
    if unknown:
        raise ConfigError(f"data.scale names {unknown}, which are not among the columns "
                          f"{list(columns)}")
    X, y = dataset.X.copy(), dataset.y.copy()
    names = list(dataset.feature_names)
    with np.errstate(over="ignore"):  # reported below
        for i, name in enumerate(dataset.feature_names):
            if name in scale:
                X[:, i] *= scale[name]
                names[i] = f"{name} ×{scale[name]:g}"
        target = dataset.target_name
        if target in scale:
            y *= scale[target]
            target = f"{target} ×{scale[target]:g}"
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise ConfigError("data.scale makes some values overflow to infinity: use smaller "
                          "factors")
    return dataset._replace(X=X, y=y, feature_names=tuple(names), target_name=target)


def _rescale_stats(stats: SufficientStats, names: tuple[str, ...], target: str,
                   scale: dict[str, float]):
    """``data.scale`` applied to the moments: column i times c_i scales its mean by c_i and
    its (co)variances by the products of the factors."""
    columns = (*names, target)
    unknown = sorted(set(scale) - set(columns))
    if unknown:
        raise ConfigError(f"data.scale names {unknown}, which are not among the columns "
                          f"{list(columns)}")
    factors = np.array([scale.get(name, 1.0) for name in names])
    ty = scale.get(target, 1.0)
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = SufficientStats(
            n=stats.n,
            mean_x=np.asarray(stats.mean_x) * factors,
            mean_y=np.float64(stats.mean_y * ty),
            cov_xx=np.asarray(stats.cov_xx) * np.outer(factors, factors),
            cov_xy=np.asarray(stats.cov_xy) * factors * ty,
            var_y=np.float64(stats.var_y * ty * ty),
        )
    if not all(np.isfinite(np.asarray(a)).all() for a in scaled):
        raise ConfigError("data.scale makes some values overflow to infinity: use smaller "
                          "factors")
    names = tuple(f"{n} ×{scale[n]:g}" if n in scale else n for n in names)
    target = f"{target} ×{ty:g}" if target in scale else target
    return scaled, names, target


def _memory_bytes() -> int | None:
    return memory_bytes()


#: Float64 copies of the rows a run holds at its peak while loading them: drawn (or
#: parsed), rescaled by data.scale, standardized, and as the runs' device array.
DATA_COPIES = 4
#: (d + 1) × (d + 1) float64 matrices alive at once for the stability limit and the moment
#: engines: the Gram matrix, the ridge penalty, their sum, the Hessian and eigvalsh's work.
HESSIAN_COPIES = 5


def data_bytes(n_rows: int, n_features: int) -> int:
    """Peak bytes of loading ``n_rows`` × ``n_features`` rows (``DATA_COPIES`` copies)."""
    return n_rows * (n_features + 1) * 8 * DATA_COPIES


def hessian_bytes(n_features: int) -> int:
    """Peak bytes of the (d + 1)² Hessian and its company (``HESSIAN_COPIES``)."""
    return (n_features + 1) ** 2 * 8 * HESSIAN_COPIES


def hessian_stage(n_features: int, key: str) -> tuple[str, int]:
    """The Hessian's stage for ``check_stages``, naming the key that sets ``n_features``."""
    size = n_features + 1
    return (f"{key} = {n_features} makes the {size} × {size} float64 Hessian of the stability "
            "limit and the reference (it and its working copies)", hessian_bytes(n_features))


def check_stages(stages: list[tuple[str, float]]) -> None:
    """Refuses a run whose most demanding stage needs more than this machine's memory.

    Args:
      stages: (what, peak bytes) of each stage of the run: loading the data, the Hessian,
        the compiled runs, assembling and writing the results.

    Raises:
      ConfigError: naming the largest stage that does not fit and what it would take.
    """
    available = _memory_bytes()
    too_large = [(needed, what) for what, needed in stages
                 if available is not None and needed > available]
    if too_large:
        needed, what = max(too_large)
        raise ConfigError(f"{what} would take {needed / 2**30:,.1f} GiB, more than this "
                          f"machine's {available / 2**30:,.1f} GiB of memory: make it smaller")
