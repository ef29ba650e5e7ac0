"""The one exit-code policy of every command: 0 done, 1 done but something failed (the
command returns it: a failed drive, a metric worse than the gate), 2 a user error
(any :class:`~vps_ros.errors.VpsRosError`: one line on stderr, no traceback), 130
interrupted."""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from ..errors import VpsRosError

USER_ERROR = 2
INTERRUPTED = 130


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
