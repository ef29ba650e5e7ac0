"""The one exit-code policy of every command: 0 done, 1 done but something failed (the
command returns it: a failed drive, a metric worse than the gate), 2 a user error
(any :class:`~vps_ros.errors.VpsRosError`: one line on stderr, no traceback), 130
interrupted."""
from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from typing import Callable, Iterator

from ..errors import VpsRosError

USER_ERROR = 2
INTERRUPTED = 130


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled wherever Ctrl-C is. A subclass, not KeyboardInterrupt itself:
    CPython (3.11) remembers a bare KeyboardInterrupt that crossed a nested
    ``PyRun_*`` evaluation and then ends the process by SIGINT even after the command
    caught it and returned 130; it compares the exact type, so a subclass is not
    remembered."""


def _interrupt(signum: int, frame) -> None:
    raise Terminated


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill PID``, a service manager stopping the command) ends the command as
    Ctrl-C does: KeyboardInterrupt, so a replay writes its partial report and exits 130.
    Only in the main thread, where Python delivers signals; the old handler is restored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_command(name: str, run: Callable[[argparse.Namespace], int | None],
                args: argparse.Namespace,
                report: Callable[[VpsRosError], bool] = lambda exc: True) -> int:
    """``run(args)``'s exit code under the policy above; an error for which ``report``
    is false exits 2 without its line (a torchrun rank whose rank 0 says it)."""
    try:
        return int(run(args) or 0)
    except VpsRosError as exc:
        if report(exc):
            print(f"vps-ros {name}: error: {exc}", file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt:
        print(f"vps-ros {name}: interrupted", file=sys.stderr)
        return INTERRUPTED
