"""The results folder's destination: where ``jaxgd run`` may write, and what it may replace.

The files are the library's (``jaxgd.results.saving.write_folder``, ``jaxgd.results.tables``),
written into a hidden temporary folder beside the destination that is put in place only when
every file is complete (``jaxgd.results.files.staged_folder``), so an interrupted run leaves
nothing half-written. An existing folder is replaced only when the caller says so, and only
if jaxgd wrote it (``foreign_entries``): every results folder holds a marker file,
``.jaxgd-results``. While a long sweep runs, its finished chunks wait in the destination's
``.partial`` folder (see ``jaxgd.cli.checkpoint``); the finished results replace that folder
in one step. A symbolic link, the current folder or one of its parents is never a
destination, nor a path whose names do not fit its filesystem (``check_name_lengths``), and
the temporary folders a killed run left beside the destination are removed by the next run
(``sweep_staging``) while it holds the destination's lock (``jaxgd.cli.lock``).

Nothing here executes or unpickles what it reads: history.npz is loaded with
``allow_pickle=False`` and summary.json is plain JSON.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

# The library's, re-exported: the CLI's modules and tests import them here.
from jaxgd.results.files import ResultsError as ResultsError
from jaxgd.results.files import load_npz as load_npz
from jaxgd.results.files import parse_json, staged_folder, to_json, write_atomic
from jaxgd.results.loading import read_folder
from jaxgd.results.saving import HISTORY, SUMMARY
from jaxgd.results.saving import write_folder as write_folder
from jaxgd.results.tables import LOSSES
from jaxgd.results.tables import csv_steps as csv_steps
from jaxgd.results.tables import write_losses_csv as write_losses_csv

read = read_folder  # a results folder's arrays and summary, as stored

#: The figures a run may draw (``jaxgd.figures.FIGURES``), each written as NAME.png.
FIGURES = ("loss_curve", "snapshots", "loss_surface", "sweep_curves", "sweep_summary")
PARTIAL = ".partial"  # the unfinished run's chunks, inside the results folder being built
MARKER = ".jaxgd-results"  # in every results folder: jaxgd wrote it, --overwrite may replace it
MARKER_FORMAT = 1
#: Every name jaxgd writes at the top of a results folder (``jaxgd lr-range``: its two).
RESULT_FILES = frozenset({MARKER, SUMMARY, HISTORY, LOSSES, PARTIAL, "lr_range.json",
                          *(f"{name}.png" for name in (*FIGURES, "lr_range"))})
#: jaxgd writes each name NAME first as ``.NAME.tmp-XXXXXXXX`` (``tempfile`` adds 8 characters),
#: and a results folder OUT's temporary folders, ``.OUT.tmp-…`` and ``.OUT.old-…``, likewise:
#: the longest name it writes is this much longer than the name it stands for.
TEMPORARY_EXTRA = len("..tmp-") + 8
#: Names inside ``.partial`` (see ``jaxgd.cli.checkpoint``): the manifest, chunks, and files
#: still being written (``.NAME.tmp-…``).
_PARTIAL_ENTRY = re.compile(r"manifest\.json|chunk-\d{5,}\.npz|\..+\.tmp-.*")


class ResultsExistError(FileExistsError):
    """The results folder exists already and overwriting was not asked for."""


class DestinationError(OSError):
    """The results folder cannot be written where it was asked for."""


class OutputInUseError(DestinationError):
    """Another jaxgd process is writing the same results folder."""


def is_unfinished(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds an unfinished run and nothing else (see
    ``jaxgd.cli.checkpoint``)."""
    out_dir = Path(out_dir)
    return out_dir.is_dir() and sorted(p.name for p in out_dir.iterdir()) == [PARTIAL]


def check_out(out_dir: Path, overwrite: bool, inputs: Sequence[Path] = ()) -> None:
    """Everything that can be known of a destination before the work starts: it may be
    written (``check_destination``), it can be (``check_writable``).

    Example:
      >>> import tempfile, pathlib
      >>> root = pathlib.Path(tempfile.mkdtemp())
      >>> check_out(root / "new", overwrite=False)   # nothing there: fine
      >>> check_out(root / ("x" * 300), overwrite=False)
      Traceback (most recent call last):
      ...
      jaxgd.cli.results.DestinationError: ...: a folder name in it has 300 characters; ...
    """
    check_destination(out_dir, overwrite, inputs)
    check_writable(out_dir)


def check_destination(out_dir: Path, overwrite: bool, inputs: Sequence[Path] = ()) -> None:
    """Refuses an existing, non-empty destination unless ``overwrite``, and even then unless
    jaxgd wrote it (``foreign_entries``) and none of ``inputs`` (the run's config and data
    files) lies inside it; a file, a symbolic link, the current folder or one of its parents
    never pass.

    Example:
      >>> import tempfile, pathlib
      >>> root = pathlib.Path(tempfile.mkdtemp())
      >>> check_destination(root / "new", overwrite=False)   # nothing there: fine
      >>> (root / "file").write_text("x") and None
      >>> check_destination(root / "file", overwrite=True)
      Traceback (most recent call last):
      ...
      jaxgd.cli.results.ResultsExistError: ... is a file, not a folder: choose another --out
    """
    out_dir = Path(out_dir)
    check_path(out_dir)
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ResultsExistError(f"{out_dir} is a file, not a folder: choose another --out")
    check_inputs(out_dir, inputs)
    if not any(out_dir.iterdir()):
        return
    if overwrite:
        foreign = foreign_entries(out_dir)
        if foreign is not None:
            raise ResultsExistError(
                f"{out_dir} was not written by jaxgd ({foreign}): --overwrite replaces only "
                "results folders; move your files away or choose another --out")
        return
    if is_unfinished(out_dir):
        raise ResultsExistError(
            f"{out_dir} holds an unfinished run: pass --resume to finish it, or --overwrite "
            "to start again"
        )
    if (out_dir / PARTIAL).is_dir():  # an --overwrite stopped mid-run, beside the old results
        raise ResultsExistError(
            f"{out_dir} holds an unfinished run (an --overwrite of its results, stopped): pass "
            "--resume to finish it, or --overwrite to start again"
        )
    raise ResultsExistError(
        f"{out_dir} exists already: pass --overwrite to replace it, or --out elsewhere"
    )


def check_path(out_dir: Path) -> None:
    """Refuses a destination that jaxgd could not replace in one rename: a symbolic link
    (the link would be replaced, not the folder it points to), the current folder or one of
    its parents; nor one whose names do not fit its filesystem (``check_name_lengths``).

    Raises:
      DestinationError: naming the path and what to pass instead.
    """
    out_dir = Path(out_dir)
    check_name_lengths(out_dir)  # first: a name too long makes every look at it fail
    if out_dir.is_symlink():
        raise DestinationError(
            f"{out_dir} is a symbolic link (to {os.readlink(out_dir)}): jaxgd replaces its "
            "results folder in one rename, which would replace the link; pass the folder it "
            "points to as --out, or another --out")
    try:
        here = Path.cwd().resolve()
    except OSError:  # the current folder was deleted: it cannot be --out either
        return
    if out_dir.resolve() in (here, *here.parents):
        raise DestinationError(
            f"--out {out_dir} is the current folder or one of its parents: results are "
            "written to a folder of their own, which replaces --out; choose a new folder, "
            "e.g. --out runs/NAME")


def check_inputs(out_dir: Path, inputs: Sequence[Path]) -> None:
    """Refuses to write over ``out_dir`` when one of the run's ``inputs`` lies inside it
    (the folder is replaced whole when the run finishes; links are followed)."""
    folder = Path(out_dir).resolve()
    for path in inputs:
        for where in {Path(os.path.abspath(path)), Path(path).resolve()}:
            if where.is_relative_to(folder):
                raise ResultsExistError(
                    f"{path} is an input of this run and lies inside --out {out_dir}, which "
                    "the results replace: move it out of that folder or choose another "
                    "--out")


def foreign_entries(folder: Path) -> str | None:
    """Why ``folder`` is not provably a folder jaxgd wrote, or None if it is.

    jaxgd's folders are results folders (the ``.jaxgd-results`` marker, or, written by a
    jaxgd before the marker, ``summary.json`` with ``history.npz``) and unfinished runs (a
    ``.partial`` folder only); in either, every entry must be a name jaxgd writes
    (``RESULT_FILES``, the names the marker lists, and in ``.partial`` the manifest, chunks
    and half-written files), so that files of your own put there are never deleted.

    Example:
      >>> import tempfile, pathlib
      >>> root = pathlib.Path(tempfile.mkdtemp())
      >>> for name in (".jaxgd-results", "summary.json", "notes.txt"):
      ...     _ = (root / name).write_text("x")
      >>> foreign_entries(root)
      'notes.txt is not a file jaxgd writes'
    """
    names = {p.name for p in Path(folder).iterdir()}
    unknown = _unknown_entries(Path(folder), names)
    if unknown:
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5
                                          else "")
        return f"{shown} {'is not a file' if len(unknown) == 1 else 'are not files'} jaxgd " \
               "writes"
    if MARKER in names or {SUMMARY, HISTORY} <= names or names == {PARTIAL}:
        return None
    return f"no {MARKER} marker in it"


def _unknown_entries(folder: Path, names: set[str]) -> list[str]:
    """The entries of ``folder`` among ``names`` that jaxgd does not write (or that are links
    where jaxgd writes folders and files)."""
    known = known_names(folder)
    unknown = sorted(name for name in names if name not in known
                     or (folder / name).is_symlink())
    partial = folder / PARTIAL
    if PARTIAL in names and PARTIAL not in unknown:
        if not partial.is_dir():
            unknown.append(PARTIAL)
        else:
            unknown += [f"{PARTIAL}/{p.name}" for p in sorted(partial.iterdir())
                        if not _PARTIAL_ENTRY.fullmatch(p.name) or p.is_symlink()
                        or not p.is_file()]
    return unknown


def known_names(folder: Path) -> frozenset[str]:
    """The names jaxgd writes at the top of ``folder``: ``RESULT_FILES``, and those its marker
    lists (``staging``'s ``also_writes``: ``jaxgd bench``'s report, for one). A name is
    jaxgd's only in a folder whose marker says so: a ``report.md`` of yours put in a run's
    folder stays yours.

    Example:
      >>> import tempfile, pathlib
      >>> root = pathlib.Path(tempfile.mkdtemp())
      >>> with staging(root / "run", overwrite=False, also_writes=["report.md"]):
      ...     pass
      >>> sorted(known_names(root / "run") - RESULT_FILES)
      ['report.md']
    """
    marker = Path(folder) / MARKER
    try:  # a marker that is a link, damaged or of an older jaxgd lists nothing
        listed = [] if marker.is_symlink() else parse_json(marker.read_text("utf-8"))["files"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return RESULT_FILES
    if not isinstance(listed, list):
        return RESULT_FILES
    return RESULT_FILES | {name for name in listed
                           if isinstance(name, str) and name == Path(name).name}


def sweep_staging(out_dir: Path) -> list[str]:
    """Removes the temporary folders a killed run left beside ``out_dir`` (``.OUT.tmp-…``
    while writing, ``.OUT.old-…`` while replacing); returns their names.

    Call it only while holding ``out_dir``'s lock (``jaxgd.cli.lock``): every jaxgd run
    writing ``out_dir`` makes its temporary folders while holding that lock, so none is in
    use. Only folders (not links) with exactly those names, holding nothing but names jaxgd
    writes, are removed; anything else is left alone.
    """
    out_dir = Path(out_dir)
    parent = out_dir.parent
    if not parent.is_dir():
        return []
    pattern = re.compile(re.escape(f".{out_dir.name}.") + r"(tmp|old)-[a-z0-9_]{8}")
    removed = []
    for path in sorted(parent.iterdir()):
        if not pattern.fullmatch(path.name) or path.is_symlink() or not path.is_dir():
            continue
        contents = [p for p in path.iterdir()]
        if path.name.startswith(f".{out_dir.name}.old-"):  # holds the replaced folder
            if [p.name for p in contents] != [out_dir.name] or contents[0].is_symlink() \
                    or not contents[0].is_dir() or _foreign_staged(contents[0]):
                continue
        elif _foreign_staged(path):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path.name)
    return removed


def _foreign_staged(folder: Path) -> bool:
    """Whether a temporary folder holds anything jaxgd would not have put there: results
    files, or files half-written under a hidden temporary name (``.NAME.…``)."""
    names = {p.name for p in folder.iterdir()}
    written = {n for n in names if not any(n.startswith(f".{known}.") and n != known
                                           for known in known_names(folder) - {PARTIAL})}
    return bool(_unknown_entries(folder, written)) or any(
        (folder / n).is_symlink() or not (folder / n).is_file() for n in names - written)


def check_writable(out_dir: Path) -> None:
    """Fails now, not after hours of work, if ``out_dir`` could not be created or written.

    Nothing is created: the nearest existing folder on the way to ``out_dir`` must be a
    folder this process may write in (checked with a temporary file, removed at once).
    ``check_path`` checks the names' lengths.
    """
    out_dir = _absolute(out_dir)
    probe = _nearest_existing(out_dir)
    if probe == out_dir and not probe.is_dir():
        probe = out_dir.parent  # a file: check_destination names it
    if not probe.is_dir():
        raise DestinationError(f"cannot write results to {out_dir}: {probe} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as error:
        raise DestinationError(f"cannot write results to {out_dir}: {error}") from None


def check_name_lengths(out_dir: Path) -> None:
    """Refuses an ``out_dir`` with a name too long for the filesystem of its nearest existing
    folder: each folder still to be made, the temporary folders and lock file beside it
    (``.OUT.tmp-XXXXXXXX``, the longest), the names inside, and the longest path. Otherwise
    the run would fail only when it writes its results, after all its work, and again on
    every ``--resume``.

    Raises:
      DestinationError: naming ``out_dir``, the length and the limit.

    Example:
      >>> check_name_lengths(Path("runs") / ("x" * 250))
      Traceback (most recent call last):
      ...
      jaxgd.cli.results.DestinationError: cannot write results to ...: its name has 250 ...
    """
    out_dir = _absolute(out_dir)
    existing = _nearest_existing(out_dir)
    name_max = _limit(existing, "PC_NAME_MAX", 255)
    path_max = _limit(existing, "PC_PATH_MAX", 4096)
    where = f"cannot write results to {_shortened(out_dir)}"
    too_long = [name for name in out_dir.relative_to(existing).parts if len(name) > name_max]
    if too_long:
        raise DestinationError(
            f"{where}: a folder name in it has {len(too_long[0])} characters; this "
            f"filesystem allows {name_max}: choose a shorter --out")
    if len(out_dir.name) + TEMPORARY_EXTRA > name_max:
        raise DestinationError(
            f"{where}: its name has {len(out_dir.name)} characters; jaxgd writes beside it "
            f"temporary folders named .NAME.tmp-XXXXXXXX, {TEMPORARY_EXTRA} more, and this "
            f"filesystem allows {name_max}: choose an --out whose last name has at most "
            f"{name_max - TEMPORARY_EXTRA} characters")
    if max(map(len, RESULT_FILES)) + TEMPORARY_EXTRA > name_max:
        raise DestinationError(f"{where}: its filesystem allows names of {name_max} "
                               "characters only, too short for jaxgd's files")
    # The deepest path: a half-written file in .partial of the temporary folder beside out_dir.
    inside = len(PARTIAL) + max(map(len, RESULT_FILES)) + TEMPORARY_EXTRA + 1
    longest = len(str(out_dir)) + TEMPORARY_EXTRA + 1 + inside
    if longest >= path_max:  # path_max counts the terminating NUL
        raise DestinationError(
            f"{where}: its path has {len(str(out_dir))} characters and the files inside "
            f"add {longest - len(str(out_dir))}, beyond this filesystem's {path_max - 1}: "
            "choose a shorter --out")


def _absolute(out_dir: Path) -> Path:
    """``out_dir`` from the root, or a ``DestinationError`` if the current folder is gone."""
    try:
        return Path(out_dir).absolute()
    except OSError as error:  # os.getcwd() of a deleted folder
        raise DestinationError(f"cannot write results to {out_dir}: the current folder is "
                               f"gone ({error.strerror or error}): give --out from the root"
                               ) from None


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    while path != path.parent:
        try:
            if path.exists():
                return path
        except OSError:  # a name too long for the filesystem: it cannot exist
            pass
        path = path.parent
    return path


def _limit(folder: Path, name: str, fallback: int) -> int:
    """``os.pathconf(folder, name)``, or ``fallback`` where it is unknown (not POSIX, or no
    limit reported)."""
    try:
        value = os.pathconf(folder, name)
    except (AttributeError, OSError, ValueError):
        return fallback
    return value if value > 0 else fallback


def _shortened(path: Path, keep: int = 80) -> str:
    """``path`` for a message: a name too long to read is cut in the middle."""
    text = str(path)
    return text if len(text) <= keep else f"{text[:keep // 2]}…{text[-keep // 2:]}"


@contextlib.contextmanager
def staging(out_dir: Path, overwrite: bool, replace_partial: bool = False,
            inputs: Sequence[Path] = (), also_writes: Sequence[str] = ()) -> Iterator[Path]:
    """A temporary folder that becomes ``out_dir`` when the block finishes without error.

    ``replace_partial``: ``out_dir`` may hold an unfinished run (its ``.partial`` folder
    only), which the finished results replace. ``overwrite`` replaces only a folder that
    jaxgd wrote and that holds none of ``inputs`` (see ``check_destination``). The folder
    gets the ``.jaxgd-results`` marker, which lists ``also_writes``: the names the caller
    writes beyond ``RESULT_FILES`` (see ``known_names``). The library's ``staged_folder``
    puts it in place: in one step that Ctrl-C and SIGTERM cannot interrupt.

    Example:
      >>> import tempfile, pathlib
      >>> root = pathlib.Path(tempfile.mkdtemp())
      >>> with staging(root / "run", overwrite=False) as tmp:
      ...     _ = (tmp / "a.txt").write_text("hi")
      >>> sorted(p.name for p in (root / "run").iterdir())
      ['.jaxgd-results', 'a.txt']
    """
    out_dir = Path(out_dir)

    def check() -> None:
        replaceable = overwrite or (replace_partial and is_unfinished(out_dir))
        check_destination(out_dir, replaceable, inputs)

    check()
    with staged_folder(out_dir, check) as tmp:
        marker = {"format": MARKER_FORMAT, "written_by": "jaxgd"}
        if also_writes:
            marker["files"] = sorted(also_writes)
        write_atomic(tmp / MARKER, to_json(marker).encode())
        yield tmp
