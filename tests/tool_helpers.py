"""Running a tool script in the test process: its heavy imports (torch, torchmetrics) are paid
once per test session instead of once per run, and monkeypatched functions reach it."""

import runpy
import sys
from pathlib import Path

import pytest


def run_script_here(script: Path, argv: list[str], monkeypatch) -> int:
    """Runs ``script`` as ``__main__`` (its ``run_tool(main)``) with ``argv``; returns its exit
    status. Its output stays in ``capsys`` for the caller."""
    monkeypatch.setattr(sys, "argv", [str(script), *argv])
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(script), run_name="__main__")
    return exited.value.code
