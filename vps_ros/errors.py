"""User-facing errors: each names what is wrong and where (file, frame, key).

The CLI turns any :class:`VpsRosError` into one line on stderr and exit code 2; the
node logs it and keeps running. Programming errors stay ordinary exceptions.
"""


class VpsRosError(Exception):
    """Bad input or configuration that the user can fix."""


class ConfigError(VpsRosError):
    """A configuration file or parameter is missing, malformed or out of range."""


class DataError(VpsRosError):
    """A dataset, bag or image is missing, truncated or inconsistent."""


class CheckpointError(VpsRosError):
    """A model checkpoint cannot be loaded (missing, truncated, mismatched)."""


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` of an exception (``Type`` alone when it has no
    message): the reason quoted when a library's multi-line error becomes one of ours."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
