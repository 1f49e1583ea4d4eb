"""Small test videos made on the fly: frame ``i`` is a flat grey of value ``frame_value(i)``, so
a decoded frame tells which frame it is."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from videotl.data.torchcodec_decode import torchcodec_unavailable


def reader_backends() -> list:
    """The ``VideoReader`` backends as test parameters; torchcodec skips, saying why, where it
    cannot load (it needs FFmpeg's shared libraries, which the machine may lack)."""
    reason = torchcodec_unavailable()
    return ["decord", "pyav", pytest.param("torchcodec", marks=pytest.mark.skipif(
        reason is not None, reason=f"torchcodec cannot decode here: {reason}"))]


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


# -- the decoding corpus (tests/data/test_decoding_corpus.py) ------------------------------------

def pattern_frame(index: int, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    """Frame ``index`` of a corpus video: the grey of ``frame_value(index)`` with a moving
    orange block, so that encoders predict motion (real P- and B-frames) ``[H, W, 3]``."""
    width, height = size
    image = np.full((height, width, 3), frame_value(index), dtype=np.uint8)
    x, y = (3 * index) % (width - 8), (2 * index) % (height - 8)
    image[y:y + 8, x:x + 8] = (255, 96, 0)
    return image


def encode_pattern(
    path: Path, codec: str, num_frames: int, options: dict[str, str] | None = None,
    container_format: str | None = None, pix_fmt: str = "yuv420p",
    pts: np.ndarray | None = None, time_base: Fraction | None = None,
    rotation: float | None = None, hflip: bool = False,
) -> Path:
    """``num_frames`` pattern frames encoded with ``codec``; ``pts`` (in ``time_base``) sets
    uneven, shifted or negative timestamps; ``rotation`` (counter-clockwise degrees) and
    ``hflip`` write a display matrix."""
    import av

    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=30, options=options or {})
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        stream.codec_context.thread_count = 1
        if time_base is not None:
            stream.codec_context.time_base = time_base
        if rotation is not None or hflip:
            stream.set_display_rotation(rotation or 0, hflip=hflip)
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(pattern_frame(i), format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = int(pts[i]), time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def without_first_packets(source: Path, target: Path, count: int) -> Path:
    """A copy (container by ``target``'s suffix) whose video starts ``count`` packets into the
    stream in decode order, as a cut download does: the first frames miss their keyframe."""
    import av

    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for n, packet in enumerate(p for p in inp.demux(video=0) if p.size):
            if n >= count:
                packet.stream = stream
                out.mux(packet)
    return target


X264 = {"preset": "veryfast", "qp": "10"}


def _uneven_pts(num_frames: int) -> np.ndarray:
    durations = np.random.default_rng(1).integers(15, 70, num_frames)  # 15-70 ms per frame
    return np.concatenate([[0], np.cumsum(durations)[:-1]])


OPEN_GOP = {**X264, "bf": "3", "x264-params": "open-gop=1:keyint=20:min-keyint=20:scenecut=0"}
VP9 = {"g": "30", "lag-in-frames": "16", "auto-alt-ref": "1", "crf": "20", "b": "0",
       "deadline": "realtime", "cpu-used": "8"}

# name -> (file suffix, encoder, encode_pattern's arguments). Small: 64x48, 30-90 frames.
CORPUS = {
    "h264_bframes_long_gop": ("mp4", "libx264", dict(
        num_frames=90, options={**X264, "g": "40", "bf": "3", "b-pyramid": "normal"})),
    "mpeg4_part2_avi": ("avi", "mpeg4", dict(
        num_frames=60, options={"bf": "2", "g": "15", "qscale": "3"})),
    "mjpeg_avi": ("avi", "mjpeg", dict(num_frames=30, pix_fmt="yuvj420p")),
    "vp9_webm": ("webm", "libvpx-vp9", dict(num_frames=45, options=VP9)),
    "variable_frame_rate": ("mp4", "libx264", dict(
        num_frames=60, options={**X264, "g": "25", "bf": "2"}, pts=_uneven_pts(60),
        time_base=Fraction(1, 1000))),
    "open_gop_mp4": ("mp4", "libx264", dict(num_frames=60, options=OPEN_GOP)),
    "open_gop_mkv": ("mkv", "libx264", dict(num_frames=60, options=OPEN_GOP)),
    "start_at_2500ms_mkv": ("mkv", "libx264", dict(
        num_frames=45, options={**X264, "g": "15", "bf": "2"}, pts=np.arange(45) * 40 + 2500,
        time_base=Fraction(1, 1000))),
    "mpegts_nonzero_start": ("ts", "libx264", dict(
        num_frames=45, options={**X264, "g": "15", "bf": "2"})),
    # Frames with negative pts: the MP4 muxer writes an edit list that starts the video at pts 0,
    # and the demuxer marks the 5 packets before it "discard" (decoded as references, not shown).
    "edit_list_cuts_start": ("mp4", "libx264", dict(
        num_frames=45, options={**X264, "g": "15", "bf": "2"}, pts=np.arange(45) - 5,
        time_base=Fraction(1, 30))),
}


def write_corpus_video(folder: Path, name: str) -> Path:
    """Corpus video ``name`` in ``folder``."""
    suffix, codec, arguments = CORPUS[name]
    return encode_pattern(folder / f"{name}.{suffix}", codec, **arguments)


def sequential_frames(path: Path) -> dict[int, np.ndarray]:
    """pts -> RGB ``[H, W, 3]`` of every frame a plain decode from start to end produces."""
    import av

    with av.open(str(path)) as container:
        return {frame.pts: frame.to_ndarray(format="rgb24")
                for frame in container.decode(container.streams.video[0])}
