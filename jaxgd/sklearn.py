"""A scikit-learn estimator over ``jaxgd.fit``: ``GDRegressor``.

``GDRegressor`` is a regular scikit-learn regressor (``fit`` / ``predict`` / ``score``,
``get_params`` / ``set_params``, ``clone``), so it goes into a ``Pipeline`` (after a
``StandardScaler``: plain gradient descent wants features on one scale) and into
``GridSearchCV`` over its learning rate, number of steps or optimizer. Its hyperparameters
are ``jaxgd.fit``'s; each ``fit`` is one ``jaxgd.fit`` call, and a refit with the same data
shapes and options reuses the compiled program, whatever the learning rate.

scikit-learn is the optional ``sklearn`` extra (``pip install "jaxgd[sklearn]"``):
``import jaxgd`` never loads it, and importing this module without it raises an
ImportError that says so.

Example:
  >>> import numpy as np
  >>> from sklearn.pipeline import make_pipeline
  >>> from sklearn.preprocessing import StandardScaler
  >>> X = np.array([[1.0, 200.0], [2.0, 300.0], [3.0, 250.0], [4.0, 400.0]])
  >>> y = X @ np.array([2.0, 0.01]) + 1.0
  >>> model = make_pipeline(StandardScaler(), GDRegressor(learning_rate=0.3)).fit(X, y)
  >>> round(model.score(X, y), 4)
  1.0
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping

import numpy as np

try:
    from sklearn.base import BaseEstimator, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils.validation import check_is_fitted
except ImportError as error:
    raise ImportError("jaxgd.sklearn needs scikit-learn, the optional 'sklearn' extra: "
                      'pip install "jaxgd[sklearn]" (or pip install scikit-learn)') from error

from jaxgd.api.fit import fit as jaxgd_fit
from jaxgd.api.settings import group
from jaxgd.core import convergence

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # 1.2 to 1.5: the same checks, as a method

    def _validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)


#: Full-batch steps when ``num_steps`` is None and there is no ``batch_size``.
DEFAULT_NUM_STEPS = 1000


class GDRegressor(RegressorMixin, BaseEstimator):
    """Linear regression by gradient descent (``jaxgd.fit``) as a scikit-learn regressor.

    Every argument is a hyperparameter of ``jaxgd.fit`` of the same name (see there); the
    defaults are ``fit``'s, with a learning rate suited to standardized features.

    Args:
      learning_rate: step size; 0.1 is stable for standardized features unless they are
        strongly correlated (``jaxgd.stability`` gives the largest stable rate).
      num_steps: full-batch updates; None is ``DEFAULT_NUM_STEPS`` (1000), or, with
        ``batch_size``, epochs × ceil(n / batch_size) (leave it None then).
      optimizer: a name ("sgd", "momentum", "nesterov", "adam", ...), a function that
        builds an optax optimizer from a learning rate, or None for plain gradient descent.
      schedule: the learning-rate schedule (``fit``'s).
      schedule_steps: the schedule's step counts (``fit``'s).
      hyperparameters: the optimizer's other hyperparameters (e.g. ``{"momentum": 0.9}``).
      l2: ridge strength: the loss is MSE + l2·‖coef‖² (the intercept is not penalized).
        This is scikit-learn's ``Ridge(alpha=n_samples * l2)``: Ridge sums the squared
        errors where jaxgd averages them.
      init_scale: the standard deviation of the random start near zero (0: zeros).
      seed: the random start's seed.
      batch_size: rows per mini-batch (None: full-batch; see ``jaxgd.core.minibatch``).
      epochs: passes over the rows, with ``batch_size``.
      batch_seed: the order of the mini-batches.
      tol: the relative change of the loss per step that counts as flat
        (``jaxgd.core.convergence``).
      patience: how many flat steps in a row make a run converged.
      divergence_factor: a loss above this multiple of the initial loss is diverged.
      stop_at_convergence: end each run early once it converged or diverged.
      engine: "auto", "direct", "gram", "eigen", ... (``jaxgd.engines.engine``).
      reference: compute the float64 least-squares optimum, by which a run is judged
        stalled or diverging (and ``result_.gap``).

    Attributes:
      coef_: the weights, ``(n_features_in_,)``, in the units of the features given, in
        JAX's default float (float32, float64 under ``jax_enable_x64``) as ``fit`` runs.
      intercept_: the bias, a float.
      n_features_in_: the number of features seen by ``fit``.
      feature_names_in_: the column names, when ``fit`` was given a DataFrame.
      n_iter_: the updates computed (fewer than scheduled with ``stop_at_convergence``).
      converged_, diverged_: the run's verdicts (``jaxgd.core.convergence``); ``fit`` warns
        with a ``ConvergenceWarning`` when the run diverged, stalled (stopped above the
        optimum at its float precision) or did not converge.
      loss_curve_: the training loss (MSE, plus the ridge term) before each update.
      result_: the ``jaxgd.FitResult`` (without its lazily computed ``errors``, so that
        the fitted estimator pickles).

    Example:
      >>> import numpy as np
      >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
      >>> model = GDRegressor(learning_rate=0.3, num_steps=200).fit(X, y)
      >>> model.coef_.round(3).tolist(), round(model.intercept_, 3), model.converged_
      ([2.0], 3.0, True)
      >>> model.predict(np.array([[2.0]])).round(3).tolist()
      [7.0]
    """

    def __init__(
        self,
        *,
        learning_rate: float = 0.1,
        num_steps: int | None = None,
        optimizer: str | Callable | None = None,
        schedule: str = "constant",
        schedule_steps: Mapping[str, int] | None = None,
        hyperparameters: Mapping[str, float] | None = None,
        l2: float = 0.0,
        init_scale: float = 0.01,
        seed: int = 0,
        batch_size: int | None = None,
        epochs: int | None = None,
        batch_seed: int | None = None,
        tol: float = convergence.DEFAULT_TOL,
        patience: int = convergence.DEFAULT_PATIENCE,
        divergence_factor: float = convergence.DEFAULT_DIVERGENCE_FACTOR,
        stop_at_convergence: bool = False,
        engine: str = "auto",
        reference: bool = True,
    ):
        self.learning_rate = learning_rate
        self.num_steps = num_steps
        self.optimizer = optimizer
        self.schedule = schedule
        self.schedule_steps = schedule_steps
        self.hyperparameters = hyperparameters
        self.l2 = l2
        self.init_scale = init_scale
        self.seed = seed
        self.batch_size = batch_size
        self.epochs = epochs
        self.batch_seed = batch_seed
        self.tol = tol
        self.patience = patience
        self.divergence_factor = divergence_factor
        self.stop_at_convergence = stop_at_convergence
        self.engine = engine
        self.reference = reference

    def fit(self, X, y) -> GDRegressor:
        """Fits the weights and intercept by gradient descent on the MSE (``jaxgd.fit``).

        Args:
          X: features, ``(n_samples, n_features)``: an array or a DataFrame.
          y: targets, ``(n_samples,)``.

        Returns:
          The estimator itself.

        Raises:
          ValueError: for data scikit-learn's ``check_array`` refuses (NaN, infinities,
            wrong shapes, no rows) and for hyperparameters ``jaxgd.fit`` refuses.

        Example:
          >>> import numpy as np
          >>> X, y = np.array([[-1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), np.array([1.0, 3.0, 5.0])
          >>> model = GDRegressor(learning_rate=0.3, num_steps=300).fit(X, y)
          >>> model.n_features_in_, model.n_iter_, model.converged_
          (2, 300, True)
        """
        X, y = _validate_data(self, X, y, dtype=[np.float64, np.float32], y_numeric=True)
        num_steps = self.num_steps
        if num_steps is None and self.batch_size is None:
            num_steps = DEFAULT_NUM_STEPS
        # scikit-learn's convention is flat parameters; jaxgd.fit's is settings values
        # (jaxgd.api.settings.group makes them).
        flat = {name: getattr(self, name) for name in (
            "optimizer", "schedule", "schedule_steps", "hyperparameters", "init_scale",
            "batch_size", "epochs", "batch_seed", "tol", "patience", "divergence_factor",
            "stop_at_convergence", "reference")}
        result = jaxgd_fit(X, y, learning_rate=self.learning_rate, num_steps=num_steps,
                           l2=self.l2, seed=self.seed, engine=self.engine, **group(flat))
        names = getattr(self, "feature_names_in_", None)
        self.result_ = result._replace(
            errors=None, feature_names=None if names is None else tuple(map(str, names)))
        self.coef_ = np.asarray(result.params.weight)
        self.intercept_ = float(result.params.bias)
        steps = result.steps_run if result.steps_run is not None else result.num_steps
        self.n_iter_ = int(steps)
        self.converged_ = bool(result.converged)
        self.diverged_ = bool(result.diverged)
        self.loss_curve_ = np.asarray(result.losses)
        self._warn_unless_converged(result)
        return self

    def _warn_unless_converged(self, result) -> None:
        if self.diverged_:
            warnings.warn(
                f"GDRegressor diverged at step {int(result.diverged_step)} with "
                f"learning_rate={self.learning_rate}: lower it, or standardize the features "
                "(e.g. a Pipeline with StandardScaler); its coefficients are where it "
                "stopped and predict nothing useful", ConvergenceWarning, stacklevel=3)
        elif result.stalled is not None and bool(result.stalled):
            warnings.warn(
                f"GDRegressor stalled after {self.n_iter_} steps "
                f"(learning_rate={self.learning_rate}): its loss stopped falling above the "
                "least-squares optimum's by more than float rounding allows, its steps too "
                "small to move its parameters; centre the targets (subtract their mean), "
                "standardize the features, or run in float64 (jax_enable_x64)",
                ConvergenceWarning, stacklevel=3)
        elif not self.converged_:
            warnings.warn(
                f"GDRegressor did not converge in {self.n_iter_} steps "
                f"(learning_rate={self.learning_rate}): raise num_steps or the learning "
                "rate, or standardize the features", ConvergenceWarning, stacklevel=3)

    def predict(self, X) -> np.ndarray:
        """Predictions ``X @ coef_ + intercept_``, shape ``(n_samples,)`` (NumPy, on the
        host: the same as ``result_.predict(X)`` to rounding, without compiling).

        Raises:
          NotFittedError: before ``fit``.
          ValueError: if ``X`` has another number of features (or other column names)
            than in ``fit``, or holds NaN or infinite values.

        Example:
          >>> import numpy as np
          >>> model = GDRegressor(learning_rate=0.3, num_steps=200)
          >>> model.fit(np.array([[0.0], [1.0]]), np.array([1.0, 3.0])).predict(
          ...     np.array([[0.5]])).round(3).tolist()
          [2.0]
        """
        check_is_fitted(self)
        X = _validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return X @ self.coef_ + self.intercept_
