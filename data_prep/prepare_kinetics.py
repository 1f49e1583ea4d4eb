#!/usr/bin/env python
"""Kinetics-400/600/700: official annotations + downloaded videos -> the lists videotl reads.

Reads the official annotation files (CSV ``label,youtube_id,time_start,time_end,split`` or the
JSON form), finds each annotated clip under --videos by its file name
(``<youtube_id>_<start:06d>_<end:06d>.<ext>`` or ``<youtube_id>.<ext>``, in any sub-folder), and
writes into --out:

  classes.txt            class names, sorted (or the order of --class-names)
  train.csv, val.csv     "path,label" rows, path relative to --videos, label a class index
  test.csv               labelled --test annotations, else a copy of val.csv
  missing_videos.txt     annotated clips without a file (left out of the lists)
  unlisted_videos.txt    video files that no annotation names

Example (after re-encoding with data_prep/resize_videos.py):
    python data_prep/prepare_kinetics.py --train kinetics400/train.csv \\
        --val kinetics400/validate.csv --videos data/k400/videos_256 --out data/k400
See docs/DATASETS.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from videotl.utils.cli import ToolParser, add_list_arguments, tool_parser  # noqa: E402
from videotl.utils.tool_errors import exit_with_error, run_tool  # noqa: E402


def build_parser() -> ToolParser:
    parser = tool_parser(__doc__)
    parser.add_argument("--train", type=Path, required=True, help="training annotations")
    parser.add_argument("--val", type=Path, required=True, help="validation annotations")
    parser.add_argument("--test", type=Path, default=None,
                        help="test annotations (unlabelled ones are not listed)")
    add_list_arguments(parser)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Imported after parsing: --help and argument errors answer without loading torch.
    from videotl.data.kinetics import KINETICS
    from videotl.data.lists import AnnotationError
    from videotl.prep.kinetics import read_kinetics_annotations
    from videotl.prep.single_label import write_single_label_lists

    files = {"train": args.train, "val": args.val, "test": args.test}
    try:
        annotations = {split: read_kinetics_annotations(path)
                       for split, path in files.items() if path is not None}
        report = write_single_label_lists(KINETICS, annotations, args.videos, args.out,
                                          args.class_names)
    except (AnnotationError, FileNotFoundError) as error:
        exit_with_error(error)
    print(report.summary())
    print("train with: data.dataset=kinetics " + " ".join(report.config_overrides())
          + f" model.num_classes={len(report.classes)}")


if __name__ == "__main__":
    run_tool(main)
