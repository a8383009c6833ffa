"""Loading saved results back: ``jaxgd.load(path)`` reads a folder that ``result.save`` wrote.

The format is ``jaxgd.results.saving``'s. Every entry of summary.json is checked and every
array's shape is checked against the grid before a result is built, so a damaged folder
fails here, naming the file, and not later in the caller's code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jaxgd.core.params import LinearParams
from jaxgd.core.record import PER_RUN, freeze, thaw
from jaxgd.results.files import ResultsError, load_npz, read_json
from jaxgd.results.refined import Refinement
from jaxgd.results.result import FitResult, GridResult, SweepResult
from jaxgd.results.saving import DICT_PREFIX, HISTORY, SUMMARY, brief, read_summary

KINDS = {cls.__name__: cls for cls in (FitResult, SweepResult, GridResult)}


def read_folder(path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A results folder's arrays and summary as stored (``jaxgd plot`` draws from them; a
    folder of ``jaxgd run`` holds more than the result ``load`` builds).

    Raises:
      FileNotFoundError: if history.npz or summary.json is missing.
      ResultsError: if either is damaged (not an .npz of plain arrays, not a JSON object).

    Example:
      >>> import numpy as np, tempfile, pathlib, jaxgd
      >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
      >>> r = jaxgd.fit(X, y, learning_rate=0.3, num_steps=4)
      >>> arrays, summary = read_folder(r.save(pathlib.Path(tempfile.mkdtemp()) / "run"))
      >>> summary["kind"], arrays["losses"].shape
      ('FitResult', (4,))
    """
    path = Path(path)
    for name in (HISTORY, SUMMARY):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path} is not a jaxgd results folder: no {name}")
    arrays, summary = load_npz(path / HISTORY), read_json(path / SUMMARY)
    if not isinstance(summary, dict):
        raise ResultsError(f"{path / SUMMARY} is not a jaxgd summary (not a JSON object)")
    return arrays, summary


def load(path) -> FitResult | SweepResult | GridResult:
    """Reads a result that ``result.save`` wrote; its arrays come back as NumPy arrays.

    Nothing is unpickled: history.npz is read with ``allow_pickle=False``.

    Raises:
      FileNotFoundError: if ``path`` is not a folder holding summary.json and history.npz.
      ValueError: (``jaxgd.results.files.ResultsError``, naming the file) if a file is damaged,
        is not of this format (summary.json's every entry is checked), lacks an array it
        names, or holds arrays whose shapes disagree (each run's fields with the grid's
        axes, the histories with their steps: see ``_check_shapes``).

    Example:
      >>> import numpy as np, tempfile, pathlib, jaxgd
      >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
      >>> r = jaxgd.fit(X, y, learning_rate=0.3, num_steps=20)
      >>> back = jaxgd.load(r.save(pathlib.Path(tempfile.mkdtemp()) / "run"))
      >>> back.engine == r.engine, float(back.final_loss) == float(r.final_loss)
      (True, True)
    """
    path = Path(path)
    for name in (SUMMARY, HISTORY):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path} is not a saved jaxgd result: no {name}")
    summary = read_summary(path / SUMMARY)
    arrays = load_npz(path / HISTORY)
    try:
        return _build(summary, arrays, path)
    except RecursionError:  # JSON nested within the parser's reach, not within ours
        raise ResultsError(f"{path / SUMMARY} is nested too deeply to read (past Python's "
                           "recursion limit)") from None


def decode(arrays: dict[str, np.ndarray], summary: dict[str, Any], where="arrays"
           ) -> FitResult | SweepResult | GridResult:
    """The result that ``jaxgd.results.saving.encode`` gave ``arrays`` and ``summary`` for,
    kept elsewhere than in a folder of its own (``jaxgd run`` keeps each chunk's in one
    file); ``where`` names them in messages.

    Raises:
      ValueError: (``ResultsError``) as ``load``, if they are not what ``encode`` gives.

    Example:
      >>> import numpy as np, jaxgd
      >>> from jaxgd.results.saving import encode
      >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
      >>> r = jaxgd.sweep(X, y, learning_rates=[0.1, 0.3], num_steps=5)
      >>> back = decode(*encode(r))
      >>> bool((back.losses == r.losses).all()), back.engine == r.engine
      (True, True)
    """
    try:
        return _build(summary, arrays, Path(where))
    except RecursionError:
        raise ResultsError(f"{where} is nested too deeply to read") from None


def _build(stored: dict[str, Any], arrays: dict[str, np.ndarray], path: Path,
           prefix: str = ""):
    """A result from its part of summary.json (``_describe``) and history.npz's arrays, whose
    names all start with ``prefix`` (empty but for results inside a result).

    Raises:
      ResultsError: naming the file, if summary.json is not as ``save`` writes it or the
        arrays' shapes disagree (``_check_shapes``).
    """
    stored = _object(stored, "a result" if not prefix else f"the result {prefix!r}", path)
    kind = stored.get("kind")
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ResultsError(f"{path / SUMMARY}: unknown kind of result {brief(kind)}"
                           f" (known: {', '.join(KINDS)})")
    values = _decode_fields(cls, _object(stored.get("fields", {}), '"fields"', path), arrays,
                            path, prefix)
    values.update(_meta(cls, stored.get("meta", {}), path))
    values["reference"] = _reference(stored.get("reference"), arrays, path, prefix)
    result = _construct(cls, values, path)
    _check_shapes(result, path, prefix)
    return result


def _object(value, what: str, path: Path) -> dict:
    """``value`` if it is a JSON object (a dict), else a ResultsError naming ``what``."""
    if not isinstance(value, dict):
        raise ResultsError(f"{path / SUMMARY}: {what} must be a JSON object, got "
                           f"{brief(value)}")
    return value


#: What each static field of summary.json's "meta" holds, as checked on load.
_META = {
    "engine": ("a string", lambda v: isinstance(v, str)),
    "target_name": ("a string or null", lambda v: v is None or isinstance(v, str)),
    "num_steps": ("a whole number or null",
                  lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool))),
    "feature_names": ("a list of strings or null",
                      lambda v: v is None or (isinstance(v, tuple)
                                              and all(isinstance(n, str) for n in v))),
    "axes": ("a list of strings", lambda v: isinstance(v, tuple)
             and all(isinstance(n, str) for n in v)),
}


def _meta(cls, meta, path: Path) -> dict[str, Any]:
    """The static fields of ``cls`` in summary.json's "meta", checked."""
    fields = {f.name for f in dataclasses.fields(cls)}
    meta = _object(meta, '"meta"', path)
    values = {name: _tuples(value) for name, value in meta.items() if name in fields}
    for name, value in values.items():
        what, holds = _META.get(name, ("anything", lambda v: True))
        if not holds(value):
            raise ResultsError(f'{path / SUMMARY}: "meta": {name} must be {what}, got '
                               f"{brief(meta[name])}")
    return values


def _decode_fields(cls, stored: dict[str, Any], arrays, path: Path, prefix: str) -> dict:
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(stored) - fields)
    if unknown:
        raise ResultsError(f"{path / SUMMARY}: fields {unknown} are not fields of "
                           f"{cls.__name__}: saved by another version of jaxgd?")
    values = {name: _decode(name, how, arrays, path, prefix) for name, how in stored.items()}
    for name, value in values.items():
        _check_stored_as(name, value, path)
    return values


#: How fields that are not arrays are stored (the rest: "array", or "none" when None).
_STORED_AS = {"params": LinearParams, "snapshots": LinearParams, "values": dict,
              "fixed": dict, "errors": dict, "path": dict, "gradient": dict,
              "refined": Refinement}
#: How summary.json calls each way of storing a field.
_HOW = {LinearParams: '{"params": ...}', dict: '{"dict": ...}',
        Refinement: '{"refinement": ...}', np.ndarray: '"array"'}
#: Fields that hold any pytree (an array, or a dict of them).
_ANY_TREE = ("aux", "observed")


def _check_stored_as(name: str, value, path: Path) -> None:
    """Refuses a field stored in another way than ``save`` stores it: loaded, it would fail
    later, far from the file (a params that is an array has no ``.weight``)."""
    want = _STORED_AS.get(name, np.ndarray)
    if value is None or isinstance(value, want) or name in _ANY_TREE:
        return
    got = next((how for kind, how in _HOW.items() if isinstance(value, kind)), "a number")
    raise ResultsError(f"{path / SUMMARY}: field {name} must be stored as {_HOW[want]}, not "
                       f"as {got}")


def _construct(cls, values: dict[str, Any], path: Path):
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in values
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ResultsError(f"{path / SUMMARY}: {cls.__name__} needs {missing}, which were not "
                           "saved")
    return cls(**values)


def _decode(name: str, how, arrays: dict[str, np.ndarray], path: Path, prefix: str = ""):
    def take(key: str) -> np.ndarray:
        if key not in arrays:
            raise ResultsError(f"{path / HISTORY} has no array {key!r} (field {name})")
        return arrays[key]

    if how == "none":
        return None
    if how == "array":
        return take(prefix + name)
    if isinstance(how, dict) and set(how) == {"array"} and isinstance(how["array"], str):
        return take(how["array"])  # stored under another name (``saving.encode``)
    if isinstance(how, dict) and "refinement" in how:
        inner = f"{prefix}{name}_"
        stored = _object(how["refinement"], f'field {name}: "refinement"', path)
        values = _decode_fields(Refinement, stored, arrays, path, inner)
        values["runs"] = _build(how.get("runs", {}), arrays, path, f"{inner}runs_")
        return _construct(Refinement, values, path)
    if isinstance(how, dict) and "params" in how:
        if not isinstance(how["params"], str):
            raise ResultsError(f'{path / SUMMARY}: field {name}: "params" must be a prefix '
                               f"of array names (a string), got {brief(how['params'])}")
        return LinearParams(take(f"{how['params']}weight"), take(f"{how['params']}bias"))
    if isinstance(how, dict) and "dict" in how:
        entries = _object(how["dict"], f'field {name}: "dict"', path)
        return {key: _entry(name, key, entry, arrays, path, take)
                for key, entry in entries.items()}
    raise ResultsError(f"{path / SUMMARY}: field {name} is stored in an unknown way: {how!r}")


def _entry(name: str, key: str, entry, arrays, path: Path, take):
    """One entry of a dict field: a JSON number, a field of its own, or an array."""
    where = f"{path / SUMMARY}: field {name}: entry {key!r}"
    entry = _object(entry, f"field {name}: entry {key!r}", path)
    if len(set(entry) & {"json", "field", "array"}) != 1:
        raise ResultsError(f'{where} needs one of "json", "field", "array", got '
                           f"{brief(entry)}")
    if "json" in entry:
        if not isinstance(entry["json"], bool | int | float):
            raise ResultsError(f'{where}: "json" must be a number, got {brief(entry["json"])}')
        return np.asarray(entry["json"])  # every leaf an array (older folders wrote numbers)
    if "field" in entry:
        return _decode(f"{name}[{key!r}]", entry["field"], arrays, path)
    if not isinstance(entry["array"], str):
        raise ResultsError(f'{where}: "array" must name an array (a string), got '
                           f"{brief(entry['array'])}")
    return take(entry["array"])


def _reference(how, arrays: dict[str, np.ndarray], path: Path, prefix: str = ""):
    if how is None:
        return None
    name = f"{prefix}optimal_loss"
    if isinstance(how, dict) and len(how) == 1 and isinstance(next(iter(how.values())), str):
        (how, name), = how.items()  # stored under another name (``saving.encode``)
    if how not in ("scalar", "array"):
        raise ResultsError(f'{path / SUMMARY}: "reference" must be "scalar", "array" or null, '
                           f"got {brief(how)}")
    if name not in arrays:
        raise ResultsError(f"{path / HISTORY} has no array '{name}'")
    optimal = arrays[name]
    if how == "scalar" and optimal.ndim:
        raise ResultsError(f"{path / HISTORY}: {name} has shape "
                           f'{optimal.shape}, but summary.json stores it as "scalar"')
    return float(optimal) if how == "scalar" else freeze(optimal)


#: What follows the grid's axes in the shape of a run's arrays: one entry per logged step
#: ("logs"), per snapshot, per feature; None: anything. The rest: nothing (one value a run).
_TRAILING = {"losses": ("logs",), "validation_losses": ("logs",),
             "params.weight": ("features",), "snapshots.weight": ("snapshots", "features"),
             "snapshots.bias": ("snapshots",), "epoch_losses": None, "aux": None,
             "observed": None}


def _check_shapes(result, path: Path, prefix: str = "") -> None:
    """Refuses arrays whose shapes disagree: each run's fields against the grid (the axes'
    values), the histories against their steps, the weights against one width (the
    feature names', else the snapshots'). Loaded, they would fail later, far from the file.

    Example:
      >>> import jaxgd
      >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
      >>> r = jaxgd.sweep(X, y, learning_rates=[0.1, 0.3], num_steps=4)
      >>> _check_shapes(r._replace(losses=np.zeros((3, 4))), Path("run"))
      Traceback (most recent call last):
      jaxgd.results.files.ResultsError: run/history.npz: losses has shape (3, 4), not (2, 4): the \
grid's shape is (2,), with 4 loss_steps, 3 snapshot_steps and 1 features
    """
    where = f"{path / HISTORY}: {prefix}"
    grid = _grid_shape(result, path, prefix)
    sizes = {"logs": _steps(result.loss_steps, "loss_steps", where),
             "snapshots": _steps(result.snapshot_steps, "snapshot_steps", where),
             "features": _width(result)}
    why = (f": the grid's shape is {grid}, with {sizes['logs']} loss_steps, "
           f"{sizes['snapshots']} snapshot_steps and {sizes['features']} features")
    for field in PER_RUN:
        for label, leaf in _leaves(field, getattr(result, field)):
            trailing = _TRAILING.get(label, _TRAILING.get(field, ()))
            want = grid + (None,) * (np.ndim(leaf) - len(grid)) if trailing is None \
                else grid + tuple(sizes[size] for size in trailing)
            _expect(leaf, want, where + label, why)
    optimal = thaw(result.reference)
    if np.ndim(optimal) and _broadcast(np.shape(optimal), grid) != grid:
        raise ResultsError(f"{where}optimal_loss has shape {np.shape(optimal)}, which does "
                           f"not broadcast against the grid's {grid}")
    if getattr(result, "refined", None) is not None:
        # With k folds the start points are grid points: their index leaves the fold out.
        folds = "fold" in getattr(result, "axes", ())
        _check_refinement(result.refined, grid[:-1] if folds else grid, path, prefix)


def _grid_shape(result, path: Path, prefix: str) -> tuple[int, ...]:
    """The grid's shape, from its axes' values (each 1-D; drawn values as long as the
    "sample" axis)."""
    where = f"{path / HISTORY}: {prefix}"
    if isinstance(result, FitResult):
        _expect(result.learning_rate, (), f"{where}learning_rate", ": one run's")
        return ()
    if isinstance(result, SweepResult):
        axes = {"learning_rates": result.learning_rates, "seeds": result.seeds,
                "folds": result.folds}
    else:
        missing = [axis for axis in result.axes if axis not in result.values]
        if missing:
            raise ResultsError(f'{path / SUMMARY}: the axes {missing} have no values in the '
                               f'{prefix}"values" field')
        axes = {DICT_PREFIX["values"] + axis: result.values[axis] for axis in result.axes}
    for label, values in axes.items():
        if values is not None and np.ndim(values) != 1:
            raise ResultsError(f"{where}{label} has shape {np.shape(values)}: a grid axis's "
                               "values must be 1-D")
    grid = tuple(np.size(values) for values in axes.values() if values is not None)
    if isinstance(result, GridResult) and "sample" in result.axes:
        drawn = (grid[result.axes.index("sample")],)
        for name in result.sampled:
            _expect(result.values[name], drawn, where + DICT_PREFIX["values"] + name,
                    ": as long as the \"sample\" axis")
    return grid


def _check_refinement(refined: Refinement, grid: tuple[int, ...], path: Path,
                      prefix: str) -> None:
    """A refinement's paths: one row per refined run, one column per step (and its start)."""
    where = f"{path / HISTORY}: {prefix}refined."
    top = _grid_shape(refined.runs, path, f"{prefix}refined_runs_")[:1] or (None,)
    objective = np.shape(refined.objective)
    steps = objective[1] - 1 if len(objective) == 2 else None
    want = {"start": (*top, len(grid)), "objective": (*top, None),
            "path": (*top, None if steps is None else steps + 1),
            "step_size": (*top, steps), "gradient": (*top, steps)}
    why = f": {top[0]} refined runs, {steps} steps, a grid of {len(grid)} axes"
    for field, shape in want.items():
        for label, leaf in _leaves(field, getattr(refined, field)):
            _expect(leaf, shape, where + label, why)


def _leaves(name: str, value):
    """``(label, array)`` for each array in a field (a LinearParams's, a dict's)."""
    if value is None:
        return
    if isinstance(value, LinearParams):
        yield f"{name}.weight", value.weight
        yield f"{name}.bias", value.bias
    elif isinstance(value, Mapping):
        for key, entry in value.items():
            yield from _leaves(f"{name}[{key!r}]", entry)
    else:
        yield name, value


def _expect(leaf, want: tuple, label: str, why: str) -> None:
    """Refuses ``leaf`` unless its shape is ``want`` (None: any length there)."""
    shape = np.shape(leaf)
    if len(shape) != len(want) or any(w is not None and s != w
                                      for s, w in zip(shape, want, strict=True)):
        text = ", ".join("any" if n is None else str(n) for n in want)
        text = f"({text}{',' if len(want) == 1 else ''})"
        raise ResultsError(f"{label} has shape {shape}, not {text}{why}")


def _steps(steps, name: str, where: str) -> int | None:
    if steps is None:
        return None
    if np.ndim(steps) != 1:
        raise ResultsError(f"{where}{name} has shape {np.shape(steps)}: the steps must be 1-D")
    return np.size(steps)


def _width(result) -> int | None:
    """The number of features: the names', else the weights' last axis (snapshots' first)."""
    if result.feature_names is not None:
        return len(result.feature_names)
    for params in (result.snapshots, result.params):
        if isinstance(params, LinearParams) and np.ndim(params.weight):
            return np.shape(params.weight)[-1]
    return None


def _broadcast(shape: tuple, grid: tuple) -> tuple | None:
    try:
        return np.broadcast_shapes(shape, grid)
    except ValueError:
        return None


def _tuples(value):
    """JSON's lists back to the tuples that static metadata holds."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
