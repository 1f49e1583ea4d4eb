"""Writing files so that a crash or a full disk never leaves a half-written one.

``atomic_write(path)`` writes to a temporary file in the same folder (``.NAME.PID.tmp``), flushes
it to disk, then renames it over ``path``: readers see the previous file or the complete new one.
A run killed mid-write leaves the temporary file behind; ``remove_stale_temporaries(folder)``
deletes those (and only those) when the next run starts.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import IO, Iterator

# The temporary names atomic_write uses, and nothing else.
_TEMPORARY = re.compile(r"^\..+\.\d+\.tmp$")


def temporary_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """A handle to write ``path`` as a whole (``mode``: ``"w"`` text, UTF-8, or ``"wb"``).

    An ``OSError`` that names no file (a write on a full disk) is raised naming ``path``.
    """
    path = Path(path)
    temporary = temporary_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        if error.filename is not None:
            raise
        raise OSError(error.errno, error.strerror or str(error), str(path)) from error
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path) as handle:
        handle.write(text)


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Deletes the temporary files ``atomic_write`` left in ``folder`` (not below it) when a
    process was killed mid-write; returns them. Other files are never touched."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if p.is_file() and _TEMPORARY.match(p.name)]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
