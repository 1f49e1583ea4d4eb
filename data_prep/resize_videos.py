#!/usr/bin/env python
"""Re-encodes every video under INPUT into OUTPUT for fast training reads.

Each video becomes OUTPUT/<same sub-folder>/<name>.mp4: H.264 with the short side at
--short-side pixels (never enlarged unless --upscale), optionally resampled to --fps, no audio,
encoded to be cheap to decode: a keyframe at least every --keyframe-seconds (2), x264 --tune
fastdecode, no B-frames (--bframes 0), --crf 25, --preset veryfast; random training clips load
1.6x faster than with a keyframe every second, CABAC, deblocking and B-frames at CRF 23, in
fewer bytes (benchmarks/encoding_settings.py on real footage, BENCHMARKS.md). Encodes with PyAV
by default, or with the ffmpeg program (--encoder ffmpeg); both give the same files, and PyAV
was as fast or faster in benchmarks/resize_encoders.py (see BENCHMARKS.md).

  * parallel: --jobs processes (default: all cores), one thread each; progress bar with ETA;
  * resumable: finished outputs are skipped, so re-running after an interruption continues;
  * atomic: an output is written under a hidden temporary name and renamed when complete and
    checked, so an interrupted run never leaves a partial file under a final name;
  * safe names: no shell is involved; any file name works;
  * failures (unreadable source, time-out, crash) are listed at the end with their reasons and
    in OUTPUT/resize_failures.txt; the exit status is then 1;
  * nothing passed over in silence: hidden files and folders are videos like any other, and
    every other entry found (not a video, a broken link, a folder that cannot be listed, ...)
    is listed with its reason at the end and in OUTPUT/resize_skipped.txt.

Examples:
    python data_prep/resize_videos.py data/k400/raw data/k400/videos_256 --short-side 256
    python data_prep/resize_videos.py Charades_v1_480 data/charades/Charades_v1_480_12fps \\
        --short-side 256 --fps 12
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from videotl.prep.encode_settings import add_encode_arguments  # noqa: E402 (no torch)
from videotl.utils.cli import ToolParser, tool_parser  # noqa: E402
from videotl.utils.tool_errors import exit_with_error, run_tool  # noqa: E402

# videotl.prep.encode.ENCODERS, spelt here so that --help needs no torch (a test keeps them
# equal).
ENCODERS = ("pyav", "ffmpeg")


def build_parser() -> ToolParser:
    parser = tool_parser(__doc__)
    parser.add_argument("input", type=Path, help="folder of source videos (searched recursively)")
    parser.add_argument("output", type=Path, help="folder for the re-encoded videos")
    add_encode_arguments(parser)  # --short-side, --fps, --keyframe-seconds, --crf, --tune, ...
    parser.add_argument("--encoder", choices=ENCODERS, default="pyav",
                        help="pyav, or the ffmpeg program when installed (default pyav)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="parallel processes (default: every core this process may use)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds one video may take before it is abandoned (default 900)")
    parser.add_argument("--overwrite", action="store_true",
                        help="re-encode videos whose output exists")
    parser.add_argument("--no-progress", action="store_true", help="no progress display")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Imported after parsing: --help and argument errors answer without loading torch.
    from videotl.prep.encode import encode_settings_from
    from videotl.prep.resize import FAILURES_FILE, resize_videos

    try:
        settings = encode_settings_from(args)
        if args.jobs is not None and args.jobs < 1:
            raise ValueError(f"--jobs must be at least 1, got {args.jobs}")
        summary = resize_videos(args.input, args.output, settings, encoder=args.encoder,
                                jobs=args.jobs, timeout=args.timeout, overwrite=args.overwrite,
                                progress=not args.no_progress)
    except (ValueError, FileNotFoundError) as error:
        exit_with_error(error)
    print(summary.text())
    if summary.failures:
        print(f"failures listed in {args.output / FAILURES_FILE}")
    if summary.interrupted:
        return 130
    return 1 if summary.failures else 0


if __name__ == "__main__":
    run_tool(main)
