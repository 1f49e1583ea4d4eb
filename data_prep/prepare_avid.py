#!/usr/bin/env python
"""AViD: official annotations + downloaded videos -> the lists videotl reads.

Reads the official split files (``avid_train.json`` / ``avid_val.json`` from the AViD
repository's dataset/ folder: {"<video>.mp4": "<class name>"}; a two-column CSV
``video,label`` is accepted too), finds each video under --videos by its file name without
extension (in any sub-folder), and writes into --out:

  classes.txt            class names, sorted (or the order of --class-names)
  train.csv, val.csv     "path,label" rows, path relative to --videos, label a class index
  test.csv               labelled --test annotations, else a copy of val.csv
  missing_videos.txt     annotated videos without a file (left out of the lists)
  unlisted_videos.txt    video files that no annotation names

Example:
    python data_prep/prepare_avid.py --train AViD/dataset/avid_train.json \\
        --val AViD/dataset/avid_val.json --videos data/avid/videos_256 --out data/avid
See docs/DATASETS.md (including the videos labelled "none").
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
    parser.add_argument("--train", type=Path, required=True, help="avid_train.json")
    parser.add_argument("--val", type=Path, required=True, help="avid_val.json")
    parser.add_argument("--test", type=Path, default=None, help="a labelled test split, if any")
    add_list_arguments(parser)
    parser.add_argument("--drop-label", action="append", default=[], metavar="LABEL",
                        help="leave out the videos with this label (repeatable), e.g. none")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Imported after parsing: --help and argument errors answer without loading torch.
    from videotl.data.avid import AVID
    from videotl.data.lists import AnnotationError
    from videotl.prep.avid import NUM_CLASSES, read_avid_annotations
    from videotl.prep.single_label import write_single_label_lists

    files = {"train": args.train, "val": args.val, "test": args.test}
    try:
        annotations = {split: read_avid_annotations(path, args.drop_label)
                       for split, path in files.items() if path is not None}
        report = write_single_label_lists(AVID, annotations, args.videos, args.out,
                                          args.class_names)
    except (AnnotationError, FileNotFoundError) as error:
        exit_with_error(error)
    print(report.summary())
    if len(report.classes) != NUM_CLASSES:
        print(f"note: {len(report.classes)} classes; the AViD paper reports {NUM_CLASSES} "
              "(configs/avid/base.yaml sets model.num_classes=887)")
    print("train with: data.dataset=avid " + " ".join(report.config_overrides())
          + f" model.num_classes={len(report.classes)}")


if __name__ == "__main__":
    run_tool(main)
