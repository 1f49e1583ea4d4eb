"""Small test videos made on the fly: frame ``i`` is a flat grey of value ``frame_value(i)``, so
a decoded frame tells which frame it is."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def frame_value(index: int) -> int:
    """Grey level of frame ``index`` (distinct for 60 consecutive frames)."""
    return 16 + 4 * (index % 60)


def decoded_index(frame: np.ndarray) -> int:
    """The frame index a decoded flat frame ``[H, W, 3]`` shows (within the first 60)."""
    return int(round((float(np.asarray(frame, dtype=np.float64).mean()) - 16) / 4))


def write_video(
    path: Path, num_frames: int, fps: float = 30.0, size: tuple[int, int] = (64, 48),
    gop: int = 12, faststart: bool = False, container_format: str | None = None,
) -> Path:
    """H.264 (with B-frames) in MP4 (or ``container_format``); ``size`` is ``(width, height)``."""
    import av

    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format=container_format, options=options) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001),
                                      options={"g": str(gop), "bf": "2", "preset": "veryfast",
                                               "qp": "10"})
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.codec_context.thread_count = 1
        for i in range(num_frames):
            image = np.full((size[1], size[0], 3), frame_value(i), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_noise_video(path: Path, num_frames: int, fps: float = 30.0,
                      size: tuple[int, int] = (64, 48), faststart: bool = False) -> Path:
    """Random-noise frames (large packets: truncating the file cuts frames, not headers)."""
    import av

    rng = np.random.default_rng(0)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=int(fps), options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.codec_context.thread_count = 1
        for _ in range(num_frames):
            image = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_audio_only(path: Path) -> Path:
    import av

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        for n in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                               layout="mono")
            frame.sample_rate, frame.pts = 16000, n * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def truncated_copy(source: Path, target: Path, fraction: float) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def corrupted_copy(source: Path, target: Path, start: float, length: int, seed: int = 0) -> Path:
    """Overwrites ``length`` bytes from ``start`` (fraction of the file) with random bytes."""
    data = bytearray(source.read_bytes())
    offset = int(len(data) * start)
    data[offset:offset + length] = np.random.default_rng(seed).bytes(length)[: len(data) - offset]
    target.write_bytes(bytes(data))
    return target
