"""Saving results and loading them back: ``result.save(path)`` and ``jaxgd.load(path)``.

A saved result is a folder in the format of the command line's results folder, without
pickle: ``history.npz`` holds the arrays, under the results folder's names where they mean
the same (``losses``, ``loss_steps``, ``final_loss``, ``converged_step``, ``diverged``,
``diverged_step``, ``stalled``, ``snapshot_steps``, ``snapshot_weight``, ``snapshot_bias``,
``learning_rates``, ``seeds``, ``grid_axes``, ``grid_values_<axis>``, ``optimal_loss``,
with held-out data ``validation_losses`` and ``final_validation_loss``, and the RMSE and
MAE as ``errors_<side>_<metric>``; the final parameters as ``weight`` and ``bias``), in
their own dtypes and in the units the run trained in; ``summary.json`` holds the rest:
the kind of result, the engine, the feature and target names, the grid's axes and fixed
values, and how each field is stored. A refined search's ``refined``
(``jaxgd.refinement.Refinement``) is stored field by field under ``refined_<field>``, its
refined runs (a ``GridResult``) as a result of their own under ``refined_runs_<name>``.

``load`` gives back a result equal to the saved one leaf by leaf (as NumPy arrays) with the
same static metadata. Writing goes to a temporary folder beside ``path``, renamed into place
when complete: an interrupted save leaves no half-written folder. An existing ``path`` is
replaced only with ``overwrite=True``, and only if it is a folder ``save`` wrote (a
``summary.json`` of this format and ``history.npz``, nothing else), so nothing of yours is
ever deleted.

Example:
  >>> import numpy as np, tempfile, pathlib, jaxgd
  >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
  >>> r = jaxgd.sweep(X, y, learning_rates=[0.1, 0.3], num_steps=20)
  >>> folder = save(r, pathlib.Path(tempfile.mkdtemp()) / "sweep")
  >>> sorted(p.name for p in folder.iterdir())
  ['history.npz', 'summary.json']
  >>> back = load(folder)
  >>> type(back).__name__, back.losses.shape, bool((back.losses == r.losses).all())
  ('SweepResult', (2, 20), True)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxgd.files import (
    ResultsError,
    _umask,
    load_npz,
    parse_json,
    to_json,
    write_atomic,
    write_npz,
)
from jaxgd.params import LinearParams
from jaxgd.refinement import Refinement
from jaxgd.result import PER_RUN, FitResult, GridResult, SweepResult, freeze, thaw

FORMAT = "jaxgd.result"
FORMAT_VERSION = 1
SUMMARY = "summary.json"
HISTORY = "history.npz"
KINDS = {cls.__name__: cls for cls in (FitResult, SweepResult, GridResult)}
#: Where a ``LinearParams`` field's weight and bias go: ``<prefix>weight``, ``<prefix>bias``.
_PARAMS_PREFIX = {"params": "", "snapshots": "snapshot_"}
#: Where a dict field's entries go: ``<prefix><key>``.
_DICT_PREFIX = {"values": "grid_values_"}


def save(result, path, *, overwrite: bool = False) -> Path:
    """Writes ``result`` (a ``FitResult``, ``SweepResult`` or ``GridResult``) to the folder
    ``path``; returns it. See the module's docstring for the format.

    Raises:
      FileExistsError: if ``path`` exists and ``overwrite`` is False, or it is not a folder
        that ``save`` wrote (the message says what is in the way).
      TypeError: if the result is of another type, or a field holds something other than
        arrays, ``LinearParams`` and a ``Refinement`` (an ``aux`` pytree), or is traced.
    """
    path = Path(path)
    kind = type(result).__name__
    if KINDS.get(kind) is not type(result):
        raise TypeError(f"save takes a FitResult, SweepResult or GridResult, got {kind}")
    arrays, summary = _encode(result)
    _check_destination(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        write_npz(tmp / HISTORY, arrays)
        write_atomic(tmp / SUMMARY, to_json(summary).encode())
        os.chmod(tmp, 0o777 & ~_umask())
        _check_destination(path, overwrite)  # again: something may have appeared meanwhile
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def load(path) -> FitResult | SweepResult | GridResult:
    """Reads a result that ``result.save`` wrote; its arrays come back as NumPy arrays.

    Nothing is unpickled: history.npz is read with ``allow_pickle=False``.

    Raises:
      FileNotFoundError: if ``path`` is not a folder holding summary.json and history.npz.
      ValueError: (``jaxgd.files.ResultsError``, naming the file) if a file is damaged,
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
    summary = _read_summary(path / SUMMARY)
    arrays = load_npz(path / HISTORY)
    try:
        return _build(summary, arrays, path)
    except RecursionError:  # JSON nested within the parser's reach, not within ours
        raise ResultsError(f"{path / SUMMARY} is nested too deeply to read (past Python's "
                           "recursion limit)") from None


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
        raise ResultsError(f"{path / SUMMARY}: unknown kind of result {_brief(kind)}"
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
                           f"{_brief(value)}")
    return value


def _brief(value) -> str:
    """``repr(value)``, cut short: a damaged file may hold anything, of any size."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


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
                               f"{_brief(meta[name])}")
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


def _encode(result) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """history.npz's arrays and summary.json's content for a result."""
    from jaxgd import __version__

    arrays: dict[str, np.ndarray] = {}
    summary = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "written_by": f"jaxgd {__version__}",
        **_describe(result, arrays),
    }
    return arrays, summary


def _describe(result, arrays: dict[str, np.ndarray], prefix: str = "") -> dict[str, Any]:
    """Puts a result's arrays into ``arrays`` (names starting with ``prefix``); returns its
    kind, static fields and how each data field is stored."""
    meta = set(type(result)._meta_fields)
    fields = {field.name: _store(field.name, getattr(result, field.name), arrays, prefix)
              for field in dataclasses.fields(result) if field.name not in meta}
    reference = result.reference
    if reference is not None:
        arrays[f"{prefix}optimal_loss"] = np.asarray(thaw(reference), np.float64)
    if isinstance(result, GridResult):
        arrays[f"{prefix}grid_axes"] = np.asarray(result.axes, str)
    return {
        "kind": type(result).__name__,
        "meta": {name: getattr(result, name) for name in sorted(meta - {"reference"})},
        "reference": None if reference is None else (
            "scalar" if isinstance(reference, float) else "array"),
        "fields": fields,
    }


def _store(name: str, value, arrays: dict[str, np.ndarray], prefix: str = "") -> Any:
    """Puts one data field into ``arrays`` (its names starting with ``prefix``); returns how
    it was stored (for summary.json)."""
    if value is None:
        return "none"
    if isinstance(value, Refinement):  # a record of arrays and one result, field by field
        inner = f"{prefix}{name}_"
        return {"refinement": {f.name: _store(f.name, getattr(value, f.name), arrays, inner)
                               for f in dataclasses.fields(value) if f.name != "runs"},
                "runs": _describe(value.runs, arrays, f"{inner}runs_")}
    if isinstance(value, LinearParams):
        prefix = prefix + _PARAMS_PREFIX.get(name, f"{name}_")
        arrays[f"{prefix}weight"] = _host(value.weight, name)
        arrays[f"{prefix}bias"] = _host(value.bias, name)
        return {"params": prefix}
    if isinstance(value, Mapping):  # a dict, or a result's LazyErrors
        prefix, entries = prefix + _DICT_PREFIX.get(name, f"{name}_"), {}
        for key, entry in value.items():
            if isinstance(entry, bool | int | float) and math.isfinite(entry):
                entries[key] = {"json": entry}  # a Python number stays one
            elif entry is None or isinstance(entry, Mapping):  # nested, as ``errors``' sides
                entries[key] = {"field": _store(f"{prefix}{key}", entry, arrays)}
            else:
                arrays[f"{prefix}{key}"] = _host(entry, f"{name}[{key!r}]")
                entries[key] = {"array": f"{prefix}{key}"}
        return {"dict": entries}
    arrays[prefix + name] = _host(value, name)
    return "array"


def _host(value, name: str) -> np.ndarray:
    from jaxgd.validation import is_traced

    if is_traced(value):
        raise TypeError(f"{name} is traced: save a result outside jit, vmap and grad")
    # Arrays and numbers only: a tuple or list would come back as one stacked array.
    if not isinstance(value, np.ndarray | np.generic | jax.Array | bool | int | float):
        raise TypeError(f"cannot save {name}: a {type(value).__name__}, not an array; only "
                        "arrays, dicts of arrays, LinearParams and a refined search's "
                        "Refinement are saved")
    array = np.asarray(value)
    if array.dtype == object:
        raise TypeError(f"cannot save {name}: it holds Python objects, not numbers")
    return array


def _decode(name: str, how, arrays: dict[str, np.ndarray], path: Path, prefix: str = ""):
    def take(key: str) -> np.ndarray:
        if key not in arrays:
            raise ResultsError(f"{path / HISTORY} has no array {key!r} (field {name})")
        return arrays[key]

    if how == "none":
        return None
    if how == "array":
        return take(prefix + name)
    if isinstance(how, dict) and "refinement" in how:
        inner = f"{prefix}{name}_"
        stored = _object(how["refinement"], f'field {name}: "refinement"', path)
        values = _decode_fields(Refinement, stored, arrays, path, inner)
        values["runs"] = _build(how.get("runs", {}), arrays, path, f"{inner}runs_")
        return _construct(Refinement, values, path)
    if isinstance(how, dict) and "params" in how:
        if not isinstance(how["params"], str):
            raise ResultsError(f'{path / SUMMARY}: field {name}: "params" must be a prefix '
                               f"of array names (a string), got {_brief(how['params'])}")
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
                           f"{_brief(entry)}")
    if "json" in entry:
        if not isinstance(entry["json"], bool | int | float):
            raise ResultsError(f'{where}: "json" must be a number, got {_brief(entry["json"])}')
        return np.asarray(entry["json"])  # every leaf an array (older folders wrote numbers)
    if "field" in entry:
        return _decode(f"{name}[{key!r}]", entry["field"], arrays, path)
    if not isinstance(entry["array"], str):
        raise ResultsError(f'{where}: "array" must name an array (a string), got '
                           f"{_brief(entry['array'])}")
    return take(entry["array"])


def _reference(how, arrays: dict[str, np.ndarray], path: Path, prefix: str = ""):
    if how is None:
        return None
    if how not in ("scalar", "array"):
        raise ResultsError(f'{path / SUMMARY}: "reference" must be "scalar", "array" or null, '
                           f"got {_brief(how)}")
    if f"{prefix}optimal_loss" not in arrays:
        raise ResultsError(f"{path / HISTORY} has no array '{prefix}optimal_loss'")
    optimal = arrays[f"{prefix}optimal_loss"]
    if how == "scalar" and optimal.ndim:
        raise ResultsError(f"{path / HISTORY}: {prefix}optimal_loss has shape "
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
      jaxgd.files.ResultsError: run/history.npz: losses has shape (3, 4), not (2, 4): the \
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
        _check_refinement(result.refined, grid, path, prefix)


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
        axes = {_DICT_PREFIX["values"] + axis: result.values[axis] for axis in result.axes}
    for label, values in axes.items():
        if values is not None and np.ndim(values) != 1:
            raise ResultsError(f"{where}{label} has shape {np.shape(values)}: a grid axis's "
                               "values must be 1-D")
    grid = tuple(np.size(values) for values in axes.values() if values is not None)
    if isinstance(result, GridResult) and "sample" in result.axes:
        drawn = (grid[result.axes.index("sample")],)
        for name in result.sampled:
            _expect(result.values[name], drawn, where + _DICT_PREFIX["values"] + name,
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


def _read_summary(path: Path) -> dict[str, Any]:
    try:
        summary = parse_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsError(f"{path} is damaged or not JSON: {error}") from None
    if not isinstance(summary, dict) or summary.get("format") != FORMAT:
        raise ResultsError(f"{path} is not a saved jaxgd result (no \"format\": \"{FORMAT}\"); "
                           "a command line results folder is read with jaxgd.cli.results")
    version = summary.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ResultsError(f'{path}: "format_version" must be a whole number, got '
                           f"{_brief(version)}")
    if version > FORMAT_VERSION:
        raise ResultsError(f"{path} was written in format {summary['format_version']}, newer "
                           f"than this jaxgd reads ({FORMAT_VERSION}): upgrade jaxgd")
    return summary


def _check_destination(path: Path, overwrite: bool) -> None:
    if path.is_symlink():
        raise FileExistsError(f"{path} is a symbolic link: save to the folder it points to "
                              "or another path")
    if not path.exists():
        return
    if not overwrite:
        raise FileExistsError(f"{path} exists already: pass overwrite=True to replace it, or "
                              "choose another path")
    if not path.is_dir():
        raise FileExistsError(f"{path} is a file, not a saved result: choose another path")
    names = sorted(p.name for p in path.iterdir())
    foreign = [n for n in names if n not in (SUMMARY, HISTORY)]
    if foreign:
        raise FileExistsError(f"{path} holds files save did not write ({', '.join(foreign)}):"
                              " overwrite replaces only a saved result; choose another path")
    if names:
        with contextlib.suppress(ResultsError, OSError):
            _read_summary(path / SUMMARY)
            return
        raise FileExistsError(f"{path} is not a saved jaxgd result: overwrite replaces only "
                              "a folder that save wrote; choose another path")
