"""Files jaxgd writes and reads: atomically written, never pickled.

Every file is written under a temporary name beside its destination and renamed into place,
so a reader never sees half of one; .npz files are read with ``allow_pickle=False`` and JSON
is plain JSON, read by ``parse_json`` (nesting too deep to parse is invalid JSON).
A folder is written the same way (``staged_folder``): into a temporary folder beside it,
which replaces it in one step when complete. ``jaxgd.results.saving`` (``result.save``) and
the command line's results folder (``jaxgd.cli.results``) both write through these.

Example:
  >>> import tempfile, pathlib
  >>> folder = pathlib.Path(tempfile.mkdtemp())
  >>> path = write_npz(folder / "a.npz", {"x": np.arange(3)})
  >>> load_npz(path)["x"].tolist(), to_json({"loss": float("nan")})
  ([0, 1, 2], '{\\n  "loss": null\\n}\\n')
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np


class ResultsError(ValueError):
    """A folder that should hold jaxgd results does not, or holds damaged files."""


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def write_atomic(path: Path, data: bytes | Callable[[BinaryIO], object], *, sync: bool = False,
                 before_rename: Callable[[Path], None] | None = None) -> None:
    """Writes a file through a temporary sibling (``.NAME.tmp-XXXXXXXX``) and a rename:
    readers never see half of it. The file gets the permissions the user's umask gives any
    new file.

    Args:
      path: the file to write.
      data: its bytes, or a function that writes them to the open file.
      sync: flush the file to disk before the rename, so that a power cut leaves either the
        whole file or none (``jaxgd.cli.checkpoint``'s chunks).
      before_rename: called with the temporary file's path once it is complete.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            data(handle) if callable(data) else handle.write(data)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        if before_rename is not None:
            before_rename(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def staged_folder(path: Path, check: Callable[[], None] = lambda: None) -> Iterator[Path]:
    """A temporary folder beside ``path`` (``.NAME.tmp-XXXXXXXX``) that replaces ``path`` when
    the block finishes without error; else it is removed and ``path`` is left as it was.

    ``check()`` runs once the folder is complete, just before it replaces ``path``: whatever
    may have appeared at ``path`` meanwhile, it refuses by raising. The entries get the
    permissions the user's umask gives anything new; the final rename cannot be interrupted
    by Ctrl-C or SIGTERM, and on Linux it swaps the two folders in one step.

    Example:
      >>> import tempfile, pathlib
      >>> root = pathlib.Path(tempfile.mkdtemp())
      >>> with staged_folder(root / "run") as tmp:
      ...     _ = (tmp / "a.txt").write_text("hi")
      >>> sorted(p.name for p in root.iterdir()), (root / "run" / "a.txt").read_text()
      (['run'], 'hi')
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        _usual_permissions(tmp)
        check()
        with _signals_deferred():
            if path.exists() and any(path.iterdir()):
                _swap(tmp, path)  # tmp now holds the old folder
            else:
                if path.exists():
                    path.rmdir()
                os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap(new: Path, path: Path) -> None:
    """Puts ``new`` at ``path``, atomically on Linux (renameat2 with RENAME_EXCHANGE, after
    which ``new`` holds the old folder), elsewhere by two renames (the old folder is removed)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(AttributeError, OSError):
            libc = ctypes.CDLL(None, use_errno=True)
            at_fdcwd, rename_exchange = -100, 2
            if libc.renameat2(at_fdcwd, os.fsencode(new), at_fdcwd, os.fsencode(path),
                              rename_exchange) == 0:
                return
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
    os.replace(path, old / path.name)
    os.replace(new, path)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Holds Ctrl-C and SIGTERM back for the block (a few renames), then lets them through."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _usual_permissions(folder: Path) -> None:
    # mkdtemp and mkstemp make private (0700/0600) entries; results are ordinary files that
    # should get the permissions the user's umask gives anything else they create.
    umask = _umask()
    os.chmod(folder, 0o777 & ~umask)
    for path in folder.rglob("*"):
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


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


def read_json(path: Path) -> Any:
    """The JSON value in the file ``path``.

    Raises:
      ResultsError: if it cannot be read or is not JSON (naming the file).
    """
    try:
        return parse_json(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsError(f"{path} is damaged or not JSON: {error}") from None


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
    write_atomic(path, lambda handle: np.savez_compressed(
        handle, **{k: np.asarray(v) for k, v in arrays.items()}))
    return Path(path)
