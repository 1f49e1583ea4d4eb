#!/usr/bin/env python
"""Charades v1: official release files + downloaded videos -> what videotl reads.

The Charades loader reads the official files unchanged. This script checks
``Charades_v1_classes.txt``, ``Charades_v1_train.csv`` and ``Charades_v1_test.csv`` (in
--annotations) with the loader's own parsers, copies them into --out (data.root), and
matches every annotated id to ``<videos>/<id>.mp4``. It writes into --out:

  missing_videos.txt     ids without a video: an exclusion list (data.exclude_file)
  unlisted_videos.txt    video files that are not <id>.mp4 of an annotated id

Example (after re-encoding Charades_v1_480 with data_prep/resize_videos.py):
    python data_prep/prepare_charades.py --annotations Charades \\
        --videos data/charades/Charades_v1_480_12fps --out data/charades
See docs/DATASETS.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from videotl.utils.cli import ToolParser, tool_parser  # noqa: E402
from videotl.utils.tool_errors import exit_with_error, run_tool  # noqa: E402


def build_parser() -> ToolParser:
    parser = tool_parser(__doc__)
    parser.add_argument("--annotations", type=Path, required=True,
                        help="folder holding the official Charades_v1_*.csv / classes files")
    parser.add_argument("--videos", type=Path, required=True, help="folder of <id>.mp4 videos")
    parser.add_argument("--out", type=Path, required=True,
                        help="data.root: receives the annotation files and the reports")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Imported after parsing: --help and argument errors answer without loading torch.
    from videotl.data.lists import AnnotationError
    from videotl.prep.charades import prepare_charades

    try:
        report = prepare_charades(args.annotations, args.videos, args.out)
    except (AnnotationError, FileNotFoundError) as error:
        exit_with_error(error)
    print(report.summary())
    print("train with: data.dataset=charades " + " ".join(report.config_overrides()))


if __name__ == "__main__":
    run_tool(main)
