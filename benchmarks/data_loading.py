#!/usr/bin/env python
"""Clip loading speed and memory: videotl's reader against pytorchvideo's ``EncodedVideo``.

Cases (videos are generated at run time into a temporary folder, 854x480 H.264 at 30 fps,
x264 defaults at preset veryfast: a keyframe every 250 frames, B-frames):

  (a) 64 frames at 12 fps (a 5.3 s window) from 30-second videos,
  (b) 16 frames with stride 4 (a 2.1 s window) from 10-second videos,
  (c) the same clips from 456x256 videos with a keyframe every second, crf 23 (``data_prep``'s
      encoding before its defaults were chosen by measurement; see BENCHMARKS.md, "Re-encoding
      settings", for clips from today's defaults),
  (d) the same clips from MPEG-4 Part 2 in AVI (DivX-style, no B-frames), 854x480, a keyframe
      every 12 frames (the encoder's default).

Every path loads the same clips (same frame indices) as uint8 RGB with the short side resized
to ``--short-side`` (256, the test crop size; videotl resizes inside the decoder, the peers
after decoding). Paths:

  videotl decord   VideoReader(backend="decord")  (1 decoder thread; the ratios' baseline)
  videotl pyav     VideoReader(backend="pyav")    (the default path, 1 decoder thread)
  pytorchvideo pyav / decord   EncodedVideo.from_path(decoder=...).get_clip(start, end), then
                   the clip's frames are picked by index and resized (their decoders use their
                   default thread counts)

``--floor`` measures instead each backend's loader (a ``VideoReader`` per clip, as the datasets
open them, its probe not cached: a training epoch opens each video once) against that backend's
decode floor: the frames the clip needs decoded and nothing else, at native size, left where the
decoder put them (``floor_loader``). PyAV's floor decodes the packets from the keyframe before the
clip's first frame to its last frame, converting none; decord's and torchcodec's return frames
only as RGB, so theirs is their own call for the clip's frames at native size (decord's
``get_batch``, torchcodec's exact-mode ``get_frames_at``), with no resize and no copy. torchcodec
runs where its FFmpeg libraries load.

A single process does all the work (no DataLoader workers) with one torch thread. Clips are
measured in rounds, each round running every path once in turn, so that load from other
processes on a shared machine hits all paths alike; the printed ratios compare paths measured
in the same run. ``--memory-clips N`` first loads N clips of case (a) with the default path (a
new reader per clip, as the datasets do) and with decord readers kept open, printing the
resident memory (RSS) along the way.

    python benchmarks/data_loading.py [--clips 8] [--memory-clips 1000] [--floor] [--cases abcd]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# NumPy, torch and the readers are imported where they are used, after parsing (--help at once;
# benchmarks/resize_encoders.py imports write_test_video from here).
if TYPE_CHECKING:
    import torch

WIDTH, HEIGHT, FPS = 854, 480, 30
CASES = {
    "a": dict(title="(a) 64 frames at 12 fps from 30 s videos", seconds=30, num_frames=64,
              sampling_fps=12.0, stride=1),
    "b": dict(title="(b) 16 frames with stride 4 from 10 s videos", seconds=10, num_frames=16,
              sampling_fps=None, stride=4),
    "c": dict(title="(c) 16 frames with stride 4 from 10 s videos, 456x256, keyframe every 1 s",
              seconds=10, num_frames=16, sampling_fps=None, stride=4, size=(456, 256),
              options={"preset": "veryfast", "crf": "23", "g": "30"}),
    "d": dict(title="(d) 16 frames with stride 4 from 10 s MPEG-4 Part 2 AVI", seconds=10,
              num_frames=16, sampling_fps=None, stride=4, codec="mpeg4", suffix="avi",
              options={"qscale": "4"}),
}


def write_test_video(path: Path, seconds: int, seed: int, size: tuple[int, int] = (WIDTH, HEIGHT),
                     codec: str = "libx264", options: dict | None = None) -> Path:
    """Textured background panning sideways, two moving blocks, mild noise: 480p H.264 (or
    ``size`` ``(width, height)``, ``codec`` with ``options``)."""
    import av
    import numpy as np

    width, height = size
    rng = np.random.default_rng(seed)
    frames = seconds * FPS
    coarse = rng.integers(0, 256, (height // 8, (width + 2 * frames) // 8 + 1, 3), np.uint8)
    texture = np.kron(coarse, np.ones((8, 8, 1), np.uint8))
    noise = rng.integers(-6, 7, (8, height, width, 3)).astype(np.int16)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS, options=options or {"preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            image = texture[:, 2 * i:2 * i + width].astype(np.int16) + noise[i % 8]
            for k, color in enumerate(((230, 40, 40), (40, 230, 90))):
                x = int(width / 2 + width / 3 * math.sin(i / (20 + 9 * k)))
                y = int(height / 2 + height / 3 * math.cos(i / (15 + 7 * k)))
                image[max(0, y - 40):y + 40, max(0, x - 50):x + 50] = color
            frame = av.VideoFrame.from_ndarray(image.clip(0, 255).astype(np.uint8), "rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def random_clips(videos: list[Path], case: dict, count: int, seed: int) -> list[tuple]:
    """``(path, indices)`` clips at random positions, the same for every path."""
    import numpy as np

    from videotl.data.sampling import clip_indices, clip_span, clip_step

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
    from videotl.data.video_reader import VideoReader

    def load(path: Path, indices: list[int]) -> torch.Tensor:
        with VideoReader(path, backend=backend, short_side=short_side, num_threads=1) as reader:
            return reader.get_frames(indices)
    return load


def pytorchvideo_loader(decoder: str, short_side: int) -> Callable:
    import torch
    import torch.nn.functional as F
    from pytorchvideo.data.encoded_video import EncodedVideo

    from videotl.data.video_reader import decode_size

    def load(path: Path, indices: list[int]) -> torch.Tensor:
        video = EncodedVideo.from_path(str(path), decode_audio=False, decoder=decoder)
        clip = video.get_clip(indices[0] / FPS, (indices[-1] + 1) / FPS)["video"]  # [C,T,H,W]
        video.close()
        picked = clip[:, [min(i - indices[0], clip.shape[1] - 1) for i in indices]]
        width, height = decode_size(clip.shape[3], clip.shape[2], short_side)
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
    import numpy as np

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

    from videotl.data.video_reader import decode_size

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


def floor_loader(backend: str) -> Callable:
    """The decode floor of ``backend`` for a clip (see the module docstring). The keyframe to
    start from comes from videotl's index, computed before the timing (probe is cached): the
    floor knows where to seek for free."""
    if backend == "pyav":
        import av

        from videotl.data.video_reader import probe

        def decode(path: Path, indices: list[int]) -> int:
            index = probe(path)
            keyframe = int(index.frame_keyframe[min(indices)])
            last = int(index.pts[max(indices)])
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                stream.codec_context.thread_count = 1
                if keyframe > 0:
                    container.seek(int(index.keyframe_seek[keyframe]), stream=stream,
                                   backward=True)
                decoded = 0
                for packet in container.demux(stream):
                    for frame in stream.decode(packet):
                        decoded += 1
                        if frame.pts is not None and frame.pts >= last:
                            return decoded
            return decoded
        return decode
    if backend == "decord":
        import decord

        return lambda path, indices: decord.VideoReader(str(path), num_threads=1).get_batch(
            indices)
    from torchcodec.decoders import VideoDecoder

    return lambda path, indices: VideoDecoder(
        str(path), seek_mode="exact", num_ffmpeg_threads=1, dimension_order="NHWC"
    ).get_frames_at(indices)


def cold_loader(backend: str, short_side: int, decoded: set[str]) -> Callable:
    """videotl's loader with the probe not cached, as each video's first clip of an epoch; adds
    to ``decoded`` the backend that decoded each clip (``VideoReader.backend`` after
    ``get_frames``: PyAV when the index checks or an error while decoding sent the file there)."""
    from videotl.data.video_reader import VideoReader, _probe_cached

    def cold(path: Path, indices: list[int]) -> torch.Tensor:
        _probe_cached.cache_clear()
        with VideoReader(path, backend=backend, short_side=short_side, num_threads=1) as reader:
            frames = reader.get_frames(indices)
            decoded.add(reader.backend)
        return frames
    return cold


def floor_run(title: str, clips: list[tuple], short_side: int) -> None:
    """Each backend's loader over its floor, clip by clip in alternating rounds."""
    import numpy as np

    from videotl.data.torchcodec_decode import torchcodec_unavailable
    from videotl.data.video_reader import VideoReader

    backends = ["decord", "pyav"] + ([] if torchcodec_unavailable() else ["torchcodec"])
    paths: dict[str, Callable] = {}
    decoded: dict[str, set[str]] = {backend: set() for backend in backends}
    for backend in backends:
        paths[f"{backend} floor"] = floor_loader(backend)
        paths[f"{backend} loader"] = cold_loader(backend, short_side, decoded[backend])
    for load in paths.values():  # warm-up: imports, file cache, the floors' cached index
        load(*clips[0])
    times: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for n, (path, indices) in enumerate(clips):
        for name in names[n % len(names):] + names[:n % len(names)]:
            start = time.perf_counter()
            paths[name](path, indices)
            times[name].append(time.perf_counter() - start)
    with VideoReader(clips[0][0], backend="pyav") as reader:
        size = f"{reader.width}x{reader.height}"
    used = {backend: "+".join(sorted(decoded[backend])) for backend in backends}
    print(f"\n{title}: {len(clips)} clips, median over clips ({size}, "
          f"short side {short_side}; probe not cached)")
    print(f"{'backend':<11} {'decodes':<11} {'floor ms':>9} {'loader ms':>10} {'loader/floor':>13} "
          f"{'loader/pyav floor':>18}")
    pyav_floor = np.asarray(times["pyav floor"])
    for backend in backends:
        floor = np.asarray(times[f"{backend} floor"])
        loader = np.asarray(times[f"{backend} loader"])
        print(f"{backend:<11} {used[backend]:<11} {1000 * np.median(floor):>9.1f} "
              f"{1000 * np.median(loader):>10.1f} {np.median(loader / floor):>12.2f}x "
              f"{np.median(loader / pyav_floor):>17.2f}x")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=8, help="clips per path and case")
    parser.add_argument("--videos", type=int, default=2, help="test videos per case")
    parser.add_argument("--short-side", type=int, default=256,
                        help="every path resizes the clip's frames to this short side (default "
                             "256, the test crop size)")
    parser.add_argument("--memory-clips", type=int, default=0,
                        help="clips for the memory run on case (a) (0: skip)")
    parser.add_argument("--cases", default="ab", help="which cases to run, e.g. 'a' or 'abcd'")
    parser.add_argument("--floor", action="store_true",
                        help="each backend's loader against its decode floor (no peers)")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    import torch

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
            videos = [write_test_video(Path(folder) / f"{key}{n}.{case.get('suffix', 'mp4')}",
                                       case["seconds"], n, case.get("size", (WIDTH, HEIGHT)),
                                       case.get("codec", "libx264"), case.get("options"))
                      for n in range(args.videos)]
            print(f"\nwrote {len(videos)} {case['seconds']} s test videos in "
                  f"{time.perf_counter() - start:.0f} s")
            if key == "a" and args.memory_clips:  # before the peers' large allocations
                memory_run(random_clips(videos, case, args.memory_clips, seed=2),
                           args.short_side)
            clips = random_clips(videos, case, args.clips, seed=1)
            if args.floor:
                floor_run(case["title"], clips, args.short_side)
                continue
            for name, load in paths.items():  # warm-up: imports, file cache
                load(*clips[0])
            report(case["title"], measure(paths, clips), "videotl decord")


if __name__ == "__main__":
    main()
