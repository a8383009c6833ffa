"""One ``jaxgd run`` at a time per results folder: an exclusive lock held for the whole run.

Two runs writing the same ``--out`` would mix their chunks, so ``jaxgd run`` takes an
exclusive ``flock`` on ``.OUT.lock``, a hidden file beside ``OUT`` (where its temporary
folders go), before it looks at ``OUT`` and keeps it until the results are in place, with
``--resume`` and ``--overwrite`` too. The file holds the holder's process id, which a second
run names when it is refused. The lock file is removed when the run ends; the operating
system releases the lock of a process that dies, so a file left by a SIGKILL is taken over
by the next run.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from pathlib import Path

from jaxgd.cli.results import DestinationError, OutputInUseError

_READ_PID_SECONDS = 1.0  # the holder writes its pid just after it takes the lock


def lock_path(out_dir: Path) -> Path:
    """The lock file of results folder ``out_dir``.

    Example:
      >>> lock_path(Path("runs/cars")).as_posix()
      'runs/.cars.lock'
    """
    out_dir = Path(out_dir)
    return out_dir.parent / f".{out_dir.name}.lock"


class OutputLock:
    """The exclusive lock on a results folder, taken by ``acquire`` (see ``locked``)."""

    def __init__(self, out_dir: Path):
        self.path = lock_path(out_dir)
        self._fd: int | None = None
        self._made: list[Path] = []  # folders made for the lock file, removed if left empty

    def acquire(self) -> None:
        """Takes the lock, or raises ``OutputInUseError`` naming the process that holds it,
        or ``DestinationError`` where the lock file cannot be made (a read-only folder, a
        name too long): a message, never a traceback."""
        try:
            self._take()
        except DestinationError:
            raise
        except OSError as error:
            raise DestinationError(f"cannot make the lock file {self.path}: "
                                   f"{error.strerror or error}") from None

    def _take(self) -> None:
        try:
            self._made = [p for p in (self.path.parent, *self.path.parent.parents)
                          if not p.exists()]  # deepest first
            self.path.parent.mkdir(parents=True, exist_ok=True)
            while True:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as error:
                    holder = _read_pid(fd) if error.errno in (errno.EAGAIN, errno.EACCES) \
                        else None
                    os.close(fd)
                    if error.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    out = self.path.parent / self.path.name[1:].removesuffix(".lock")
                    who = f"process {holder}" if holder else "another process"
                    raise OutputInUseError(
                        f"{out} is being written by another jaxgd run ({who}, which holds "
                        f"{self.path}): wait for it to finish, or choose another --out"
                    ) from None
                # The file may have been removed by a holder that just finished: lock the
                # file that is there now.
                try:
                    same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    same = False
                if same:
                    break
                os.close(fd)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd = fd
        except BaseException:
            self._remove_made()
            raise

    def release(self) -> None:
        """Removes the lock file and releases the lock (safe to call more than once)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # while still holding it: see acquire
        os.close(self._fd)
        self._fd = None
        self._remove_made()

    def _remove_made(self) -> None:
        for folder in self._made:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty
        self._made = []


@contextlib.contextmanager
def locked(out_dir: Path):
    """Holds the lock on ``out_dir`` for the block; yields the ``OutputLock``.

    Raises:
      OutputInUseError: if another process holds it (the message names its process id).

    Example:
      >>> import tempfile
      >>> out = Path(tempfile.mkdtemp()) / "run"
      >>> with locked(out) as lock:
      ...     lock.path.read_text().strip() == str(os.getpid())
      True
      >>> lock.path.exists()
      False
    """
    lock = OutputLock(out_dir)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()


def _read_pid(fd: int) -> int | None:
    deadline = time.monotonic() + _READ_PID_SECONDS
    while True:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return int(text)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.01)
