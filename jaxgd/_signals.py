"""Ctrl-C, SIGTERM and SIGHUP as a request to stop, noted by a handler that never raises.

Python runs a signal handler between two bytecodes of the main thread, wherever that thread
is: an exception raised there inside a garbage-collector callback (JAX registers one) or a
``__del__`` is printed as "Exception ignored" and lost, and the run goes on as if nothing
happened. So ``install`` sets a handler that only notes the signal; the ``jaxgd`` command
polls the note at safe points (``requested``, ``check``) and stops from there. A second
signal ends the process at once, for a user who will not wait.

Only the ``jaxgd`` command installs it, as early as it can: importing ``jaxgd`` in the
``jaxgd`` process itself (``python -m jaxgd`` or the ``jaxgd`` script) installs it before
JAX loads, so a signal in the first second is never lost either. A program that imports the
library keeps its own signal handling.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

#: The signals that ask a run to stop; each ends it with status 128 + its number.
SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                if hasattr(signal, name))

_received: list[int] = []  # the signals noted since ``install``, in order


class Stopped(KeyboardInterrupt):
    """A stop signal arrived: Ctrl-C (SIGINT), SIGTERM or SIGHUP; ``status`` is 128 + its
    number (130 for Ctrl-C, 143 for SIGTERM), the exit status a shell expects."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.status = 128 + signum

    @property
    def verb(self) -> str:
        """How the command line says it: "interrupted" for Ctrl-C, else "stopped"."""
        return "interrupted" if self.signum == signal.SIGINT else "stopped"


def _note(signum: int, _frame) -> None:
    if _received:  # a second signal: the user insists
        os.write(2, b"\njaxgd: stopped at once\n")
        os._exit(128 + _received[0])
    _received.append(signum)


def requested() -> int | None:
    """The first stop signal noted since ``install``, or None."""
    return _received[0] if _received else None


def check() -> None:
    """Raises ``Stopped`` if a stop signal was noted: call it where stopping is safe."""
    if _received:
        raise Stopped(_received[0])


def install() -> dict[int, object]:
    """Notes the stop signals from now on (main thread only; elsewhere it does nothing).

    Returns:
      The handlers it replaced, for ``restore``.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, _note) for signum in SIGNALS}


def restore(previous: dict[int, object]) -> None:
    """Puts back the handlers ``install`` replaced and forgets the signals noted."""
    for signum, handler in previous.items():
        signal.signal(signum, handler)
    _received.clear()


def _is_the_command() -> bool:
    """Whether this process is the ``jaxgd`` command: ``python -m jaxgd`` (while it imports
    the package, ``sys.argv[0]`` is "-m") or the ``jaxgd`` script."""
    argv = getattr(sys, "orig_argv", [])
    if sys.argv[:1] == ["-m"]:
        for i, arg in enumerate(argv):
            if arg == "-m":
                return argv[i + 1:i + 2] == ["jaxgd"]
            if arg == "-mjaxgd":
                return True
        return False
    return os.path.basename(sys.argv[0] if sys.argv else "") in ("jaxgd", "jaxgd.exe")


if _is_the_command():
    install()
