"""Re-encoding with PyAV: decoded frames run through the same filter chain as the ``ffmpeg``
program's (built with libavfilter), preceded by the ``transpose`` / ``hflip`` / ``vflip`` filters
that turn them upright by their rotation metadata as the program does (display matrix, mirrored
ones included, else a ``rotate`` tag; ``videotl.data.orientation``, the steps ``VideoReader``
applies too), into libx264 and an MP4 file that carries no rotation metadata."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.filter

from videotl.data.orientation import filter_chain, frame_steps
from videotl.prep.encode_settings import (
    EncodeError,
    EncodeSettings,
    filters,
    first_line,
    x264_options,
)


def encode_with_pyav(source: Path, partial: Path, settings: EncodeSettings,
                     source_fps: float) -> str | None:
    """Encodes ``source`` into ``partial`` (MP4); returns a warning about damaged packets, if
    any.

    Raises:
        EncodeError: PyAV failed, or no frame decoded.
    """
    try:
        with av.open(str(source), metadata_errors="ignore") as inp, \
                av.open(str(partial), "w", format="mp4") as out:
            stream = inp.streams.video[0]
            stream.codec_context.thread_count = 1
            writer = _PyavWriter(out, settings, source_fps)
            errors = writer.transcode(inp, stream)
    except av.error.FFmpegError as error:
        raise EncodeError(f"PyAV failed: {first_line(str(error))}") from None
    if writer.frames == 0:
        raise EncodeError("no frame could be decoded")
    return f"{errors} packets failed to decode" if errors else None


class _PyavWriter:
    """Decoded frames -> the filter chain -> libx264 -> MP4. The graph is built on the first
    frame, when its size and rotation are known, and rebuilt if the source changes size or pixel
    format mid-stream (then scaling to the size the output already has)."""

    def __init__(self, container: Any, settings: EncodeSettings, source_fps: float) -> None:
        self.container, self.settings, self.source_fps = container, settings, source_fps
        self.source: Any = None  # the input stream (its ``rotate`` tag)
        self.graph: Any = None
        self.graph_input: tuple[int, int, str] | None = None
        self.stream: Any = None
        self.frames = 0
        self.last_pts: int | None = None  # of the last decoded frame taken
        self.last_out: float | None = None  # time of the last frame encoded
        self.stamps = _BestEffortTimestamps()

    def transcode(self, inp: Any, stream: Any) -> int:
        self.source = stream
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
        frame.pts = self.stamps.guess(frame.pts, frame.dts)
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
        graph = av.filter.Graph()
        nodes = [graph.add_buffer(width=frame.width, height=frame.height,
                                  format=frame.format.name, time_base=frame.time_base)]
        chain = filter_chain(frame_steps(frame, self.source)) + filters(self.settings)
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


class _BestEffortTimestamps:
    """A decoded frame's timestamp as the ``ffmpeg`` program takes it (libavcodec's
    ``best_effort_timestamp``, ``guess_correct_pts``): its ``pts``, unless the ``pts`` of the
    frames so far went backwards more often than their ``dts`` (the decode time of the packet
    that completed the frame), then its ``dts``.

    Some files lie in a way only this catches: packets stamped ``pts == dts`` although the
    stream reorders frames (B-frames; OpenCV's ``box.mp4`` sample). Decoded in display order,
    the frames then carry their packets' timestamps out of order, and taking them as they are
    would drop every frame that is not after the one before (about half of them). The frames
    flushed out of the decoder at the end have no ``dts``; in that case they continue from the
    previous one by the step between the two before.
    """

    def __init__(self) -> None:
        self.faulty_pts = self.faulty_dts = 0
        self.last_pts: int | None = None
        self.last_dts: int | None = None
        self.given: list[int] = []  # the last two timestamps returned

    def guess(self, pts: int | None, dts: int | None) -> int | None:
        if dts is not None:
            self.faulty_dts += self.last_dts is not None and dts <= self.last_dts
            self.last_dts = dts
        elif pts is not None:
            self.last_dts = pts
        if pts is not None:
            self.faulty_pts += self.last_pts is not None and pts <= self.last_pts
            self.last_pts = pts
        elif dts is not None:
            self.last_pts = dts
        if pts is not None and (self.faulty_pts <= self.faulty_dts or dts is None):
            stamp = pts
            if dts is None and self.faulty_pts > self.faulty_dts and len(self.given) == 2:
                stamp = 2 * self.given[1] - self.given[0]  # flushed, pts not to be trusted
        else:
            stamp = dts
        if stamp is not None:
            self.given = (self.given + [stamp])[-2:]
        return stamp
