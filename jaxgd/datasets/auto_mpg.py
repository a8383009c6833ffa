"""The Auto MPG data set (UCI), embedded in the package so examples run with no download."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

from jaxgd.datasets.csv import _read_table, _select
from jaxgd.datasets.dataset import Dataset

AUTO_MPG_COLUMNS = (
    "cylinders",
    "displacement",
    "horsepower",
    "weight",
    "acceleration",
    "model_year",
    "origin",
    "mpg",
)
"""The numeric columns: the seven attributes, then ``mpg``; any of them may be a feature or
the target. (The file's ``name`` column, the car's model, is text.)"""

_SOURCE = (
    "Auto MPG data set, UCI Machine Learning Repository (Quinlan, R. 1993, 'Combining "
    "Instance-Based and Model-Based Learning', Proc. 10th ICML, 236-243), CC BY 4.0"
)


def auto_mpg(features: str | Sequence[str] | None = None, target: str = "mpg") -> Dataset:
    """Loads the Auto MPG data: 398 cars of model years 1970-1982.

    Units: ``displacement`` in cubic inches, ``weight`` in pounds, ``acceleration`` in
    seconds from 0 to 60 mph, ``model_year`` as 70-82, ``origin`` 1/2/3 for USA/Europe/Japan.
    Six cars have no ``horsepower``; rows missing a *selected* column are dropped and
    counted in ``n_dropped``, so choosing horsepower leaves 392 rows and not choosing it 398.

    Args:
      features: a column name or a sequence of names from ``AUTO_MPG_COLUMNS``; None means
        every numeric column but the target (the seven attributes when the target is mpg).
      target: the column to predict; it must not also be a feature.

    Returns:
      A ``Dataset`` with float64 ``X`` and ``y`` and the citation in ``source``.

    Raises:
      ValueError: for a name that is not a numeric column (the message lists them and the
        closest match), ``name`` (text, not a number), or a target that is also a feature.

    Example:
      >>> data = auto_mpg("weight")
      >>> data.X.shape, data.n_dropped, float(data.X[0, 0]), float(data.y[0])
      ((398, 1), 0, 3504.0, 18.0)
      >>> auto_mpg().X.shape
      (392, 7)
    """
    if features is None:
        features = tuple(name for name in AUTO_MPG_COLUMNS if name != target)
    names = (features,) if isinstance(features, str) else tuple(features)
    if "name" in (*names, target):
        raise ValueError(
            "'name' holds each car's model as text, not a number, so it cannot be a feature "
            f"or the target; numeric columns: {', '.join(AUTO_MPG_COLUMNS)}"
        )
    # Checked here against the numeric columns, so that the message lists only those.
    _select(AUTO_MPG_COLUMNS, names, target, "the Auto MPG data")
    text = resources.files("jaxgd.datasets").joinpath("data/auto_mpg.csv").read_text("utf-8")
    X, y, feature_names, n_dropped = _read_table(
        text.splitlines(), "auto_mpg.csv", names, target, ",", ("?",)
    )
    return Dataset(X, y, feature_names, target, n_dropped, _SOURCE)
