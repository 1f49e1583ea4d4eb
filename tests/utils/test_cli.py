"""The shared argument parsing of tools/ and data_prep/ (videotl.utils.cli): options renamed
when the command lines were unified are refused with their new name, --out sets output_dir,
registry names are checked after parsing."""

import subprocess
import sys

import pytest

from videotl.config.loader import parse_override
from videotl.errors import InputError
from videotl.registry import Registry
from videotl.utils.cli import (
    RENAMED_OPTIONS,
    add_list_arguments,
    config_parser,
    output_dir_overrides,
    registry_names,
    tool_parser,
)


def a_tool():
    parser = config_parser("a tool")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes")
    return parser


@pytest.mark.parametrize("argv, message", [
    (["--config", "c.yaml", "--output", "o"], "--output was renamed to --out"),
    (["--config", "c.yaml", "--output-root=o"], "--output-root was renamed to --out"),
    (["--work-dir", "o", "--config", "c.yaml"], "--work-dir was renamed to --out"),
    (["--config", "c.yaml", "--out", "o", "--processes", "2"], "--processes was renamed to --jobs"),
    # Before the missing --out is reported: the rename is what the user needs to know.
    (["--config", "c.yaml", "a=1", "--output", "o", "b=2"], "--output was renamed to --out"),
])
def test_old_spellings_are_refused_with_their_new_name(argv, message):
    with pytest.raises(InputError) as refused:
        a_tool().parse_args(argv)
    assert str(refused.value) == message


def test_only_old_spellings_of_options_the_tool_has_are_known():
    parser = tool_parser("no --class-names here")
    parser.add_argument("--out", help="output folder")
    with pytest.raises(SystemExit) as exited:  # argparse: unrecognised argument
        parser.parse_args(["--classes", "c.txt"])
    assert exited.value.code == 2
    with pytest.raises(InputError, match="^--output was renamed to --out$"):
        parser.parse_args(["--output", "o"])


def test_new_spellings_parse_and_positionals_stand_anywhere():
    args = a_tool().parse_args(["a=1", "--out", "o", "b=2", "--config", "c.yaml", "--jobs", "3"])
    assert (args.out, args.jobs, args.config, args.overrides) == ("o", 3, "c.yaml", ["a=1", "b=2"])
    assert not hasattr(args, "output") and not hasattr(args, "processes")


def test_renamed_options_are_hidden_from_help(capsys):
    parser = a_tool()
    parser.add_renamed_options()
    parser.add_renamed_options()  # once is enough; again adds nothing
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    shown = capsys.readouterr().out
    assert "--out OUT" in shown and "--jobs JOBS" in shown
    assert not any(old in shown for old in RENAMED_OPTIONS)


def test_list_arguments_use_the_unified_names():
    parser = tool_parser("prep")
    add_list_arguments(parser)
    args = parser.parse_args(["--videos", "v", "--out", "o", "--class-names", "c.txt"])
    assert (str(args.videos), str(args.out), str(args.class_names)) == ("v", "o", "c.txt")
    with pytest.raises(InputError, match="^--classes was renamed to --class-names$"):
        parser.parse_args(["--videos", "v", "--out", "o", "--classes", "c.txt"])


@pytest.mark.parametrize("folder", ["runs/exp 1", "123", "null", "yes", "[1, 2]", "a: b",
                                    "vidéo 日本/$(touch x)", "it's \"quoted\"", "two\nlines"])
def test_out_sets_output_dir_to_exactly_the_folder_given(folder):
    overrides = output_dir_overrides(folder, ["train.epochs=1"])
    assert overrides[0] == "train.epochs=1" and len(overrides) == 2
    assert parse_override(overrides[1]) == ("output_dir", folder)


def test_out_and_output_dir_together_are_refused():
    assert output_dir_overrides(None, ["output_dir=a"]) == ["output_dir=a"]
    with pytest.raises(InputError) as refused:
        output_dir_overrides("b", ["train.epochs=1", " output_dir = a"])
    assert str(refused.value) == ("--out and output_dir= both set the run's folder; "
                                  "give one of them")


def test_registry_names_are_checked_with_the_option_named():
    reducers = Registry("token reducer")
    for name in ("ats", "grid_pool", "tokenlearner_v11"):
        reducers.add(name, object())
    assert registry_names(reducers, "ats, grid_pool", "--reducers") == ["ats", "grid_pool"]
    with pytest.raises(InputError) as refused:
        registry_names(reducers, "ats,grid_pol", "--reducers")
    assert str(refused.value) == ("--reducers: unknown token reducer 'grid_pol'; did you mean "
                                  "'grid_pool'? (known: ats, grid_pool, tokenlearner_v11)")


def test_the_module_imports_nothing_heavy():
    code = ("import sys, videotl.utils.cli, videotl.utils.tool_errors; "
            "print(sorted(m for m in ('torch', 'numpy', 'omegaconf', 'av') if m in sys.modules))")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True)
    assert shown.stdout == "[]\n"
