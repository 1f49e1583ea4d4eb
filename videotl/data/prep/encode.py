"""Re-encoding one video: short side to N pixels, optional fixed frame rate, H.264 with a short
keyframe interval for random access, video only.

Two encoders make the same file: PyAV (the default: always available, and as fast as the
``ffmpeg`` program or faster in ``benchmarks/resize_encoders.py``) and the ``ffmpeg`` program
(when installed). Both run the same libavfilter chain (``fps``, ``scale``, ``format``) and the same
libx264 settings; ``ffmpeg`` turns videos upright by their rotation metadata on its own, and the
PyAV path does the same with ``transpose`` / ``hflip,vflip`` filters. The ``ffmpeg`` command is
an argument list (no shell) with both paths given as ``file:`` URLs, so no file name is read as
an option, a protocol or a pattern.

Every output is written to a hidden temporary name in the target folder, checked (its video
stream is indexed the way ``VideoReader`` indexes it), and only then renamed into place.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from videotl.data.prep.files import part_path

ENCODERS = ("pyav", "ffmpeg")
SHORT_OUTPUT = 0.9  # an output shorter than this share of the source's stated length is reported


class EncodeError(RuntimeError):
    """A video could not be re-encoded; the message says why."""


@dataclass(frozen=True)
class EncodeSettings:
    """What the re-encoded videos look like.

    Attributes:
        short_side: pixels of the shorter side (aspect ratio kept, sizes even); None keeps the
            size (rounded down to even numbers).
        upscale: also enlarge videos whose short side is below ``short_side``.
        fps: output frame rate (frames dropped or repeated by timestamp); None keeps the
            source's frame timing.
        keyframe_seconds: at most this many seconds between keyframes (x264 may add more at
            scene cuts); a decoder seeking to a frame decodes at most this much before it.
        crf: x264 constant rate factor (lower: better and larger; 23 is x264's default).
        preset: x264 speed preset.
    """

    short_side: int | None = 256
    upscale: bool = False
    fps: float | None = None
    keyframe_seconds: float = 1.0
    crf: int = 23
    preset: str = "veryfast"

    def __post_init__(self) -> None:
        if self.short_side is not None and self.short_side < 2:
            raise ValueError(f"short_side must be at least 2 pixels, got {self.short_side}")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if not self.keyframe_seconds > 0:
            raise ValueError(f"keyframe_seconds must be positive, got {self.keyframe_seconds}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be in [0, 51], got {self.crf}")


@dataclass(frozen=True)
class EncodeResult:
    """``frames`` in the output; ``warning``: what the decoder complained about, if anything."""

    frames: int
    warning: str | None = None


def filters(settings: EncodeSettings) -> list[tuple[str, dict[str, str]]]:
    """The libavfilter chain both encoders run: ``[(filter, {option: value})]``.

    ``scale`` sets the short side (``iw``/``ih`` are the input sizes; ``-2`` keeps the aspect
    ratio with an even size): the target, or the source's when smaller and not upscaling,
    rounded down to even.
    """
    chain: list[tuple[str, dict[str, str]]] = []
    if settings.fps is not None:
        chain.append(("fps", {"fps": _rate_text(settings.fps)}))

    def short(size: str) -> str:
        side = settings.short_side
        wanted = size if side is None else str(side) if settings.upscale else f"min({side},{size})"
        return f"trunc({wanted}/2)*2"

    chain.append(("scale", {"w": f"if(lt(iw,ih),{short('iw')},-2)",
                            "h": f"if(lt(iw,ih),-2,{short('ih')})", "flags": "bicubic"}))
    chain.append(("format", {"pix_fmts": "yuv420p"}))
    return chain


def filter_text(chain: list[tuple[str, dict[str, str]]]) -> str:
    """``chain`` as an ffmpeg ``-vf`` argument (values quoted: they contain commas)."""
    return ",".join(f"{name}=" + ":".join(f"{key}='{value}'" for key, value in options.items())
                    for name, options in chain)


def keyframe_interval(settings: EncodeSettings, source_fps: float) -> int:
    """Frames between keyframes: ``keyframe_seconds`` at the output frame rate."""
    return max(1, round(settings.keyframe_seconds * (settings.fps or source_fps)))


def x264_options(settings: EncodeSettings, source_fps: float) -> dict[str, str]:
    return {"preset": settings.preset, "crf": str(settings.crf),
            "g": str(keyframe_interval(settings, source_fps))}


@functools.lru_cache(maxsize=1)
def ffmpeg_program() -> str | None:
    """The ``ffmpeg`` program on PATH if it has the libx264 encoder, else None."""
    program = shutil.which("ffmpeg")
    if program is None:
        return None
    try:
        listing = subprocess.run([program, "-hide_banner", "-nostdin", "-encoders"],
                                 capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return program if "libx264" in listing.stdout else None


def choose_encoder(encoder: str) -> str:
    """Checks that ``encoder`` (``"pyav"`` or ``"ffmpeg"``) can run here and returns it.

    Raises:
        ValueError: unknown encoder, or ``"ffmpeg"`` asked for but not installed.
    """
    if encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {encoder!r}; expected one of {ENCODERS}")
    if encoder == "ffmpeg" and ffmpeg_program() is None:
        raise ValueError("the ffmpeg program (with libx264) is not on PATH; use the default "
                         "encoder (pyav) or install ffmpeg")
    return encoder


def encode_video(source: Path, target: Path, settings: EncodeSettings,
                 encoder: str) -> EncodeResult:
    """Re-encodes ``source`` into ``target`` (an MP4), atomically: ``target`` appears complete
    or not at all. ``encoder`` is ``"ffmpeg"`` or ``"pyav"``.

    Raises:
        EncodeError: the source cannot be read or yields no frame; the encoder failed.
    """
    source, target = Path(source).absolute(), Path(target).absolute()
    partial = part_path(target)
    partial.unlink(missing_ok=True)  # left by an interrupted run
    target.parent.mkdir(parents=True, exist_ok=True)
    source_fps, stated_seconds = _source_timing(source)
    try:
        if encoder == "ffmpeg":
            warning = _encode_ffmpeg(source, partial, settings, source_fps)
        else:
            warning = _encode_pyav(source, partial, settings, source_fps)
        frames, seconds = _indexed_output(partial)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if stated_seconds and seconds < SHORT_OUTPUT * stated_seconds:  # e.g. a cut-off download
        short = f"{seconds:.1f} s decoded of the {stated_seconds:.1f} s the source states"
        warning = f"{short}; {warning}" if warning else short
    return EncodeResult(frames, warning)


def _rate_text(rate: float) -> str:
    fraction = Fraction(rate).limit_denominator(1001)
    return f"{fraction.numerator}/{fraction.denominator}"


def _source_timing(source: Path) -> tuple[float, float | None]:
    """``(frame rate, seconds the container states or None)`` of the first video stream."""
    import av

    try:
        with av.open(str(source), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise EncodeError("the file has no video stream")
            stream = container.streams.video[0]
            rate = next((float(r) for r in (stream.average_rate, stream.guessed_rate,
                                            stream.base_rate) if r and 0 < float(r) < 1000), 30.0)
            if stream.duration and stream.time_base:
                return rate, float(stream.duration * stream.time_base)
            return rate, container.duration / 1e6 if container.duration else None
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as error:
        raise EncodeError(f"not a readable video ({_first_line(str(error))})") from None


def _indexed_output(path: Path) -> tuple[int, float]:
    """``(frames, seconds)`` of an output, indexed as ``VideoReader`` indexes it."""
    from videotl.data.video_reader import VideoDecodeError, probe

    try:
        index = probe(path)
    except VideoDecodeError as error:
        raise EncodeError(f"the output is not readable: {error.reason}") from None
    span = float((index.pts[-1] - index.pts[0]) * index.time_base)
    return index.num_frames, span + 1.0 / index.fps


def ffmpeg_command(program: str, source: Path, partial: Path, settings: EncodeSettings,
                   source_fps: float) -> list[str]:
    """The ffmpeg argument list (absolute ``file:`` URLs: names are never options)."""
    codec = x264_options(settings, source_fps)
    return [
        program, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-threads", "1", "-i", f"file:{source}",
        "-map", "0:v:0", "-an", "-sn", "-dn", "-map_metadata", "-1",
        "-vf", filter_text(filters(settings)), "-filter_threads", "1",
        "-c:v", "libx264", "-preset", codec["preset"], "-crf", codec["crf"], "-g", codec["g"],
        "-threads", "1", "-f", "mp4", f"file:{partial}",
    ]


def _encode_ffmpeg(source: Path, partial: Path, settings: EncodeSettings,
                   source_fps: float) -> str | None:
    program = ffmpeg_program()
    if program is None:
        raise EncodeError("the ffmpeg program is no longer available")
    command = ffmpeg_command(program, source, partial, settings, source_fps)
    done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    messages = done.stderr.decode("utf-8", "replace").strip()
    if done.returncode != 0:
        raise EncodeError(f"ffmpeg failed (exit code {done.returncode}): "
                          f"{_last_lines(messages) or 'no message'}")
    return _first_line(messages) or None


def _encode_pyav(source: Path, partial: Path, settings: EncodeSettings,
                 source_fps: float) -> str | None:
    import av

    try:
        with av.open(str(source), metadata_errors="ignore") as inp, \
                av.open(str(partial), "w", format="mp4") as out:
            stream = inp.streams.video[0]
            stream.codec_context.thread_count = 1
            writer = _PyavWriter(out, settings, source_fps)
            errors = writer.transcode(inp, stream)
    except av.error.FFmpegError as error:
        raise EncodeError(f"PyAV failed: {_first_line(str(error))}") from None
    if writer.frames == 0:
        raise EncodeError("no frame could be decoded")
    return f"{errors} packets failed to decode" if errors else None


class _PyavWriter:
    """Decoded frames -> the filter chain -> libx264 -> MP4. The graph is built on the first
    frame, when its size and rotation are known, and rebuilt if the source changes size or pixel
    format mid-stream (then scaling to the size the output already has)."""

    def __init__(self, container: Any, settings: EncodeSettings, source_fps: float) -> None:
        self.container, self.settings, self.source_fps = container, settings, source_fps
        self.graph: Any = None
        self.graph_input: tuple[int, int, str] | None = None
        self.stream: Any = None
        self.frames = 0
        self.last_pts: int | None = None  # of the last decoded frame taken
        self.last_out: float | None = None  # time of the last frame encoded

    def transcode(self, inp: Any, stream: Any) -> int:
        import av

        errors = 0
        for packet in inp.demux(stream):
            try:
                decoded = packet.decode()
            except av.error.FFmpegError:
                errors += 1
                continue
            for frame in decoded:
                self._push(frame)
        if self.graph is not None:
            self.graph.push(None)
            self._drain()
            for packet in self.stream.encode(None):
                self.container.mux(packet)
        return errors

    def _push(self, frame: Any) -> None:
        if frame.pts is None:  # no timestamp: take the next one
            frame.pts = 0 if self.last_pts is None else self.last_pts + 1
        if self.last_pts is not None and frame.pts <= self.last_pts:
            return  # not after the previous frame: dropped, as ffmpeg does for MP4 output
        self.last_pts = frame.pts
        if self.graph_input != (frame.width, frame.height, frame.format.name):
            if self.graph is not None:  # the source changed size: flush, then rebuild
                self.graph.push(None)
                self._drain()
            self._build(frame)
        self.graph.push(frame)
        self._drain()

    def _drain(self) -> None:
        import av

        while True:
            try:
                frame = self.graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            time = float(frame.pts * frame.time_base)
            if self.last_out is not None and time <= self.last_out:
                continue  # a repeat from flushing the graph when the source changed size
            self.last_out = time
            if self.stream is None:
                self._open_stream(frame)
            # A decoded frame keeps its source picture type, which libx264 would obey as a
            # forced I/P/B decision; the encoder chooses (as the ffmpeg program lets it).
            frame.pict_type = 0
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
            self.frames += 1

    def _build(self, frame: Any) -> None:
        import av.filter

        graph = av.filter.Graph()
        nodes = [graph.add_buffer(width=frame.width, height=frame.height,
                                  format=frame.format.name, time_base=frame.time_base)]
        chain = _upright(frame.rotation) + filters(self.settings)
        if self.stream is not None:  # keep the output size
            chain = [(name, {**options, "w": str(self.stream.width),
                             "h": str(self.stream.height)} if name == "scale" else options)
                     for name, options in chain]
        for name, options in chain:
            nodes.append(graph.add(name, **options))
        nodes.append(graph.add("buffersink"))
        graph.link_nodes(*nodes).configure()
        self.graph = graph
        self.graph_input = (frame.width, frame.height, frame.format.name)

    def _open_stream(self, frame: Any) -> None:
        rate = Fraction(self.settings.fps or self.source_fps).limit_denominator(1001)
        stream = self.container.add_stream(
            "libx264", rate=rate, options=x264_options(self.settings, self.source_fps))
        stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "yuv420p"
        stream.codec_context.time_base = frame.time_base
        stream.codec_context.thread_count = 1
        self.stream = stream


def _upright(rotation: int) -> list[tuple[str, dict[str, str]]]:
    """Filters that apply a display-matrix rotation (counter-clockwise degrees), as ffmpeg's
    automatic rotation does."""
    turn = (-int(rotation or 0)) % 360
    if 45 <= turn < 135:
        return [("transpose", {"dir": "clock"})]
    if 135 <= turn < 225:
        return [("hflip", {}), ("vflip", {})]
    if 225 <= turn < 315:
        return [("transpose", {"dir": "cclock"})]
    return []


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else ""


def _last_lines(text: str, count: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-count:])[:600]
