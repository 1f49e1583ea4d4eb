"""Argument parsing shared by the scripts in ``tools/`` (``--config CFG [key=value ...]``) and in
``data_prep/`` (the video-list arguments); how they end on errors: ``tool_errors.run_tool``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from videotl.registry import Registry


class ToolParser(argparse.ArgumentParser):
    """An argument parser whose positional arguments (``key=value`` overrides, paths) may stand
    anywhere on the command line: before, between or after the options."""

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        return self.parse_intermixed_args(args, namespace)


def tool_parser(description: str) -> ToolParser:
    """A parser for a script in ``tools/`` or ``data_prep/``, with ``--debug`` (tracebacks;
    see ``videotl.utils.tool_errors.run_tool``)."""
    parser = ToolParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (also: VIDEOTL_DEBUG=1)")
    return parser


def config_parser(description: str) -> ToolParser:
    """A tool parser with ``--config`` and ``key=value`` overrides anywhere."""
    parser = tool_parser(description)
    parser.add_argument("--config", required=True, help="experiment YAML file")
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value",
        help="config overrides with dotted keys, e.g. data.num_frames=32 solver.base_lr=0.1",
    )
    return parser


def add_list_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments every single-label preparation script shares: ``--videos``, ``--output``
    and ``--classes`` (what ``videotl.prep.single_label.write_single_label_lists`` takes
    besides the dataset and the annotations)."""
    parser.add_argument("--videos", type=Path, required=True,
                        help="folder of the videos (searched recursively)")
    parser.add_argument("--output", type=Path, required=True,
                        help="where the lists go: data.root")
    parser.add_argument("--classes", type=Path, default=None,
                        help="class names in index order (.txt, one per line, or .json); "
                             "default: the annotated labels, sorted")


def registry_names(registry: Registry) -> Callable[[str], list[str]]:
    """An argparse ``type`` for comma-separated names of ``registry``: unknown names are refused
    with the registry's message (close matches suggested)."""

    def parse(text: str) -> list[str]:
        names = [item.strip() for item in text.split(",")]
        for name in names:
            if name not in registry:
                raise argparse.ArgumentTypeError(registry.unknown_message(name))
        return names

    return parse
