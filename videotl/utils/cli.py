"""Argument parsing shared by the scripts in ``tools/`` (``--config CFG [key=value ...]``) and in
``data_prep/`` (the video-list arguments); how they end on errors: ``tool_errors.run_tool``.

Every script spells one concept one way: ``--out`` for what it writes (a folder, or the file
when it writes one), ``--jobs N`` for worker processes, ``--class-names FILE`` for class names.
The spellings used before are refused with their new name (``RENAMED_OPTIONS``), as renamed
config keys are (``videotl.config.loader.RENAMED_KEYS``).

This module imports nothing heavy (no torch, no NumPy, no videotl package beyond the registry
and the errors): a script builds its parser from it alone and imports the rest after parsing,
so that ``--help`` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence

from videotl.errors import InputError
from videotl.registry import Registry

# Old spelling -> the option that replaced it. A parser refuses an old spelling when it has the
# new option (a tool without --jobs says nothing about --processes).
RENAMED_OPTIONS = {
    "--output": "--out",
    "--output-root": "--out",
    "--work-dir": "--out",
    "--processes": "--jobs",
    "--classes": "--class-names",
}


class RenamedOption(argparse.Action):
    """A hidden option that was renamed: given, it ends parsing with ``InputError("<old> was
    renamed to <new>")`` (one line and exit status 2 under ``run_tool``). It takes the value
    the old option took, if any, so that the message is the only complaint."""

    def __init__(self, option_strings: Sequence[str], dest: str, new: str, **kwargs: Any):
        super().__init__(option_strings, dest=argparse.SUPPRESS, nargs="?",
                         default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None):
        raise InputError(f"{option_string} was renamed to {self.new}")


class ToolParser(argparse.ArgumentParser):
    """An argument parser whose positional arguments (``key=value`` overrides, paths) may stand
    anywhere on the command line: before, between or after the options; old spellings of its
    options (``RENAMED_OPTIONS``) are refused with their new name."""

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        return self.parse_intermixed_args(args, namespace)

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        self.add_renamed_options()
        return super().parse_known_args(args, namespace)

    def add_renamed_options(self) -> None:
        """Adds a hidden ``RenamedOption`` for each old spelling whose new option this parser
        has (called when parsing, once every option of the script is known)."""
        known = self._option_string_actions
        for old, new in RENAMED_OPTIONS.items():
            if new in known and old not in known:
                self.add_argument(old, action=RenamedOption, new=new)


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
    """The arguments every single-label preparation script shares: ``--videos``, ``--out`` and
    ``--class-names`` (what ``videotl.prep.single_label.write_single_label_lists`` takes
    besides the dataset and the annotations)."""
    parser.add_argument("--videos", type=Path, required=True,
                        help="folder of the videos (searched recursively)")
    parser.add_argument("--out", type=Path, required=True,
                        help="where the lists go: data.root")
    parser.add_argument("--class-names", type=Path, default=None,
                        help="class names in index order (.txt, one per line, or .json); "
                             "default: the annotated labels, sorted")


def output_dir_overrides(out: str | Path | None, overrides: Sequence[str]) -> list[str]:
    """``overrides`` with ``output_dir`` set to ``out`` (a tool's ``--out DIR``), quoted so
    that any folder name reads back unchanged; ``out`` None leaves them as they are. Setting the
    folder twice (``--out`` and an ``output_dir=`` override) is an ``InputError``."""
    if out is None:
        return list(overrides)
    if any(item.partition("=")[0].strip() == "output_dir" for item in overrides):
        raise InputError("--out and output_dir= both set the run's folder; give one of them")
    # A JSON string is a YAML string: the override parser reads it back as the same text.
    return [*overrides, "output_dir=" + json.dumps(str(out), ensure_ascii=False)]


def registry_names(registry: Registry, text: str, option: str) -> list[str]:
    """The comma-separated names of ``registry`` given to ``option``. An unknown name is an
    ``InputError`` naming the option, with the registry's message (close matches suggested).

    Checked after parsing, not as an argparse ``type``: the registries fill when their package is
    imported, which a script does only after parsing."""
    names = [item.strip() for item in text.split(",")]
    for name in names:
        if name not in registry:
            raise InputError(f"{option}: {registry.unknown_message(name)}")
    return names
