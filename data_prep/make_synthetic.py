#!/usr/bin/env python
"""Writes a synthetic dataset (real H.264 videos + annotation files in the official format).

Examples:
    python data_prep/make_synthetic.py kinetics data/synthetic/kinetics
    python data_prep/make_synthetic.py charades data/synthetic/charades --seed 1
    python data_prep/make_synthetic.py avid data/synthetic/avid --train-videos 600

Then point a config at it, e.g. ``data.dataset=kinetics data.root=data/synthetic/kinetics``
(Charades: also ``data.video_dir=Charades_v1_480``, the default of configs/charades/base.yaml).
See docs/DATASETS.md for the classes and layouts.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from videotl.utils.cli import ToolParser, tool_parser  # noqa: E402
from videotl.utils.tool_errors import exit_with_error, run_tool  # noqa: E402

# videotl.data.synthetic.KINDS, spelt here so that --help needs no torch (a test keeps them
# equal).
KINDS = ("kinetics", "charades", "avid")


def build_parser() -> ToolParser:
    parser = tool_parser(__doc__)
    parser.add_argument("kind", choices=KINDS, help="which dataset format to imitate")
    parser.add_argument("root", type=Path, help="output folder (must not hold annotations yet)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same files (default 0)")
    parser.add_argument("--train-videos", type=int, default=None,
                        help="training videos (default: the kind's, in docs/DATASETS.md"
                             "#synthetic-datasets)")
    parser.add_argument("--eval-videos", type=int, default=None,
                        help="validation/test videos (default: see --train-videos)")
    parser.add_argument("--short-side", type=int, default=128,
                        help="frame height in pixels, 4:3 frames (default 128)")
    parser.add_argument("--video-dir", default=None,
                        help="video folder under root (default: the one of the dataset's "
                             "release, docs/DATASETS.md)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="rendering processes (default: CPU cores, at most 8)")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Imported after parsing: --help and argument errors answer without loading torch.
    from videotl.data.synthetic import make_synthetic_dataset

    start = time.perf_counter()
    try:
        summary = make_synthetic_dataset(
            args.kind, args.root, seed=args.seed, train_videos=args.train_videos,
            eval_videos=args.eval_videos, short_side=args.short_side, video_dir=args.video_dir,
            processes=args.jobs)
    except (ValueError, FileExistsError) as error:
        exit_with_error(error)
    seconds = time.perf_counter() - start
    splits = ", ".join(f"{count} {split}" for split, count in summary.videos.items())
    print(f"wrote a synthetic {args.kind} dataset to {summary.root}: {splits} videos, "
          f"{len(summary.classes)} classes, {summary.frames} frames in {seconds:.1f} s")


if __name__ == "__main__":
    run_tool(main)
