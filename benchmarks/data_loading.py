#!/usr/bin/env python
"""Clip loading speed and memory: videotl's reader against pytorchvideo's ``EncodedVideo``.

Cases (videos are generated at run time into a temporary folder, 854x480 H.264 at 30 fps,
x264 defaults at preset veryfast: a keyframe every 250 frames, B-frames):

  (a) 64 frames at 12 fps (a 5.3 s window) from 30-second videos,
  (b) 16 frames with stride 4 (a 2.1 s window) from 10-second videos.

Every path loads the same clips (same frame indices) as uint8 RGB with the short side resized
to ``--short-side`` (256, the test crop size; videotl resizes inside the decoder, the peers
after decoding). Paths:

  videotl decord   VideoReader(backend="decord")  (the default path, 1 decoder thread)
  videotl pyav     VideoReader(backend="pyav")    (1 decoder thread)
  pytorchvideo pyav / decord   EncodedVideo.from_path(decoder=...).get_clip(start, end), then
                   the clip's frames are picked by index and resized (their decoders use their
                   default thread counts)

A single process does all the work (no DataLoader workers) with one torch thread. Clips are
measured in rounds, each round running every path once in turn, so that load from other
processes on a shared machine hits all paths alike; the printed ratios compare paths measured
in the same run. ``--memory-clips N`` first loads N clips of case (a) with the default path (a
new reader per clip, as the datasets do) and with decord readers kept open, printing the
resident memory (RSS) along the way.

    python benchmarks/data_loading.py [--clips 8] [--memory-clips 1000]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from videotl.data.sampling import clip_indices, clip_span, clip_step  # noqa: E402
from videotl.data.video_reader import VideoReader, decode_size  # noqa: E402

WIDTH, HEIGHT, FPS = 854, 480, 30
CASES = {
    "a": dict(title="(a) 64 frames at 12 fps from 30 s videos", seconds=30, num_frames=64,
              sampling_fps=12.0, stride=1),
    "b": dict(title="(b) 16 frames with stride 4 from 10 s videos", seconds=10, num_frames=16,
              sampling_fps=None, stride=4),
}


def write_test_video(path: Path, seconds: int, seed: int) -> Path:
    """Textured background panning sideways, two moving blocks, mild noise: 480p H.264."""
    import av

    rng = np.random.default_rng(seed)
    frames = seconds * FPS
    coarse = rng.integers(0, 256, (HEIGHT // 8, (WIDTH + 2 * frames) // 8 + 1, 3), np.uint8)
    texture = np.kron(coarse, np.ones((8, 8, 1), np.uint8))
    noise = rng.integers(-6, 7, (8, HEIGHT, WIDTH, 3)).astype(np.int16)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(frames):
            image = texture[:, 2 * i:2 * i + WIDTH].astype(np.int16) + noise[i % 8]
            for k, color in enumerate(((230, 40, 40), (40, 230, 90))):
                x = int(WIDTH / 2 + WIDTH / 3 * math.sin(i / (20 + 9 * k)))
                y = int(HEIGHT / 2 + HEIGHT / 3 * math.cos(i / (15 + 7 * k)))
                image[max(0, y - 40):y + 40, max(0, x - 50):x + 50] = color
            frame = av.VideoFrame.from_ndarray(image.clip(0, 255).astype(np.uint8), "rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def random_clips(videos: list[Path], case: dict, count: int, seed: int) -> list[tuple]:
    """``(path, indices)`` clips at random positions, the same for every path."""
    rng = np.random.default_rng(seed)
    step = clip_step(FPS, case["sampling_fps"], case["stride"])
    total = case["seconds"] * FPS
    span = clip_span(case["num_frames"], step)
    clips = []
    for n in range(count):
        start = int(rng.integers(0, total - span + 1))
        clips.append((videos[n % len(videos)],
                      clip_indices(start, case["num_frames"], step, total)))
    return clips


def videotl_loader(backend: str, short_side: int) -> Callable:
    def load(path: Path, indices: list[int]) -> torch.Tensor:
        with VideoReader(path, backend=backend, short_side=short_side, num_threads=1) as reader:
            return reader.get_frames(indices)
    return load


def pytorchvideo_loader(decoder: str, short_side: int) -> Callable:
    from pytorchvideo.data.encoded_video import EncodedVideo

    def load(path: Path, indices: list[int]) -> torch.Tensor:
        video = EncodedVideo.from_path(str(path), decode_audio=False, decoder=decoder)
        clip = video.get_clip(indices[0] / FPS, (indices[-1] + 1) / FPS)["video"]  # [C,T,H,W]
        video.close()
        picked = clip[:, [min(i - indices[0], clip.shape[1] - 1) for i in indices]]
        width, height = decode_size(WIDTH, HEIGHT, short_side)
        resized = F.interpolate(picked.permute(1, 0, 2, 3), size=(height, width),
                                mode="bilinear", align_corners=False, antialias=True)
        return resized.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    return load


def measure(paths: dict[str, Callable], clips: list[tuple]) -> dict[str, list[float]]:
    """Seconds per clip for every path, in rounds (each round runs every path once)."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for n, (path, indices) in enumerate(clips):
        for name in names[n % len(names):] + names[:n % len(names)]:
            start = time.perf_counter()
            frames = paths[name](path, indices)
            times[name].append(time.perf_counter() - start)
            assert frames.shape[0] == len(indices), (name, frames.shape)
    return times


def report(title: str, times: dict[str, list[float]], baseline: str) -> None:
    print(f"\n{title}: {len(times[baseline])} clips per path, median over clips")
    print(f"{'path':<22} {'clips/s':>8} {'ms/clip':>9} {'default is x faster':>20}")
    base = float(np.median(times[baseline]))
    for name, values in times.items():
        median = float(np.median(values))
        print(f"{name:<22} {1 / median:>8.2f} {1000 * median:>9.1f} {median / base:>19.2f}x")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_run(clips: list[tuple], short_side: int) -> None:
    """RSS while loading clips three ways: videotl's default path (a new reader per clip, as the
    datasets do); one decord reader kept open per video, ``get_batch`` after ``get_batch``; the
    same with ``seek(0)`` after each batch (what ``VideoReader`` does when kept open)."""
    import decord

    marks = sorted({1, len(clips) // 10, len(clips) // 2, len(clips)})
    print(f"\nmemory over {len(clips)} clips of case (a), RSS in MiB after clips "
          + ", ".join(str(m) for m in marks))
    load = videotl_loader("decord", short_side)
    width, height = decode_size(WIDTH, HEIGHT, short_side)
    variants = {"videotl (reader per clip)": None, "decord, open reader": False,
                "decord, open reader + seek(0)": True}
    for name, rewind in variants.items():
        readers = {} if rewind is None else {
            path: decord.VideoReader(str(path), width=width, height=height, num_threads=1)
            for path, _ in clips}
        readings = []
        for n, (path, indices) in enumerate(clips, start=1):
            if rewind is None:
                load(path, indices)
            else:
                readers[path].get_batch(indices)
                if rewind:
                    readers[path].seek(0)
            if n in marks:
                readings.append(f"{rss_mib():.0f}")
        del readers
        print(f"{name:<32} " + " -> ".join(readings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=8, help="clips per path and case")
    parser.add_argument("--videos", type=int, default=2, help="test videos per case")
    parser.add_argument("--short-side", type=int, default=256)
    parser.add_argument("--memory-clips", type=int, default=0,
                        help="clips for the memory run on case (a) (0: skip)")
    parser.add_argument("--cases", default="ab", help="which cases to run, e.g. 'a'")
    args = parser.parse_args()
    torch.set_num_threads(1)
    paths = {
        "videotl decord": videotl_loader("decord", args.short_side),
        "videotl pyav": videotl_loader("pyav", args.short_side),
        "pytorchvideo pyav": pytorchvideo_loader("pyav", args.short_side),
        "pytorchvideo decord": pytorchvideo_loader("decord", args.short_side),
    }
    with tempfile.TemporaryDirectory(prefix="videotl-bench-") as folder:
        for key in args.cases:
            case = CASES[key]
            start = time.perf_counter()
            videos = [write_test_video(Path(folder) / f"{key}{n}.mp4", case["seconds"], n)
                      for n in range(args.videos)]
            print(f"\nwrote {len(videos)} {case['seconds']} s test videos in "
                  f"{time.perf_counter() - start:.0f} s")
            if key == "a" and args.memory_clips:  # before the peers' large allocations
                memory_run(random_clips(videos, case, args.memory_clips, seed=2),
                           args.short_side)
            clips = random_clips(videos, case, args.clips, seed=1)
            for name, load in paths.items():  # warm-up: imports, file cache
                load(*clips[0])
            report(case["title"], measure(paths, clips), "videotl decord")


if __name__ == "__main__":
    main()
