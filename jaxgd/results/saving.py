"""Saving results: ``result.save(path)`` writes a folder; ``jaxgd.load(path)`` reads it back
(``jaxgd.results.loading``).

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
(``jaxgd.results.refined.Refinement``) is stored field by field under ``refined_<field>``, its
refined runs (a ``GridResult``) as a result of their own under ``refined_runs_<name>``.

``load`` gives back a result equal to the saved one leaf by leaf (as NumPy arrays) with the
same static metadata. Writing goes to a temporary folder beside ``path``, renamed into place
when complete: an interrupted save leaves no half-written folder. An existing ``path`` is
replaced only with ``overwrite=True``, and only if it is a folder ``save`` wrote (a
``summary.json`` of this format and ``history.npz``, nothing else), so nothing of yours is
ever deleted.

``jaxgd run`` writes its results folder in this format too: its history.npz holds the
command line's arrays (in the data's original units) and, beside them, the run's
``GridResult`` (``encode``: an array equal to one of the command line's is stored once), so
``jaxgd.load`` opens a ``jaxgd run`` folder.

Example:
  >>> import numpy as np, tempfile, pathlib, jaxgd
  >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
  >>> r = jaxgd.sweep(X, y, learning_rates=[0.1, 0.3], num_steps=20)
  >>> folder = save(r, pathlib.Path(tempfile.mkdtemp()) / "sweep")
  >>> sorted(p.name for p in folder.iterdir())
  ['history.npz', 'summary.json']
  >>> back = jaxgd.load(folder)
  >>> type(back).__name__, back.losses.shape, bool((back.losses == r.losses).all())
  ('SweepResult', (2, 20), True)
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxgd._version import __version__
from jaxgd.core.params import LinearParams
from jaxgd.core.record import thaw
from jaxgd.results.files import (
    ResultsError,
    read_json,
    staged_folder,
    to_json,
    write_atomic,
    write_npz,
)
from jaxgd.results.refined import Refinement

#: The format's tag (not a module path: it stays when modules move).
FORMAT = "jaxgd.result"
#: 2: a grid's fixed values are stored as arrays (1: JSON numbers; still read).
FORMAT_VERSION = 2
SUMMARY = "summary.json"
HISTORY = "history.npz"
#: The result types ``save`` writes (``jaxgd.results.result``), by name: this module is below
#: them, so that ``result.save`` can call it without an import cycle.
KINDS = ("FitResult", "SweepResult", "GridResult")
#: Where a ``LinearParams`` field's weight and bias go: ``<prefix>weight``, ``<prefix>bias``.
PARAMS_PREFIX = {"params": "", "snapshots": "snapshot_"}
#: Where a dict field's entries go: ``<prefix><key>``.
DICT_PREFIX = {"values": "grid_values_"}


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
    if kind not in KINDS or type(result).__module__ != "jaxgd.results.result":
        raise TypeError(f"save takes a FitResult, SweepResult or GridResult, got {kind}")
    if result.model is not None:  # its functions are code, which this format does not hold
        raise TypeError("save writes linear regression's results; a result of model= holds "
                        "the model's own functions and parameters: save its arrays yourself "
                        "(e.g. numpy.savez of result.losses and the params' leaves)")
    arrays, summary = _encode(result)
    _check_destination(path, overwrite)
    # Checked again at the end: something may have appeared at ``path`` meanwhile.
    with staged_folder(path, lambda: _check_destination(path, overwrite)) as tmp:
        write_folder(tmp, arrays, summary)
    return path


def write_folder(folder: Path, arrays: Mapping[str, Any], summary: Mapping[str, Any]) -> None:
    """Writes ``arrays`` as ``folder``'s history.npz and ``summary`` as its summary.json: the
    one writer of the format, for ``save`` and ``jaxgd run`` (whose ``summary`` holds
    ``encode``'s entries beside its own).

    Example:
      >>> import tempfile, pathlib
      >>> folder = pathlib.Path(tempfile.mkdtemp())
      >>> write_folder(folder, {"losses": np.zeros(3)}, {"format": FORMAT})
      >>> sorted(p.name for p in folder.iterdir())
      ['history.npz', 'summary.json']
    """
    write_npz(Path(folder) / HISTORY, dict(arrays))
    write_atomic(Path(folder) / SUMMARY, to_json(dict(summary)).encode())


def encode(result, beside: Mapping[str, np.ndarray] | None = None
           ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """history.npz's arrays and summary.json's entries for ``result``, to be written beside
    arrays of another writer (``beside``: ``jaxgd run`` writes its own in one folder).

    An array whose name ``beside`` holds is shared when ``beside``'s is the same array (same
    dtype, shape and bytes) and left out of the returned arrays; else it is stored as
    ``result_<name>``, under which summary.json names it. ``jaxgd.load`` reads the folder
    back either way.

    Example:
      >>> import numpy as np, jaxgd
      >>> X, y = np.array([[-1.0], [0.0], [1.0]]), np.array([1.0, 3.0, 5.0])
      >>> r = jaxgd.sweep(X, y, learning_rates=[0.1, 0.3], num_steps=5)
      >>> arrays, summary = encode(r, {"losses": np.asarray(r.losses), "weight": np.zeros(1)})
      >>> "losses" in arrays, summary["fields"]["params"], "result_weight" in arrays
      (False, {'params': 'result_'}, True)
    """
    arrays, summary = _encode(result)
    beside = beside or {}
    clash = {name for name, array in arrays.items()
             if name in beside and not _same(array, np.asarray(beside[name]))}
    for how in summary["fields"].values():  # a weight and its bias move together
        if isinstance(how, dict) and "params" in how:
            pair = {f"{how['params']}weight", f"{how['params']}bias"}
            clash |= pair if pair & clash else set()
    for name in set(arrays) & set(beside):
        if name not in clash:
            del arrays[name]
    if not clash:
        return arrays, summary
    renamed = {name: f"result_{name}" for name in clash}
    for field, how in summary["fields"].items():
        if how == "array" and field in clash:
            summary["fields"][field] = {"array": renamed[field]}
        elif isinstance(how, dict) and "params" in how and f"{how['params']}weight" in clash:
            how["params"] = f"result_{how['params']}"
        elif isinstance(how, dict) and "dict" in how:
            for entry in how["dict"].values():
                if entry.get("array") in clash:
                    entry["array"] = renamed[entry["array"]]
    if "optimal_loss" in clash:
        summary["reference"] = {summary["reference"]: renamed["optimal_loss"]}
    if any(name.startswith("refined_") for name in clash):  # named by prefix only
        raise TypeError("a refined result is encoded only into a folder of its own")
    for name, new_name in renamed.items():  # grid_axes too: load reads the axes' names
        arrays[new_name] = arrays.pop(name)  # from summary.json
    return arrays, summary


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two arrays are the same to the bit (NaN included), dtype and shape too."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def kind_of(result) -> str:
    """The name of a result's type, as summary.json's "kind" holds it."""
    return type(result).__name__


def brief(value) -> str:
    """``repr(value)``, cut short: a damaged file may hold anything, of any size."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _encode(result) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """history.npz's arrays and summary.json's content for a result."""
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
    if kind_of(result) == "GridResult":
        arrays[f"{prefix}grid_axes"] = np.asarray(result.axes, str)
    return {
        "kind": kind_of(result),
        "meta": {name: getattr(result, name)
                 for name in sorted(meta - {"reference", "model"})},  # model: never saved
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
        prefix = prefix + PARAMS_PREFIX.get(name, f"{name}_")
        arrays[f"{prefix}weight"] = _host(value.weight, name)
        arrays[f"{prefix}bias"] = _host(value.bias, name)
        return {"params": prefix}
    if isinstance(value, Mapping):  # a dict, or a result's LazyErrors
        prefix, entries = prefix + DICT_PREFIX.get(name, f"{name}_"), {}
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
    from jaxgd.inputs.validation import is_traced

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


def read_summary(path: Path) -> dict[str, Any]:
    summary = read_json(path)
    if not isinstance(summary, dict) or summary.get("format") != FORMAT:
        raise ResultsError(f"{path} is not a saved jaxgd result (no \"format\": \"{FORMAT}\"); "
                           "a jaxgd run folder from before the two shared one format is "
                           "read with jaxgd.results.loading.read_folder")
    version = summary.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ResultsError(f'{path}: "format_version" must be a whole number, got '
                           f"{brief(version)}")
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
            read_summary(path / SUMMARY)
            return
        raise FileExistsError(f"{path} is not a saved jaxgd result: overwrite replaces only "
                              "a folder that save wrote; choose another path")
