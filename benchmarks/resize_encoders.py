#!/usr/bin/env python
"""Re-encoding throughput: the ``ffmpeg`` program against PyAV, same files, same settings.

Test videos are generated at run time into a temporary folder (854x480 H.264 at 30 fps, a
textured background panning sideways with moving blocks and mild noise, as in
``benchmarks/data_loading.py``). Cases:

  (a) Kinetics-like: 10 s videos -> short side 256, source frame rate kept;
  (b) Charades-like: 30 s videos -> short side 256 at 12 fps.

Both encoders use the toolkit's default settings (``videotl.prep.encode.EncodeSettings``; the
figures in BENCHMARKS.md were measured with the earlier defaults: x264 preset veryfast, CRF 23,
a keyframe every second), one decoder and one encoder thread, and encode one video at a time in
this process, so the figures are per CPU core. Videos are encoded in
rounds, each round running both encoders on the same video in alternating order, so that load
from other processes hits both alike; the ratio compares encoders measured in the same run.

``--jobs N`` then re-encodes each case's videos once more with the tool itself
(``videotl.prep.resize.resize_videos``, the default encoder, N processes) and reports its
wall-clock throughput, in videos per minute and per minute per process.

    python benchmarks/resize_encoders.py [--videos 4] [--cases a b] [--jobs 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# The encoders (videotl.prep.encode and .resize load torch) are imported where they are used,
# after parsing (--help at once).
from benchmarks.data_loading import write_test_video  # noqa: E402
from videotl.prep.encode_settings import EncodeSettings  # noqa: E402 (no torch)

CASES = {
    "a": dict(title="(a) Kinetics-like: 10 s 854x480 30 fps -> short side 256", seconds=10,
              settings=EncodeSettings(short_side=256)),
    "b": dict(title="(b) Charades-like: 30 s 854x480 30 fps -> short side 256, 12 fps",
              seconds=30, settings=EncodeSettings(short_side=256, fps=12.0)),
}


def run_case(case: dict, videos: int, folder: Path, encoders: list[str], jobs: int) -> None:
    from videotl.prep.encode import encode_video
    from videotl.prep.resize import resize_videos

    sources_dir = folder / f"sources_{case['seconds']}"
    sources_dir.mkdir()
    sources = [write_test_video(sources_dir / f"{n}.mp4", case["seconds"], seed=n)
               for n in range(videos)]
    times: dict[str, list[float]] = {name: [] for name in encoders}
    sizes: dict[str, list[int]] = {name: [] for name in encoders}
    for n, source in enumerate(sources):
        order = encoders[n % len(encoders):] + encoders[:n % len(encoders)]
        for name in order:
            target = folder / name / source.name
            start = time.perf_counter()
            encode_video(source, target, case["settings"], name)
            times[name].append(time.perf_counter() - start)
            sizes[name].append(target.stat().st_size)
    baseline = statistics.median(times["pyav"])
    source_mb = statistics.median(s.stat().st_size for s in sources) / 2**20
    print(f"\n{case['title']}: {videos} videos per encoder, median over videos "
          f"(source {source_mb:.1f} MB)")
    print(f"{'encoder':<8} {'s/video':>8} {'videos/min/core':>16} {'MB/video':>9} "
          f"{'x PyAV time':>12}")
    for name in encoders:
        seconds = statistics.median(times[name])
        print(f"{name:<8} {seconds:>8.2f} {60 / seconds:>16.1f} "
              f"{statistics.median(sizes[name]) / 2**20:>9.2f} {seconds / baseline:>12.2f}")
    if jobs:
        summary = resize_videos(sources_dir, folder / f"tool_{case['seconds']}", case["settings"],
                                jobs=jobs, progress=False)
        rate = summary.encoded / summary.seconds * 60
        print(f"resize_videos, {jobs} processes: {summary.encoded} videos in "
              f"{summary.seconds:.1f} s = {rate:.1f} videos/min = {rate / jobs:.1f} videos/min "
              "per process")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=4, help="videos per case (default 4)")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES),
                        help="the cases to run, (a) and (b) above (default: both)")
    parser.add_argument("--jobs", type=int, default=0,
                        help="also time resize_videos with this many processes (default: no)")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    from videotl.prep.encode import ffmpeg_program

    encoders = ["pyav"] + (["ffmpeg"] if ffmpeg_program() else [])
    if len(encoders) == 1:
        print("ffmpeg (with libx264) is not installed: measuring PyAV only")
    with tempfile.TemporaryDirectory(prefix="videotl-resize-bench-") as folder:
        for name in args.cases:
            case_folder = Path(folder) / name
            case_folder.mkdir()
            run_case(CASES[name], args.videos, case_folder, encoders, args.jobs)


if __name__ == "__main__":
    main()
