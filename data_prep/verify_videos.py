#!/usr/bin/env python
"""Decodes a dataset's videos with the reader training uses and writes the unreadable ones to an
exclusion list for data.exclude_file.

The videos are those the config's dataset lists (data.dataset, data.root, data.video_dir,
...), minus those data.exclude_file already excludes. Each one is opened with VideoReader
(data.decoder, with its PyAV fallback) in a worker process with a time limit (--timeout), so a
hung or crashing decoder costs one video, not the run. All frames are decoded (or --frames
evenly spaced ones), at --short-side pixels (default: data.test_crop_size when
data.resize_at_decode, as in evaluation).

The output list holds the previous exclusion list's names, then every unreadable video after a
"# reason" comment; an id that a plain line cannot hold (one starting with '#', a line break)
is written as a JSON string, so every id reads back unchanged. The exit status is 1 when some
videos are unreadable.

Examples:
    python data_prep/verify_videos.py --config configs/kinetics400/base.yaml \\
        data.root=data/k400 --out data/k400/unreadable.txt
    python data_prep/verify_videos.py --config configs/charades/base.yaml \\
        data.root=data/charades --sample 500 --frames 16 --out /tmp/sample_check.txt
then train with data.exclude_file=<that file>.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from videotl.utils.cli import ToolParser, config_parser  # noqa: E402
from videotl.utils.tool_errors import exit_with_error, run_tool  # noqa: E402


def build_parser() -> ToolParser:
    parser = config_parser(__doc__)
    parser.add_argument("--out", type=Path, required=True, help="exclusion list to write")
    parser.add_argument("--splits", nargs="+", default=["train", "val", "test"],
                        choices=["train", "val", "test"],
                        help="the splits whose videos to check (default: all three)")
    parser.add_argument("--sample", type=int, default=None,
                        help="check this many randomly chosen videos (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    parser.add_argument("--frames", type=int, default=None,
                        help="decode this many evenly spaced frames per video (default: all)")
    parser.add_argument("--short-side", type=int, default=None,
                        help="decode at this short side (0: native size)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="parallel processes (default: every core this process may use)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds per video before it counts as unreadable (default 120)")
    parser.add_argument("--no-progress", action="store_true", help="no progress display")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Imported after parsing: --help and argument errors answer without loading torch.
    from videotl.config import ConfigError, load_config
    from videotl.data.lists import AnnotationError
    from videotl.prep.verify import previous_exclusions, verify_videos, write_exclusions

    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as error:
        exit_with_error(error)
    short_side = args.short_side
    if short_side is None:
        short_side = cfg.data.test_crop_size if cfg.data.resize_at_decode else None
    try:
        for name, value in (("--sample", args.sample), ("--frames", args.frames),
                            ("--jobs", args.jobs)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        previous = previous_exclusions(cfg)
        verification = verify_videos(cfg, args.splits, sample=args.sample, seed=args.seed,
                                     frames=args.frames, short_side=short_side or None,
                                     jobs=args.jobs, timeout=args.timeout,
                                     progress=not args.no_progress)
    except (AnnotationError, ValueError, FileNotFoundError) as error:
        exit_with_error(error)
    write_exclusions(args.out, verification, previous, cfg.data.exclude_file)
    print(verification.text())
    print(f"exclusion list: {args.out} (train with data.exclude_file={args.out.resolve()})")
    return 1 if verification.unreadable else 0


if __name__ == "__main__":
    run_tool(main)
