"""What runs return: ``Descent``, ``FitResult``, ``SweepResult`` and ``GridResult``, as pytrees.

Every result is a frozen dataclass registered as a pytree whose leaves are arrays (and
``None`` for fields a run does not have); names, axes, the engine and the float64 reference
loss are static metadata. So results pass through the caller's ``jit``, ``vmap``, ``grad`` and
``jax.tree_util.tree_map`` like any pytree of arrays:

    >>> import jax, numpy as np, jaxgd
    >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
    >>> r = jaxgd.sweep(X, y, learning_rates=[0.1, 0.3], num_steps=20)
    >>> jax.tree_util.tree_map(lambda a: a[1], r).losses.shape
    (20,)

The per-run fields are defined once, in ``Descent``; the other three add what describes the
runs (learning rates, grid axes, engine, reference).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import jax
import numpy as np

from jaxgd.core import custom_model
from jaxgd.core.convergence import gap_to_optimum
from jaxgd.core.params import LinearParams
from jaxgd.core.record import PER_RUN, SHARED, Descent, freeze, pytree_record, thaw
from jaxgd.data.scaling import Standardizer, unstandardize_params
from jaxgd.inputs.validation import check_index
from jaxgd.results.errors import LazyErrors
from jaxgd.results.prediction import predict_runs


@dataclasses.dataclass(frozen=True, kw_only=True)
class Described(Descent):
    """What every result of ``fit`` and the sweeps adds to a ``Descent``: the engine that
    ran, the float64 reference loss (``reference`` in hashable form, ``optimal_loss`` as a
    float or array), the data's names and the steps each run was given, all static.

    ``feature_names`` (one per weight) and ``target_name`` come from a pandas DataFrame and
    Series (or any table with ``__array__`` and ``columns``/``name``, see ``jaxgd.inputs.frames``),
    or from the header of a CSV file streamed as a ``RowSource``; None for plain arrays and
    ``.npy`` files.

    ``errors`` (final MSE, RMSE and MAE per side, ``jaxgd.results.errors``; the validation side
    NaN for diverged runs, like ``final_validation_loss``; a user's model's from its
    ``predict``, None without one) is a ``LazyErrors``,
    computed the first time it is read; a plain dict given here is wrapped in one, so every
    result has the same pytree structure however it was made (run, loaded or by hand).
    """

    engine: str = "direct"
    reference: Any = None
    errors: Mapping | None = None
    feature_names: tuple[str, ...] | None = None
    target_name: str | None = None
    num_steps: int | None = None
    model: Any = None  # the user's jaxgd.Model that ran (None: linear regression)

    def __post_init__(self):
        if isinstance(self.errors, dict):
            object.__setattr__(self, "errors", LazyErrors(value=self.errors))

    @property
    def run_steps_executed(self) -> int:
        """Steps computed, summed over the runs (fewer than scheduled where finished or
        pruned runs left a segmented sweep early)."""
        return int(np.sum(np.asarray(self.steps_run, np.int64)))

    @property
    def run_steps_scheduled(self) -> int:
        """``num_steps`` times the number of runs: what a sweep without early exit costs."""
        return int(self.num_steps) * int(np.size(self.final_loss))

    @property
    def optimal_loss(self):
        return thaw(self.reference)

    @property
    def gap(self) -> np.ndarray:
        """Per run: ``final_loss - optimal_loss``, how far above the optimum it ended
        (float64).

        Never negative by rounding: a float32 loss can round below the float64 optimum's
        loss L* by a few ulps of L*, and a gap below 0 by no more than 16 ulps of L* in the
        loss's dtype (``jaxgd.core.convergence.RESOLUTION_ULPS``) is reported as 0. A gap further
        below 0 would be a bug and stays negative (``jaxgd.core.convergence.gap_to_optimum``).
        """
        if self.reference is None and self.model is not None:
            raise ValueError("no known optimum: a model's runs (model=) are judged by their "
                             "losses alone, without a reference loss")
        if self.reference is None:
            raise ValueError("no reference loss: run with reference=True on concrete data "
                             "(the float64 reference is computed on the host, so not under "
                             "tracing)")
        return gap_to_optimum(self.final_loss, self.optimal_loss)

    def named_params(self, standardizer=None) -> dict[str, Any]:
        """The parameters by name: ``{"weight": {feature: weight}, "bias": bias}``, as in
        the command line's summary.json; each value is a float for ``fit``, an array with
        the grid's shape for the sweeps.

        Args:
          standardizer: the ``Standardizer`` the features were standardized with, if any:
            the parameters are then mapped back to the data's original units
            (``unstandardize_params``), so each weight means "target per unit of feature".

        Names come from ``feature_names``, else from the standardizer's, else ``x0, x1,
        ...`` (as ``jaxgd.datasets.from_arrays``).

        Raises:
          ValueError: if the result's and the standardizer's names differ, or two features
            share a name (one of the two weights would be lost).

        Example:
          >>> import numpy as np, jaxgd
          >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
          >>> r = jaxgd.fit(X, y, learning_rate=0.3, num_steps=200)
          >>> {k: np.round(v, 3).tolist() for k, v in r.named_params()["weight"].items()}
          {'x0': 2.0}
        """
        if self.model is not None:
            raise ValueError("named_params names a linear model's weight and bias; this "
                             "result's params are its model's own pytree: read result.params")
        return named_params(self.params, self.feature_names, standardizer)

    def predict(self, X, standardizer: Standardizer | None = None) -> jax.Array:
        """Each run's predictions ``X @ weight + bias``: ``(n_samples,)`` for ``fit``,
        ``(*grid_shape, n_samples)`` for the sweeps (one row per run, a diverged run's from
        its frozen parameters). ``X`` is in the units the runs were fitted on, or, with the
        ``standardizer`` that made their features, in the original units. Works under
        ``jit``; see ``jaxgd.results.prediction.predict_runs``.

        Raises:
          ValueError: if ``X`` is not 2-D, has other features than the runs (a table:
            other columns), or holds NaN or infinite values; TypeError if not numbers.

        Example:
          >>> import numpy as np, jaxgd
          >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
          >>> r = jaxgd.sweep(X, y, learning_rates=[0.1, 0.3], num_steps=200)
          >>> predictions = r.predict(np.array([[2.0], [3.0]]))
          >>> predictions.shape, bool(np.allclose(predictions, [7.0, 9.0], atol=1e-3))
          ((2, 2), True)
        """
        if self.model is not None:  # a user's model: its own predict, run by run
            if standardizer is not None:
                X = standardizer.transform(X)
            return custom_model.predict_runs(self.model, self.params, X,
                                             np.ndim(self.final_loss))
        return predict_runs(self.params, X, feature_names=self.feature_names,
                            standardizer=standardizer)

    def to_dataframe(self):
        """The loss histories as a tidy pandas DataFrame: one row per run and logged step.

        Columns: the grid's axes (``learning_rate`` for ``fit``; ``learning_rate`` and
        ``seed`` for ``sweep``; every axis of ``grid_sweep``, in its order), ``step`` (the
        step of the entry, ``loss_steps``), ``loss`` (NaN after a run diverged), then the
        run's verdict, repeated on each of its rows: ``final_loss``, ``converged``,
        ``converged_step``, ``diverged``, ``diverged_step`` and ``stalled``. pandas is the
        optional ``pandas`` extra (``pip install "jaxgd[pandas]"``); see ``jaxgd.results.tables``.

        Example:
          >>> import numpy as np, jaxgd
          >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
          >>> r = jaxgd.sweep(X, y, learning_rates=[0.1, 0.3], num_steps=5)
          >>> table = r.to_dataframe()
          >>> table.shape, list(table.columns[:4])
          ((10, 9), ['learning_rate', 'step', 'loss', 'final_loss'])
        """
        from jaxgd.results import tables  # pandas is loaded only here

        return tables.to_dataframe(self)

    def save(self, path, *, overwrite: bool = False):
        """Writes the result to the folder ``path``: history.npz and summary.json, as the
        command line's results folder (no pickle); ``jaxgd.load(path)`` reads it back.

        Returns the folder's path. See ``jaxgd.results.saving`` for the format and for
        ``overwrite``.

        Example:
          >>> import numpy as np, tempfile, pathlib, jaxgd
          >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
          >>> r = jaxgd.fit(X, y, learning_rate=0.3, num_steps=20)
          >>> folder = r.save(pathlib.Path(tempfile.mkdtemp()) / "run")
          >>> bool((jaxgd.load(folder).losses == r.losses).all())
          True
        """
        from jaxgd.results import saving

        return saving.save(self, path, overwrite=overwrite)


#: The static fields of every ``Described`` result.
DESCRIBED_META = ("engine", "reference", "feature_names", "target_name", "num_steps",
                  "model")


@pytree_record(*DESCRIBED_META)
@dataclasses.dataclass(frozen=True, kw_only=True)
class FitResult(Described):
    """The outcome of ``fit``: a ``Descent`` of ``LinearParams``, plus what describes the run.

    Attributes:
      learning_rate: the learning rate used (an array).
      engine: the engine that ran, "direct", "gram", "eigen" or a fused one (static).
      optimal_loss: the least-squares (ridge, with l2) optimum's loss in float64 when
        ``reference=True`` and the data are concrete, else None (static). With l2 > 0 every
        loss here is the ridge objective.
    """

    learning_rate: jax.Array

    def axis_grid(self) -> dict[str, np.ndarray]:
        """Each grid axis's value at every run, by name, shaped like the grid: here the
        one run's learning rate."""
        return {"learning_rate": np.asarray(self.learning_rate)}


@pytree_record("axes", *DESCRIBED_META)
@dataclasses.dataclass(frozen=True, kw_only=True)
class GridResult(Described):
    """The outcome of ``grid_sweep``: every per-run field has the grid's axes first.

    ``losses`` is ``(*grid_shape, num_logs)``, ``params.weight`` ``(*grid_shape, d)``,
    ``snapshots.weight`` ``(*grid_shape, n_snapshots, d)``; the axes follow ``axes``;
    ``snapshot_steps`` and ``loss_steps`` are shared by every run.

    Attributes:
      axes: the grid's axis names, in order (e.g. ``("learning_rate", "b1", "seed")``);
        with drawn points (``grid_sweep(sample=...)``) the first is "sample".
      values: each axis's values, by name; with a "sample" axis, also each drawn
        hyperparameter's values along it (``values["learning_rate"][i]`` is sample i's),
        and ``values["sample"]`` holds the point numbers 0, 1, ...
      fixed: the values every run shares (learning rate, seed, l2, hyperparameters not in
        the grid), by name, as 0-d arrays (leaves like every other).
      engine: the engine that ran.
      optimal_loss: the least-squares (ridge) optimum's loss: a float, or an array that
        broadcasts against the grid when l2 is one of its axes; None without reference.
      refined: with ``grid_sweep(refine=...)``, the ``jaxgd.results.refined.Refinement`` of the
        best points (their paths and the refined runs); else None.
    """

    axes: tuple[str, ...]
    values: dict[str, Any]
    fixed: dict[str, Any]
    refined: Any = None

    @property
    def sampled(self) -> tuple[str, ...]:
        """The hyperparameters that vary along the "sample" axis (drawn, not gridded)."""
        return tuple(name for name in self.values if name not in self.axes)

    def best(self, by: str | None = None) -> tuple[int, ...]:
        """Grid index of the lowest final loss among runs that did not diverge (ties: the
        one that converged first; see ``best_index``).

        Args:
          by: "validation" (the held-out MSE, ``final_validation_loss``; the default when
            the runs have held-out data) or "training" (``final_loss``, the default
            without). With k folds (a "fold" axis) each hyperparameter point is judged by
            its mean over the folds (a diverged fold rules the point out), and the index
            leaves the fold axis out.

        Raises:
          ValueError: if every run diverged, or ``by`` is unknown or has no losses.
        """
        final = self.final_validation_loss if _selection(self, by) == "validation" \
            else self.final_loss
        diverged, converged = np.asarray(self.diverged), np.asarray(self.converged_step)
        if "fold" in self.axes:
            axis = self.axes.index("fold")
            final = np.mean(np.asarray(final, np.float64), axis=axis)
            diverged = diverged.any(axis=axis)
            converged = np.where((converged >= 0).all(axis=axis), converged.max(axis=axis), -1)
        index = best_index(final, diverged, converged)
        if index is None:
            raise ValueError("every run diverged: no best run; try smaller learning rates")
        return index

    def axis_grid(self) -> dict[str, np.ndarray]:
        """Each axis's value at every run, by name, shaped like the grid.

        Example:
          >>> g = GridResult(params=None, losses=None, final_loss=None, converged_step=None,
          ...                diverged=None, diverged_step=None, snapshots=None,
          ...                snapshot_steps=None, loss_steps=None, axes=("a", "b"),
          ...                values={"a": [1, 2], "b": [5, 6, 7]}, fixed={})
          >>> g.axis_grid()["b"].tolist()
          [[5, 6, 7], [5, 6, 7]]
        """
        mesh = np.meshgrid(*(np.asarray(self.values[axis]) for axis in self.axes),
                           indexing="ij")
        return dict(zip(self.axes, mesh, strict=True))

    def point(self, index: Sequence[int]) -> dict[str, float]:
        """The hyperparameter values at a grid index, by name (at a "sample" index: each
        drawn hyperparameter's value there; an index without the fold entry, as ``best``
        gives with k folds, names the hyperparameters only)."""
        axes, index = self.axes, check_index(index)
        if "fold" in axes and len(index) == len(axes) - 1:
            axes = tuple(a for a in axes if a != "fold")
        point = {}
        for axis, i in zip(axes, index, strict=True):
            names = self.sampled if axis == "sample" else (axis,)
            point.update({name: np.asarray(self.values[name])[i].item() for name in names})
        return point

    def run(self, index: Sequence[int]) -> FitResult:
        """One run as a ``FitResult``: an index on every axis. With k folds a run is one
        fold's, so the index names the fold too: ``run((*best(), fold))``. Entries may be
        NumPy or JAX integers, so ``run(np.unravel_index(...))`` works, and a one-axis grid
        takes one integer alone, as ``np.argmin`` gives it.

        Raises:
          TypeError: if an entry is not an integer (a float, a bool), or is traced.
          ValueError: if the index has not one entry per axis (naming the fold axis when
            only it is missing, as with ``best()``'s index under k folds).
          IndexError: if an entry is out of range.
        """
        index = check_index(index)
        if len(index) != len(self.axes):
            hint = ""
            if "fold" in self.axes and len(index) == len(self.axes) - 1:
                k = np.size(self.values["fold"])
                hint = (f"; with k_folds a run is one fold's, so add the fold (0 to {k - 1}),"
                        f" e.g. run((*best(), 0)): best() leaves the fold axis out")
            raise ValueError(f"index needs {len(self.axes)} entries (axes {self.axes}), "
                             f"got {index}{hint}")
        # Index on the host: eager indexing of device arrays compiles a program per field.
        take = lambda tree: jax.tree_util.tree_map(  # noqa: E731
            lambda leaf: np.asarray(leaf)[index], tree)
        optimal = self.optimal_loss
        if optimal is not None and np.ndim(optimal):
            optimal = float(np.broadcast_to(optimal, np.shape(self.final_loss))[index])
        rate = {**self.fixed, **self.point(index)}["learning_rate"]
        per_run = {name: take(getattr(self, name)) for name in PER_RUN if name != "errors"}
        errors = None if self.errors is None else self.errors.at(index)
        return FitResult(
            **per_run,
            snapshot_steps=np.asarray(self.snapshot_steps),
            loss_steps=np.asarray(self.loss_steps),
            learning_rate=np.asarray(rate, np.asarray(self.final_loss).dtype),
            engine=self.engine,
            reference=freeze(optimal),
            errors=errors,
            feature_names=self.feature_names,
            target_name=self.target_name,
            num_steps=self.num_steps,
            model=self.model,
        )


@pytree_record(*DESCRIBED_META)
@dataclasses.dataclass(frozen=True, kw_only=True)
class SweepResult(Described):
    """The outcome of ``sweep``: every per-run field has the grid's axes first, steps last.

    The grid is (learning rate,) without seeds and (learning rate, seed) with them, so
    ``losses`` is ``(K, num_logs)`` or ``(K, S, num_logs)``; ``params.weight`` is
    ``(K, [S,] n_features)``; ``snapshots.weight`` is ``(K, [S,] n_snapshots, n_features)``.

    Attributes:
      learning_rates: ``(K,)``.
      seeds: ``(S,)``, or None when the sweep had no seed axis.
      folds: ``(k,)`` with ``k_folds=k`` (a last grid axis, "fold"), else None.
      axes, values: the grid's axis names and their values, as ``GridResult``'s (``Grid``).
      engine: the engine that ran, "direct", "gram", "eigen" or a fused one.
      optimal_loss: least-squares MSE (float64) when ``reference=True``, else None.
    """

    learning_rates: jax.Array
    seeds: jax.Array | None = None
    folds: jax.Array | None = None

    @property
    def axes(self) -> tuple[str, ...]:
        """The grid's axis names, as ``GridResult.axes``: ``("learning_rate",)``, then
        "seed" with seeds and "fold" with k folds."""
        return tuple(self.values)

    @property
    def values(self) -> dict[str, Any]:
        """Each axis's values, by name, as ``GridResult.values``."""
        given = {"learning_rate": self.learning_rates, "seed": self.seeds, "fold": self.folds}
        return {name: value for name, value in given.items() if value is not None}

    def point(self, index: int | Sequence[int]) -> dict[str, Any]:
        """The learning rate (and seed) at a grid index, by name, as ``GridResult.point``.

        Example:
          >>> import numpy as np, jaxgd
          >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
          >>> r = jaxgd.sweep(X, y, learning_rates=[0.1, 0.3], seeds=[4, 5], num_steps=5)
          >>> r.axes, r.point((1, 0))["seed"], round(r.point((1, 0))["learning_rate"], 6)
          (('learning_rate', 'seed'), 4, 0.3)
        """
        return self.as_grid().point(index)

    def best(self, by: str | None = None) -> tuple[int, ...]:
        """Grid index of the lowest final loss among runs that did not diverge, by held-out
        loss when there is one (see ``GridResult.best``).

        Raises:
          ValueError: if every run diverged (there is no best run to report).
        """
        return self.as_grid().best(by)

    def run(self, index: int | tuple[int, ...]) -> FitResult:
        """One run as a ``FitResult``, e.g. ``result.run(result.best())`` or, without
        seeds, ``result.run(np.argmin(result.final_loss))``; with k folds name the fold
        too, ``result.run((*result.best(), fold))`` (see ``GridResult.run``)."""
        return self.as_grid().run(index)

    def axis_grid(self) -> dict[str, np.ndarray]:
        """Each axis's value (learning rate, seed) at every run, shaped like the grid."""
        return self.as_grid().axis_grid()

    def as_grid(self) -> GridResult:
        """The same runs as a ``GridResult`` over (learning_rate[, seed])."""
        shared = {name: getattr(self, name) for name in (*PER_RUN, *SHARED)}
        return GridResult(**shared, axes=self.axes, values=self.values, fixed={},
                          engine=self.engine,
                          reference=self.reference, feature_names=self.feature_names,
                          target_name=self.target_name,
                          num_steps=self.num_steps, model=self.model)


@runtime_checkable
class Grid(Protocol):
    """What ``SweepResult`` and ``GridResult`` both answer, with the same meaning: the grid's
    ``axes`` and their ``values``, the hyperparameters at an index (``point``), one run
    (``run``), the best index (``best``) and each axis's value at every run (``axis_grid``).

    Example:
      >>> import numpy as np, jaxgd
      >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
      >>> r = jaxgd.sweep(X, y, learning_rates=[0.1, 0.3], num_steps=20)
      >>> isinstance(r, Grid), r.point(r.best()) == r.as_grid().point(r.best())
      (True, True)
    """

    axes: tuple[str, ...]
    values: dict[str, Any]

    def point(self, index) -> dict[str, Any]: ...
    def run(self, index) -> FitResult: ...
    def best(self, by: str | None = None) -> tuple[int, ...]: ...
    def axis_grid(self) -> dict[str, np.ndarray]: ...


def _selection(result: Described, by: str | None) -> str:
    """What ``best`` ranks by: "validation" by default when there are held-out losses."""
    held = result.final_validation_loss is not None
    if by is None:
        return "validation" if held else "training"
    if by not in ("validation", "training"):
        raise ValueError(f"by must be 'validation' or 'training', got {by!r}")
    if by == "validation" and not held:
        raise ValueError("by='validation' needs held-out data: run with validation=, "
                         "validation_fraction= or k_folds=")
    return by


def best_index(final_loss, diverged, converged_step=None) -> tuple[int, ...] | None:
    """Index of the lowest final loss among runs that did not diverge; None if all did.

    Among runs with the same final loss (several learning rates reach the optimum to the
    last digit), the one that converged first wins: it got there with the fewest steps.

    Example:
      >>> best_index(np.array([3.0, 1.0, 0.5]), np.array([False, False, True]))
      (1,)
      >>> best_index(np.array([1.0, 1.0]), np.array([False, False]), np.array([900, 300]))
      (1,)
    """
    final = np.asarray(final_loss, np.float64)
    usable = ~np.asarray(diverged, bool) & np.isfinite(final)
    if not usable.any():
        return None
    losses = np.where(usable, final, np.inf).reshape(-1)
    steps = np.zeros(losses.size)
    if converged_step is not None:
        converged = np.asarray(converged_step, np.float64).reshape(-1)
        steps = np.where(converged >= 0, converged, np.inf)
    flat_index = np.lexsort((steps, losses))[0]  # by loss, then by convergence step
    return tuple(int(i) for i in np.unravel_index(flat_index, final.shape))


def named_params(params, feature_names: Sequence[str] | None,
                 standardizer: Standardizer | None = None) -> dict[str, Any]:
    """``{"weight": {name: weight}, "bias": bias}`` of ``LinearParams`` (in original units
    with a ``standardizer``), the weights taken along the last axis; see
    ``Described.named_params``.

    Example:
      >>> named_params(LinearParams(np.array([2.0, -1.0]), np.array(0.5)), ("a", "b"))
      {'weight': {'a': 2.0, 'b': -1.0}, 'bias': 0.5}
    """
    given = None if standardizer is None else standardizer.feature_names
    if feature_names is not None and given is not None and tuple(feature_names) != given:
        raise ValueError(f"the result's features {tuple(feature_names)} are not the "
                         f"standardizer's {given}: pass the Standardizer fitted on these "
                         "features, in this order")
    if standardizer is not None:
        params = unstandardize_params(LinearParams(np.asarray(params.weight),
                                                   np.asarray(params.bias)), standardizer)
    weight = np.asarray(params.weight)
    names = feature_names or given or tuple(f"x{i}" for i in range(weight.shape[-1]))
    doubled = sorted({n for n in names if list(names).count(n) > 1})
    if doubled:
        raise ValueError(f"features {doubled} appear more than once: rename them so that "
                         "every weight has a name of its own")
    value = lambda a: a.item() if a.ndim == 0 else a  # noqa: E731  (floats for one run)
    return {"weight": {str(n): value(weight[..., i]) for i, n in enumerate(names)},
            "bias": value(np.asarray(params.bias))}
