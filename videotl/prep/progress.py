"""Progress of a long run over files: a bar with rate and ETA on a terminal (tqdm), otherwise a
plain line every ``interval`` seconds (for logs of runs in the background); and the per-file
lines of the summary at its end."""

from __future__ import annotations

import sys
import time
from typing import Sequence, TextIO

from tqdm import tqdm

from videotl.data.lists import printable


class _Bar(tqdm):
    monitor_interval = 0  # no monitor thread: worker processes are forked


class Progress:
    """Counts finished items (and failed ones) out of ``total``."""

    def __init__(self, total: int, description: str = "", enabled: bool = True,
                 stream: TextIO | None = None, interval: float = 30.0) -> None:
        self.total, self.description, self.enabled = total, description, enabled
        self.stream = stream or sys.stderr
        self.interval = interval
        self.done = self.failed = 0
        self.start = self.last_line = time.monotonic()
        self.bar = None
        if enabled and self.stream.isatty():
            self.bar = _Bar(total=total, desc=description, unit="video", file=self.stream,
                            dynamic_ncols=True, smoothing=0.05)

    def update(self, failed: bool = False) -> None:
        self.done += 1
        self.failed += int(failed)
        if self.bar is not None:
            self.bar.update(1)
            if failed:
                self.bar.set_postfix(failed=self.failed, refresh=False)
        elif self.enabled and time.monotonic() - self.last_line >= self.interval:
            self.last_line = time.monotonic()
            print(self.line(), file=self.stream, flush=True)

    def line(self) -> str:
        """``"<description>: 120/1000 (12.0 %), 2 failed, 3.1 videos/s, ETA 0:04:44"``."""
        elapsed = time.monotonic() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        eta = time.strftime("%H:%M:%S", time.gmtime(left)) if left == left else "?"
        share = 100.0 * self.done / max(self.total, 1)
        return (f"{self.description}: {self.done}/{self.total} ({share:.1f} %), "
                f"{self.failed} failed, {rate:.2f} videos/s, ETA {eta}")

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def listed_files(title: str, items: Sequence[tuple[object, str]], limit: int) -> list[str]:
    """Summary lines for ``(file, reason)`` pairs: ``title:`` then one indented line per file, at
    most ``limit`` of them and a count of the rest; nothing when there are no items. Names and
    reasons are made printable on one line (``videotl.data.lists.printable``): a file name may
    hold line breaks or bytes that are not UTF-8."""
    if not items:
        return []
    lines = [f"{title}:"]
    lines.extend(f"  {printable(str(path))}: {printable(' '.join(reason.split()))}"
                 for path, reason in items[:limit])
    if len(items) > limit:
        lines.append(f"  ... and {len(items) - limit} more")
    return lines
