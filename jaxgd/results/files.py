"""Files jaxgd writes and reads: atomically written, never pickled.

Every file is written under a temporary name beside its destination and renamed into place,
so a reader never sees half of one; .npz files are read with ``allow_pickle=False`` and JSON
is plain JSON, read by ``parse_json`` (nesting too deep to parse is invalid JSON).
``jaxgd.results.saving`` (``result.save``) and the command line's results folder
(``jaxgd.cli.results``) both write through these.

Example:
  >>> import tempfile, pathlib
  >>> folder = pathlib.Path(tempfile.mkdtemp())
  >>> path = write_npz(folder / "a.npz", {"x": np.arange(3)})
  >>> load_npz(path)["x"].tolist(), to_json({"loss": float("nan")})
  ([0, 1, 2], '{\\n  "loss": null\\n}\\n')
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np


class ResultsError(ValueError):
    """A folder that should hold jaxgd results does not, or holds damaged files."""


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def write_atomic(path: Path, data: bytes) -> None:
    """Writes a file through a temporary sibling and a rename: readers never see half of it.
    The file gets the permissions the user's umask gives any new file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise

def to_json(value: Any) -> str:
    """JSON with NaN and infinities as null (JSON has neither) and sorted, stable keys."""
    return json.dumps(_clean(value), indent=2, sort_keys=True, allow_nan=False) + "\n"


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        value = value.item()  # a result's single numbers are 0-d arrays
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

class NestedTooDeeply(json.JSONDecodeError):
    """JSON nested deeper than Python's parser can follow: refused as invalid JSON."""

    def __str__(self) -> str:
        return self.msg  # the nesting has no one position to point at


def parse_json(text: str) -> Any:
    """``json.loads(text)``, where JSON nested past Python's recursion limit (about 1,000
    levels) is a ``json.JSONDecodeError`` like any other invalid JSON, not a RecursionError
    from deep inside the parser: callers that name a damaged file name this one too.

    Example:
      >>> parse_json('{"a": [1, 2]}')
      {'a': [1, 2]}
      >>> parse_json("[" * 100_000 + "]" * 100_000)
      Traceback (most recent call last):
      jaxgd.results.files.NestedTooDeeply: too deeply nested (past Python's recursion limit)
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise NestedTooDeeply("too deeply nested (past Python's recursion limit)", text,
                              0) from None


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz file, never unpickling anything.

    Raises:
      FileNotFoundError: if there is no file at ``path``.
      ResultsError: if the file is not a readable .npz of plain arrays (the message names
        the file and says what is wrong).
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise ResultsError(f"cannot read {path}: {error}") from None
    if magic != b"PK\x03\x04":  # every .npz is a zip archive
        raise ResultsError(f"{path} is damaged or not an .npz file (it is not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except ValueError as error:  # object arrays need pickle, which is refused
        raise ResultsError(f"{path} holds arrays that only unpickling could read, and jaxgd "
                           f"never unpickles: {error}") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise ResultsError(f"{path} is damaged or not an .npz file: {error}") from None



def write_npz(path: Path, arrays: dict[str, Any]) -> Path:
    """Writes ``arrays`` as a compressed .npz through a temporary sibling and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez_compressed(tmp, **{k: np.asarray(v) for k, v in arrays.items()})
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
    return path
