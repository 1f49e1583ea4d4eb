"""How the tools end on an error: one line on stderr and an exit status, never a traceback for
what a user can act on.

``run_tool(main)`` runs a tool's ``main()`` and turns

- videotl's anticipated errors (``videotl.errors``: ``InputError`` exit 2, ``RunError`` exit 1),
  also when a DataLoader worker raised them (PyTorch re-raises them in the main process with the
  worker's whole traceback in the message; the original message is recovered);
- a full disk, a read-only or unwritable folder, a missing file (``OSError``, naming the path)

into ``error: <message>``. Anything else is a bug and keeps its traceback, as does every error
with ``--debug`` on the command line or ``VIDEOTL_DEBUG=1`` in the environment. Ctrl-C ends with
``interrupted`` and status 130.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from typing import Callable, NoReturn

from videotl.errors import VideotlError

DEBUG_ENV = "VIDEOTL_DEBUG"
_WORKER = re.compile(r"Caught (\w+) in DataLoader worker process \d+\.\nOriginal Traceback")
_OS_REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


def debugging(argv: list[str] | None = None) -> bool:
    """Tracebacks wanted: ``--debug`` among the arguments or ``VIDEOTL_DEBUG`` set (not 0)."""
    argv = sys.argv[1:] if argv is None else argv
    return "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def run_tool(main: Callable[[], int | None]) -> NoReturn:
    """Runs ``main()`` and exits with its status (None: 0), or as the module docstring says."""
    try:
        status = main()
    except KeyboardInterrupt:
        if debugging():
            raise
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 - described below, or re-raised as a bug
        described = describe_error(error)
        if described is None or debugging():
            raise
        code, message = described
        print(f"error: {message}", file=sys.stderr)
        sys.exit(code)
    sys.exit(status or 0)


def describe_error(error: BaseException) -> tuple[int, str] | None:
    """``(exit status, message)`` for an anticipated error, None for a bug."""
    worker = _worker_error(error)
    if worker is not None:
        return worker
    if isinstance(error, VideotlError):
        return error.exit_status, str(error)
    if isinstance(error, OSError):
        return _os_error(error)
    return None


def _worker_error(error: BaseException) -> tuple[int, str] | None:
    """An anticipated error raised inside a DataLoader worker, with its original message."""
    text = str(error)
    match = _WORKER.search(text)
    if match is None:
        return None
    kind = _anticipated_kind(match.group(1))
    if kind is None:
        return None
    # The traceback ends with "<module>.<Name>: <message>"; the message may span lines.
    tail = re.split(rf"^(?:[\w.]+\.)?{match.group(1)}: ", text, flags=re.M)[-1]
    return kind.exit_status, tail.strip()


def _anticipated_kind(name: str) -> type[VideotlError] | None:
    pending = [VideotlError]
    while pending:
        kind = pending.pop()
        if kind.__name__ == name:
            return kind
        pending += kind.__subclasses__()
    return None


def _os_error(error: OSError) -> tuple[int, str]:
    if error.errno is None:
        # Raised by videotl with a message of its own about a path the user gave ("video
        # folder not found", "already holds a dataset"): bad input.
        return 2, str(error)
    where = f"{error.filename}: " if error.filename else ""
    if isinstance(error, FileNotFoundError):
        return 2, f"{where}no such file or directory"
    reason = _OS_REASONS.get(error.errno or 0, error.strerror or str(error))
    return 1, f"{where}{reason}"


def exit_with_error(error: BaseException) -> NoReturn:
    """Prints ``error: ...`` and exits with the error's status; an error this module does not
    know (a ``ValueError`` from checking a script's own arguments) counts as bad input (2)."""
    described = describe_error(error)
    code, message = described if described is not None else (2, str(error))
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)
