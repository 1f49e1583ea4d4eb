#!/usr/bin/env python3
"""Scores videos with a trained model: whole-video top-k (the config's test-time views for short
videos, sliding clips for long ones) and per-segment scores and labels of sliding clips.

Inputs (positional, beside the key=value overrides): video files, folders (searched
recursively for video files) and list files (.txt/.lst: one path per line; relative paths are
relative to the list). Writes to --out:
predictions.jsonl (one object per video: path, duration_s, top_k, segments; failed videos:
path and error), predictions.csv (one row per video), segments.csv (one row per segment) and,
with --render, <stem>_predictions.mp4 (top labels over the video) and <stem>_timeline.png.
A video that fails is reported and the run goes on; exit status 1 if any failed.

Examples:
    python tools/predict.py --config CFG --checkpoint W.pth clip.mp4 --out predictions
    python tools/predict.py --config CFG --checkpoint W.pth videos/ list.txt --out pred \\
        --topk 3 --stride 2 --render test.num_spatial_crops=1
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from videotl.errors import InputError
from videotl.utils.cli import ToolParser, config_parser
from videotl.utils.tool_errors import run_tool

if TYPE_CHECKING:
    from videotl.inference import Predictor

# Every import of torch or of the videotl packages that use it (videotl.inference, videotl.data)
# waits until the arguments are parsed: --help and argument errors answer at once.

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".ts",
                  ".flv", ".wmv", ".3gp"}
LIST_SUFFIXES = {".txt", ".lst", ".list"}


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Video paths from files, folders (recursive, by suffix) and list files, in order."""
    videos: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            videos += sorted(p for p in item.rglob("*")
                             if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        elif item.suffix.lower() in LIST_SUFFIXES and item.is_file():
            lines = item.read_text(encoding="utf-8").splitlines()
            videos += [item.parent / line.strip() for line in lines if line.strip()]
        elif item.exists():
            videos.append(item)
        else:
            raise InputError(f"input {item}: no such file or folder")
    if not videos:
        raise InputError(f"no video found in {', '.join(inputs)}")
    return videos


def build_parser() -> ToolParser:
    parser = config_parser(__doc__)
    parser.add_argument("--checkpoint", required=True, help="trained weights (.pth/.safetensors)")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--topk", type=int, default=5, help="classes listed per video (5)")
    parser.add_argument("--stride", type=float, default=None,
                        help="seconds between segment starts (default: one clip's span)")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="multi-label models: segment labels are the classes scoring at "
                             "least this (0.5)")
    parser.add_argument("--long-video", type=float, default=20.0,
                        help="videos longer than this many seconds get their whole-video "
                             "scores from the segments instead of the test views (20)")
    parser.add_argument("--class-names", default=None,
                        help="class-name file (default: the dataset's, under data.root)")
    parser.add_argument("--render", action="store_true",
                        help="also write <stem>_predictions.mp4 and <stem>_timeline.png")
    return parser


def main() -> int:
    parser = build_parser()
    args = parser.parse_args()
    # Positional arguments are key=value overrides and, without an "=", the inputs.
    overrides = [item for item in args.overrides if "=" in item]
    inputs = [item for item in args.overrides if "=" not in item]
    if not inputs:
        parser.error("no input: give video files, folders or list files")
    from videotl.config import load_config
    from videotl.inference import Predictor

    cfg = load_config(args.config, overrides)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    videos = expand_inputs(inputs)
    try:
        predictor = Predictor(cfg, args.checkpoint, top_k=args.topk, stride_s=args.stride,
                              threshold=args.threshold, long_video_s=args.long_video,
                              class_names_file=args.class_names)
    except ValueError as error:
        if isinstance(error, InputError):
            raise
        raise InputError(str(error)) from error
    return predict_all(predictor, videos, args.out, args.render)


def predict_all(predictor: Predictor, videos: list[Path], out: Path, render: bool) -> int:
    """Scores ``videos``, writing the files of the module docstring; 1 if any failed."""
    from tqdm import tqdm

    from videotl.data.video_reader import VideoDecodeError
    from videotl.inference.outputs import (
        SEGMENT_COLUMNS,
        VIDEO_COLUMNS,
        csv_writer,
        failure_record,
        prediction_record,
        segment_rows,
        video_row,
    )

    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    video_file, videos_csv = csv_writer(out / "predictions.csv", VIDEO_COLUMNS)
    segment_file, segments_csv = csv_writer(out / "segments.csv", SEGMENT_COLUMNS)
    with video_file, segment_file, (out / "predictions.jsonl").open("w") as jsonl:
        for video in tqdm(videos, desc="videos", unit="video", file=sys.stderr):
            try:
                prediction = predictor.predict(video)
                if render:
                    render_outputs(predictor, prediction, out)
            except (VideoDecodeError, OSError, ValueError) as error:
                failed += 1
                reason = getattr(error, "reason", None) or str(error)
                tqdm.write(f"failed: {video}: {reason}", file=sys.stderr)
                jsonl.write(json.dumps(failure_record(str(video), reason)) + "\n")
                videos_csv.writerow({"path": str(video), "error": reason})
                continue
            jsonl.write(json.dumps(prediction_record(prediction)) + "\n")
            videos_csv.writerow(video_row(prediction))
            segments_csv.writerows(segment_rows(prediction))
    print(f"{len(videos) - failed} of {len(videos)} videos scored; outputs in {out}"
          + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0


def render_outputs(predictor: Predictor, prediction, out: Path) -> None:
    """``<stem>_predictions.mp4`` and ``<stem>_timeline.png`` of one scored video."""
    from videotl.inference.outputs import render_timeline, render_video

    stem = Path(prediction.path).stem
    render_video(predictor.open(prediction.path), prediction, out / f"{stem}_predictions.mp4")
    threshold = predictor.threshold if prediction.multilabel else None
    render_timeline(prediction, out / f"{stem}_timeline.png", threshold=threshold)


if __name__ == "__main__":
    run_tool(main)
