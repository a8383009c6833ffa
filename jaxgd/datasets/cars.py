"""The seven-car table of Google's Machine Learning Crash Course (car weight against mpg)."""

from __future__ import annotations

import numpy as np

from jaxgd.datasets.dataset import Dataset

# (weight in 1000s of pounds, miles per gallon), as printed in the course.
_CARS = (
    (3.5, 18.0),
    (3.69, 15.0),
    (3.44, 18.0),
    (3.43, 16.0),
    (4.34, 15.0),
    (4.42, 14.0),
    (2.37, 24.0),
)


def mlcc_cars() -> Dataset:
    """The course's seven cars: weight (1000s of pounds) as the one feature, mpg the target.

    Small enough to check a fit by hand; heavier cars use more fuel, so the fitted slope is
    negative.

    Returns:
      A ``Dataset`` with ``X`` of shape ``(7, 1)`` (feature ``weight_1000lbs``) and ``y``
      (target ``mpg``).

    Example:
      >>> data = mlcc_cars()
      >>> data.X.shape, data.feature_names, data.y[:3].tolist()
      ((7, 1), ('weight_1000lbs',), [18.0, 15.0, 18.0])
    """
    table = np.array(_CARS, dtype=np.float64)
    return Dataset(
        X=table[:, :1],
        y=table[:, 1],
        feature_names=("weight_1000lbs",),
        target_name="mpg",
        n_dropped=0,
        source="Google Machine Learning Crash Course, linear regression: 7 cars' weight and mpg",
    )
