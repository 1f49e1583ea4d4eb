#!/usr/bin/env python
"""Packs a prepared dataset's splits into WebDataset tar shards, for storage where opening many
small files is slow (network file systems, object stores); train and test from them with
data.format=shards (docs/DATASETS.md#tar-shards).

The videos are those the config's dataset lists, read exactly as training reads them
(data.dataset, data.root, data.video_dir, data.exclude_file, ...). Each split becomes
OUT/<split>-000000.tar, ... (per video: <key>.json, its annotation, and <key>.<ext>, the file's
bytes) and the manifest OUT/<split>.json. Videos go into shards in an order shuffled with
--seed (a shard is not one class); a shard closes before it passes --shard-size MiB and/or
--videos-per-shard videos.

  * parallel: --jobs processes, one shard each at a time, each with a time limit (--timeout);
  * resumable and atomic: shards are written under temporary names and renamed when complete;
    a rerun keeps the shards that match its plan and writes the rest; manifests come last;
  * nothing dropped in silence: a missing or unreadable video is listed with the reason here
    and in the manifest, and the exit status is then 1.

Examples:
    python data_prep/make_shards.py --config configs/kinetics400/base.yaml \\
        data.root=data/k400 --out data/k400/shards --shard-size 512 --jobs 8
    python data_prep/make_shards.py --config configs/charades/base.yaml \\
        data.root=data/charades --out /nfs/charades_shards --videos-per-shard 200
then train with data.format=shards data.shard_dir=<OUT>.
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
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for the shards and manifests (data.shard_dir)")
    parser.add_argument("--splits", nargs="+", default=["train", "val", "test"],
                        choices=["train", "val", "test"],
                        help="the splits to pack (default: all three)")
    parser.add_argument("--shard-size", type=float, default=256.0,
                        help="MiB per shard at most (default 256; 0: no size limit)")
    parser.add_argument("--videos-per-shard", type=int, default=None,
                        help="videos per shard at most (default: no count limit)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the order of videos into shards (default 0)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="parallel processes (default: every core this process may use)")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds one shard may take before it counts as failed "
                             "(default 3600)")
    parser.add_argument("--no-progress", action="store_true", help="no progress display")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Imported after parsing: --help and argument errors answer without loading torch.
    from videotl.config import ConfigError, load_config
    from videotl.data.lists import AnnotationError
    from videotl.prep.shards import MIB, make_shards

    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as error:
        exit_with_error(error)
    try:
        if args.shard_size < 0:
            raise ValueError(f"--shard-size must be at least 0 MiB, got {args.shard_size:g}")
        for name, value in (("--videos-per-shard", args.videos_per_shard),
                            ("--jobs", args.jobs)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if not args.shard_size and args.videos_per_shard is None:
            raise ValueError("--shard-size 0 needs --videos-per-shard")
        summary = make_shards(cfg, args.out, args.splits,
                              max_bytes=max(1, round(args.shard_size * MIB))
                              if args.shard_size else None,
                              max_videos=args.videos_per_shard, seed=args.seed, jobs=args.jobs,
                              timeout=args.timeout, progress=not args.no_progress)
    except (AnnotationError, ValueError, FileNotFoundError) as error:
        exit_with_error(error)
    print(summary.text())
    if summary.interrupted:
        return 130
    print(f"train with: data.format=shards data.shard_dir={args.out.resolve()}")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    run_tool(main)
