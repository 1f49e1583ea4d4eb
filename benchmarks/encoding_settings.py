#!/usr/bin/env python
"""Re-encoding settings against training-clip loading speed and bytes, on real footage.

Every video in VIDEOS (a folder of real camera footage, searched recursively; nothing is
generated here) is first cut to its first ``--seconds`` (packets copied up to the first keyframe
at or after that time, no re-encoding), then re-encoded to short side 256 with each candidate
``EncodeSettings`` through ``videotl.prep.encode.encode_video`` (PyAV, as
``data_prep/resize_videos.py`` does). For each output the script reports

  * bytes, and the ratio to the baseline's (the toolkit's previous default: a keyframe every
    second, x264 preset veryfast, CRF 23, the preset's B-frames, no tuning);
  * milliseconds per random training clip, 16 frames at stride 4 (``ClipSampling``), loaded as
    the datasets load one: a new ``VideoReader`` (decord by default, one decoder thread, short
    side 256) and ``get_frames``, and the ratio to the baseline's;
  * quality: luma PSNR over all frames against a lossless encoding (x264 CRF 0) of the same
    filter output, i.e. what the lossy encoding alone lost.

Clips are timed in rounds: each round draws one random clip per video and loads it from every
setting's file of that video, the settings in an order that shifts by one each round, so that
load from other processes hits all settings alike. A setting's time ratio on a video is the
median over rounds of its time over the baseline's time in the same round
(``benchmarks.common.Measurement.ratio_to``); the summary gives the geometric mean of the
ratios over the videos (and the mean PSNR difference to the baseline). Encoding times are
measured once per file and only indicative.

    python benchmarks/encoding_settings.py VIDEOS [--seconds 10] [--rounds 25]
        [--settings NAME ...] [--backend decord] [--out DIR]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import av

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# NumPy, torch and the modules that load them (the reader, the encoder) are imported where they
# are used, after parsing (--help at once).
from benchmarks.common import Measurement  # noqa: E402
from videotl.prep.encode_settings import EncodeSettings, written_x264_options  # noqa: E402

if TYPE_CHECKING:
    import numpy as np

BASELINE = "1s (old default)"
_OLD = EncodeSettings(short_side=256, keyframe_seconds=1.0, crf=23, preset="veryfast",
                      tune="none", bframes=None)
_FAST = replace(_OLD, tune="fastdecode")
SETTINGS = {
    BASELINE: _OLD,
    "x264 interval (250)": replace(_OLD, keyframe_seconds=None),
    "2s": replace(_OLD, keyframe_seconds=2.0),
    "4s": replace(_OLD, keyframe_seconds=4.0),
    "2s bf0": replace(_OLD, keyframe_seconds=2.0, bframes=0),
    "2s crf 25": replace(_OLD, keyframe_seconds=2.0, crf=25),
    "1s fastdecode": _FAST,
    "2s fastdecode": replace(_FAST, keyframe_seconds=2.0),
    "4s fastdecode": replace(_FAST, keyframe_seconds=4.0),
    "2s fastdecode bf0": replace(_FAST, keyframe_seconds=2.0, bframes=0),
    "2s fastdecode crf 25": replace(_FAST, keyframe_seconds=2.0, crf=25),
    "2s fastdecode bf0 crf 24": replace(_FAST, keyframe_seconds=2.0, bframes=0, crf=24),
    "2s fastdecode bf0 crf 25": replace(_FAST, keyframe_seconds=2.0, bframes=0, crf=25),
    "3s fastdecode bf0 crf 24": replace(_FAST, keyframe_seconds=3.0, bframes=0, crf=24),
    "2s fastdecode bf0 crf 24 faster": replace(_FAST, keyframe_seconds=2.0, bframes=0, crf=24,
                                               preset="faster"),
}
_W = max(len(name) for name in SETTINGS)  # the setting column's width
# The quality reference: the same filter chain, encoded losslessly (x264 at CRF 0 is lossless).
_LOSSLESS = replace(_OLD, keyframe_seconds=None, crf=0, preset="ultrafast")
CLIP_FRAMES, CLIP_STRIDE = 16, 4  # the training clips timed (a ClipSampling)
SHORT_SIDE = 256


@dataclass
class Encoded:
    """One setting's file of one video; ``psnr``: luma PSNR (dB) against the lossless
    reference."""

    path: Path
    bytes: int
    frames: int
    encode_seconds: float
    psnr: float = float("nan")


def first_seconds(source: Path, target: Path, seconds: float) -> Path:
    """``source``'s video packets, copied into Matroska ``target`` up to (not including) the
    first keyframe at or after ``seconds`` from the start: whole groups of pictures, no
    re-encoding."""
    with av.open(str(source)) as inp, av.open(str(target), "w", format="matroska") as out:
        stream = inp.streams.video[0]
        copy = out.add_stream_from_template(stream)
        start = None
        for packet in inp.demux(stream):
            stamp = packet.pts if packet.pts is not None else packet.dts
            if not packet.size or stamp is None:
                continue
            start = stamp if start is None else start
            if packet.is_keyframe and float((stamp - start) * packet.time_base) >= seconds:
                break
            packet.stream = copy
            out.mux(packet)
    return target


def encode_all(sources: dict[str, Path], names: list[str], folder: Path
               ) -> dict[str, dict[str, Encoded]]:
    """``{video: {setting: Encoded}}``; every file checked for the options it asked for and
    compared with a lossless encoding of the same filter output."""
    from videotl.prep.encode import encode_video

    encoded: dict[str, dict[str, Encoded]] = {}
    for video, source in sources.items():
        reference_path = folder / "lossless" / f"{video}.mp4"
        encode_video(source, reference_path, _LOSSLESS, "pyav")
        reference = luma_planes(reference_path)
        encoded[video] = {}
        for name in names:
            target = folder / _file_name(name) / f"{video}.mp4"
            start = time.perf_counter()
            result = encode_video(source, target, SETTINGS[name], "pyav")
            seconds = time.perf_counter() - start
            _check_options(target, SETTINGS[name])
            encoded[video][name] = Encoded(target, target.stat().st_size, result.frames, seconds,
                                           psnr(luma_planes(target), reference))
        counts = {item.frames for item in encoded[video].values()} | {len(reference)}
        if len(counts) != 1:
            raise SystemExit(f"{video}: the settings gave different frame counts {counts}")
    return encoded


def luma_planes(path: Path) -> list[np.ndarray]:
    """The Y plane ``[H, W]`` of every frame, in display order (a plain sequential decode)."""
    import numpy as np

    planes = []
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.video[0]):
            plane = frame.planes[0]
            rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
            planes.append(rows[:, :plane.width].copy())
    return planes


def psnr(planes: list[np.ndarray], reference: list[np.ndarray]) -> float:
    """Luma PSNR in dB over all frames: ``10 log10(255^2 / MSE)``, MSE over every pixel."""
    import numpy as np

    squared = sum(float(np.square(a.astype(np.float64) - b).sum())
                  for a, b in zip(planes, reference, strict=True))
    mse = squared / sum(plane.size for plane in reference)
    return float("inf") if mse == 0 else 10 * math.log10(255 ** 2 / mse)


def _check_options(path: Path, settings: EncodeSettings) -> None:
    """The file's x264 options are the ones asked for (a benchmark of the wrong files is
    worthless)."""
    written = written_x264_options(path)
    fast = settings.tune == "fastdecode"
    expected = {"cabac": "0" if fast else "1", "crf": f"{settings.crf:.1f}"}
    if settings.bframes is not None:
        expected["bframes"] = str(settings.bframes)
    if settings.keyframe_seconds is None:
        expected["keyint"] = "250"
    wrong = {key: (value, written.get(key)) for key, value in expected.items()
             if written.get(key) != value}
    if wrong:
        raise SystemExit(f"{path}: x264 options (wanted, written) differ: {wrong}")


def time_clips(encoded: dict[str, dict[str, Encoded]], names: list[str], rounds: int,
               backend: str, seed: int) -> tuple[dict[str, dict[str, Measurement]], set[str]]:
    """``({video: {setting: Measurement}}, files decoded by another backend than asked)``."""
    import torch

    from videotl.data.sampling import ClipSampling
    from videotl.data.video_reader import VideoReader

    sampling = ClipSampling(num_frames=CLIP_FRAMES, frame_stride=CLIP_STRIDE)
    times = {video: {name: [] for name in names} for video in encoded}
    fell_back: set[str] = set()
    generator = torch.Generator().manual_seed(seed)
    for round_index in range(rounds + 1):  # round 0 warms up (imports, file cache)
        for video, files in encoded.items():
            first = files[names[0]]
            reader = VideoReader(first.path, backend=backend, short_side=SHORT_SIDE)
            indices = sampling.train_indices(reader.num_frames, reader.fps, generator)
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                seconds, used = _load(files[name].path, indices, backend)
                if used != backend:
                    fell_back.add(f"{video} ({name}): {used}")
                if round_index:
                    times[video][name].append(seconds)
    measured = {video: {name: Measurement(name, statistics.median(values), float("nan"),
                                          tuple(values)) for name, values in by_name.items()}
                for video, by_name in times.items()}
    return measured, fell_back


def _load(path: Path, indices: list[int], backend: str) -> tuple[float, str]:
    """Seconds to load one clip as a dataset does (a new reader), and the backend it used."""
    from videotl.data.video_reader import VideoReader

    start = time.perf_counter()
    with VideoReader(path, backend=backend, short_side=SHORT_SIDE, num_threads=1) as reader:
        frames = reader.get_frames(indices)
        used = reader.backend
    seconds = time.perf_counter() - start
    if frames.shape[0] != len(indices):
        raise SystemExit(f"{path}: {frames.shape[0]} frames for {len(indices)} indices")
    return seconds, used


def report(encoded: dict[str, dict[str, Encoded]], measured: dict[str, dict[str, Measurement]],
           names: list[str]) -> str:
    lines = []
    for video, files in encoded.items():
        base = measured[video][BASELINE]
        base_bytes = files[BASELINE].bytes
        lines += ["", f"{video}: {files[BASELINE].frames} frames",
                  f"| {'setting':<{_W}} | {'ms/clip':>7} | {'x time':>6} | {'KiB':>6} | "
                  f"{'x bytes':>7} | {'PSNR dB':>7} | {'encode s':>8} |",
                  f"|{'-' * (_W + 2)}|{'-' * 9}|{'-' * 8}|{'-' * 8}|{'-' * 9}|{'-' * 9}|"
                  f"{'-' * 10}|"]
        for name in names:
            row, file = measured[video][name], files[name]
            lines.append(f"| {name:<{_W}} | {1000 * row.seconds:>7.1f} | "
                         f"{row.ratio_to(base)[0]:>6.2f} | {file.bytes / 1024:>6.0f} | "
                         f"{file.bytes / base_bytes:>7.2f} | {file.psnr:>7.2f} | "
                         f"{file.encode_seconds:>8.2f} |")
    lines += ["", f"geometric mean over {len(encoded)} videos (x: ratio to '{BASELINE}'; "
              "speed-up = 1 / x time; PSNR: mean difference to the baseline's)",
              f"| {'setting':<{_W}} | {'x time':>6} | {'speed-up':>8} | {'x bytes':>7} | "
              f"{'PSNR dB':>7} |",
              f"|{'-' * (_W + 2)}|{'-' * 8}|{'-' * 10}|{'-' * 9}|{'-' * 9}|"]
    for name in names:
        time_ratio = _geomean([measured[v][name].ratio_to(measured[v][BASELINE])[0]
                               for v in encoded])
        bytes_ratio = _geomean([files[name].bytes / files[BASELINE].bytes
                                for files in encoded.values()])
        quality = statistics.mean(_difference(files[name].psnr, files[BASELINE].psnr)
                                  for files in encoded.values())
        lines.append(f"| {name:<{_W}} | {time_ratio:>6.2f} | {1 / time_ratio:>7.2f}x | "
                     f"{bytes_ratio:>7.2f} | {quality:>+7.2f} |")
    default = [name for name in names if SETTINGS[name] == EncodeSettings()]
    lines.append("the toolkit's default (EncodeSettings()): "
                 + (default[0] if default else "none of these"))
    return "\n".join(lines)


def _difference(value: float, baseline: float) -> float:
    """``value - baseline``, 0 where both are equal (two lossless files: inf - inf)."""
    return 0.0 if value == baseline else value - baseline


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(value) for value in values) / len(values))


def _file_name(setting: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in setting)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", type=Path, help="folder of real videos (searched recursively)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="use the first this many seconds of each video (default 10)")
    parser.add_argument("--rounds", type=int, default=25,
                        help="timed rounds: clips per video and setting (default 25)")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS),
                        metavar="NAME", help="settings to compare (default: all; the baseline "
                                             "is always measured)")
    parser.add_argument("--backend", default="decord", choices=("decord", "pyav"),
                        help="VideoReader backend (default decord, the datasets' default)")
    parser.add_argument("--seed", type=int, default=0, help="random clip positions")
    parser.add_argument("--out", type=Path, default=None,
                        help="keep the cut sources and encoded videos in this folder "
                             "(default: a temporary folder, removed)")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    import torch

    from videotl.prep.files import find_videos

    torch.set_num_threads(1)
    names = [BASELINE] + [name for name in args.settings if name != BASELINE]
    videos = find_videos(args.videos)
    if not videos:
        raise SystemExit(f"no video files under {args.videos}")
    with tempfile.TemporaryDirectory(prefix="videotl-encoding-bench-") as temporary:
        folder = args.out or Path(temporary)
        (folder / "sources").mkdir(parents=True, exist_ok=True)
        sources = {Path(video).stem: first_seconds(args.videos / video,
                                                   folder / "sources" / f"{Path(video).stem}.mkv",
                                                   args.seconds) for video in videos}
        start = time.perf_counter()
        encoded = encode_all(sources, names, folder)
        print(f"encoded {len(sources)} videos x {len(names)} settings in "
              f"{time.perf_counter() - start:.0f} s")
        start = time.perf_counter()
        measured, fell_back = time_clips(encoded, names, args.rounds, args.backend, args.seed)
        print(f"timed {args.rounds} rounds in {time.perf_counter() - start:.0f} s "
              f"(backend {args.backend}, {CLIP_FRAMES} frames at stride {CLIP_STRIDE}, "
              f"short side {SHORT_SIDE})")
        if fell_back:
            print("decoded with another backend: " + "; ".join(sorted(fell_back)))
        print(report(encoded, measured, names))


if __name__ == "__main__":
    main()
