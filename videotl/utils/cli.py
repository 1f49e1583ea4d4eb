"""Argument parsing shared by the tool scripts: ``--config CFG [key=value ...]``."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn, Sequence

from videotl.config import ConfigError, ExperimentConfig, load_config


def config_parser(description: str) -> argparse.ArgumentParser:
    """A parser with ``--config`` and trailing ``key=value`` overrides."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", required=True, help="experiment YAML file")
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value",
        help="config overrides with dotted keys, e.g. data.num_frames=32 solver.base_lr=0.1",
    )
    return parser


def load_or_exit(path: str, overrides: Sequence[str]) -> ExperimentConfig:
    """``load_config``, printing a config error and exiting with status 2 instead of a trace."""
    try:
        return load_config(path, overrides)
    except ConfigError as error:
        exit_with_error(error)


def exit_with_error(error: Exception) -> NoReturn:
    """Prints ``error: ...`` to stderr and exits with status 2 (bad input)."""
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
