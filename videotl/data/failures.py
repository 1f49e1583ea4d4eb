"""A record of videos that failed to load, shared by a dataset's DataLoader worker processes.

Each worker holds its own copy of the dataset, so an in-memory list would stay empty in the main
process. ``FailureLog`` keeps one small file per failed video in a private temporary folder
(created by the process that builds the dataset, removed when that process drops it): creating
the file with ``O_EXCL`` makes exactly one process log a given video, and any process can list
all failures. Works with fork and spawn start methods (only a path is pickled).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import weakref
from pathlib import Path

logger = logging.getLogger(__name__)


class FailureLog:
    """Failed videos as ``(path, reason)``, each logged once across processes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.folder = tempfile.mkdtemp(prefix="videotl-failures-")
        weakref.finalize(self, _remove_if_owner, self.folder, os.getpid())

    def record(self, path: str, reason: str) -> bool:
        """Stores a failure; logs and returns True the first time ``path`` fails."""
        marker = Path(self.folder) / hashlib.sha1(path.encode("utf-8")).hexdigest()
        try:
            handle = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(f"{path}\t{' '.join(reason.split())}")
        logger.warning("%s: cannot load video %s: %s", self.name, path, reason)
        return True

    def entries(self) -> list[tuple[str, str]]:
        """All failures so far, oldest first: ``[(path, reason), ...]``."""
        folder = Path(self.folder)
        if not folder.is_dir():
            return []
        markers = sorted(folder.iterdir(), key=lambda item: (item.stat().st_mtime_ns, item.name))
        entries = []
        for marker in markers:
            text = marker.read_text(encoding="utf-8")
            if "\t" in text:  # a marker being written by another process may still be empty
                path, reason = text.split("\t", 1)
                entries.append((path, reason))
        return entries

    def __len__(self) -> int:
        return len(self.entries())


def _remove_if_owner(folder: str, owner_pid: int) -> None:
    if os.getpid() == owner_pid:  # a forked worker's copy must not delete the shared folder
        shutil.rmtree(folder, ignore_errors=True)
