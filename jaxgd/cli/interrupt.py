"""Ctrl-C and SIGTERM during ``jaxgd run``: felt at once, and only whole chunks are kept.

XLA holds the calling thread until a compiled loop ends, and Python handles signals only in
the main thread, so ``interruptible`` runs the work in a helper thread and ends the process
when a signal arrives; ``stop_signals`` turns SIGTERM and SIGHUP into ``Stopped``, which the
command line handles like Ctrl-C with the signal's exit status (143 for SIGTERM).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator


class Stopped(KeyboardInterrupt):
    """SIGTERM (or SIGHUP) arrived: handled like Ctrl-C, with the signal's exit status."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.status = 128 + signum


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Turns SIGTERM and SIGHUP into ``Stopped`` in the main thread while the block runs."""
    def handler(signum, _frame):
        raise Stopped(signum)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    wanted = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {signum: signal.signal(signum, handler) for signum in wanted}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def interruptible(work, stopped_message: Callable[[], str] = lambda: "nothing was written",
                  before_exit: Callable[[], None] = lambda: None):
    """Runs ``work`` in a helper thread so that Ctrl-C and SIGTERM are felt at once.

    XLA holds the calling thread until a compiled loop ends, and Python handles signals only
    in the main thread, so a run on the main thread would ignore Ctrl-C for its whole length.
    ``work`` saves each chunk whole as it finishes, so ending the process at any moment
    loses only the chunk being computed; ``stopped_message`` says what was kept, and
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
    try:
        while thread.is_alive():
            thread.join(0.1)
    except KeyboardInterrupt as error:
        status = error.status if isinstance(error, Stopped) else 130
        what = "stopped" if isinstance(error, Stopped) else "interrupted"
        sys.stdout.flush()
        print(f"jaxgd: {what}; {stopped_message()}", file=sys.stderr, flush=True)
        before_exit()
        os._exit(status)  # the loop cannot be stopped from outside; end the process with it
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
