"""Logging setup: the main process logs INFO to stdout and ``<output_dir>/log.txt``; other
processes log warnings only."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

_FORMAT = "[%(asctime)s %(levelname)s %(name)s] %(message)s"


class LogFileHandler(logging.FileHandler):
    """A log file that, when it cannot be written (a full or read-only disk), says so in one line
    on stderr and stops, instead of printing a traceback for every record; the console log goes
    on."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        error = sys.exc_info()[1]
        reason = getattr(error, "strerror", None) or str(error)
        print(f"warning: cannot write the log {self.baseFilename} ({reason}); logging to the "
              "console only", file=sys.stderr)
        logging.getLogger().removeHandler(self)
        self.close()


def setup_logging(output_dir: str | Path | None, rank: int = 0) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_videotl", False):
            root.removeHandler(handler)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if output_dir is not None and rank == 0:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        handlers.append(LogFileHandler(Path(output_dir) / "log.txt", encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
        handler._videotl = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(logging.INFO if rank == 0 else logging.WARNING)
