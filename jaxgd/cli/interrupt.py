"""Ctrl-C and SIGTERM during ``jaxgd run``: felt at once, never lost, only whole chunks kept.

The signal handler never raises (an exception raised inside a garbage-collector callback is
lost, and the run would go on; see ``jaxgd._signals``): it notes the signal, and the run
polls the note. The work that cannot be stopped from inside (a compiled loop holds its
thread until it ends; a file is parsed for minutes) runs in a helper thread while the main
thread polls every ``POLL_SECONDS`` and ends the process when a signal was noted
(``interruptible``); the main thread's own steps call ``check`` between them. A stopped run
exits with 128 + the signal's number: 130 for Ctrl-C, 143 for SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

from jaxgd._signals import Stopped, check, install, requested, restore

__all__ = ["POLL_SECONDS", "Stopped", "check", "interruptible", "stop_signals"]

POLL_SECONDS = 0.05


@contextlib.contextmanager
def stop_signals(polled: bool = True) -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP while the block runs (main thread only).

    ``polled``: they are noted for ``check`` and ``interruptible`` (``jaxgd run``,
    ``jaxgd lr-range``); else they
    raise ``Stopped`` where the main thread is (the other commands, which write nothing that
    could be left half-done). A signal noted before the block (the ``jaxgd`` command notes
    them from its first imports) is raised on entering it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = install()
    try:
        check()
        if not polled:
            def handler(signum, _frame):
                raise Stopped(signum)
            for signum in previous:
                signal.signal(signum, handler)
        yield
    finally:
        restore(previous)


def interruptible(work, stopped_message: Callable[[], str] = lambda: "nothing was written",
                  before_exit: Callable[[], None] = lambda: None):
    """Runs ``work`` in a helper thread; ends the process as soon as a stop signal is noted.

    XLA holds the calling thread until a compiled loop ends, and a long file parse or
    reference solution would hold the main thread too: the main thread instead polls for a
    signal while the helper works. ``work`` saves each chunk whole as it finishes, so ending
    the process at any moment loses only the chunk being computed (a CSV file's temporary
    copy has no name and goes with the process); ``stopped_message`` says what was kept, and
    ``before_exit`` cleans up what ending the process would not (a lock file).
    """
    outcome = {}

    def target():
        try:
            outcome["value"] = work()
        except BaseException as error:  # handed to the main thread below
            outcome["error"] = error

    thread = threading.Thread(target=target, name="jaxgd-run", daemon=True)
    thread.start()
    while thread.is_alive() and requested() is None:
        thread.join(POLL_SECONDS)
    signum = requested()
    if signum is not None:  # even if the work just ended: nothing is written after a signal
        stop = Stopped(signum)
        sys.stdout.flush()
        print(f"jaxgd: {stop.verb}; {stopped_message()}", file=sys.stderr, flush=True)
        before_exit()
        os._exit(stop.status)  # the loop cannot be stopped from outside; end the process
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
