"""Frame-accurate decoding of chosen frames with PyAV.

Frames are identified by their presentation timestamp, never by counting: the decoder returns
frames in presentation order, one reordering delay after their packets went in, and packets
come in decode order, so the n-th frame out after a seek is not the n-th packet in.

For each wanted frame the index names a keyframe that precedes it both in decode order and on
screen (``StreamIndex.frame_keyframe``). The decoder works through those keyframes in decode
order. For each it either continues the current run (the keyframe lies inside what the run has
decoded correctly) or seeks: backwards, in the stream's own time base, to the smaller of the
keyframe's ``pts`` and ``dts``. Demuxers index by one or the other (MP4 and AVI by decode time,
Matroska by presentation time), and both are at or after the keyframe's decode time, so a
backward seek to the smaller lands on that keyframe or an earlier one. Where the seek really
landed is checked on the first packet (its timestamp gives its decode position): a run only
accepts frames whose keyframe it decoded from, and a seek that overshot (imprecise seeking in
MPEG-TS, or broken indexes) restarts from the beginning of the file, which is always exact.

A run decodes until every wanted frame of its keyframe has come out, or until the packets fed
are so far past the last wanted packet that no reordering delay explains a missing frame (the
frame failed to decode), or until the stream ends. Reaching the end of the stream is reported
(``stream_end``) so that the caller can tell a stream shorter than its index from frames lost in
the middle.

H.264 packets of frames that are not wanted and that no other frame references
(``nal_ref_idc == 0``, most B-frames) are not decoded at all. Packets that fail to decode are
skipped; the frames they carried are absent from the result.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterator, Protocol

import numpy as np

logger = logging.getLogger(__name__)

# Packets fed past the last wanted packet of a keyframe before its missing frames count as
# lost: more than any decoder's reordering delay (H.264 allows 16 frames) plus frame threads.
REORDER_SLACK = 64


class FrameIndex(Protocol):
    pts: np.ndarray
    decode_order: np.ndarray
    frame_keyframe: np.ndarray
    keyframe_positions: np.ndarray
    keyframe_seek: np.ndarray
    packet_stamps: np.ndarray
    width: int
    height: int
    nal_length_size: int


@dataclass
class DecodedFrames:
    """``frames``: index -> RGB ``[H, W, 3]``; ``stream_end``: number of frames the stream
    really produced when decoding hit its end (None if it stopped earlier)."""

    frames: dict[int, np.ndarray] = field(default_factory=dict)
    stream_end: int | None = None


def decode_frames(
    path: str, index: FrameIndex, wanted: list[int], size: tuple[int, int], num_threads: int,
    data: bytes | None = None,
) -> DecodedFrames:
    """Decodes frames ``wanted`` (indices into ``index.pts``, each with a keyframe) at ``size``
    ``(width, height)``, from the file ``path`` or from its bytes ``data`` when given.

    Raises PyAV's errors for files it cannot open or read.
    """
    targets = sorted(set(wanted))
    result = _run(path, _Decoder(index, targets, size, drop=True, threads=num_threads), data)
    if result.stream_end is not None and len(result.frames) < len(targets):
        # The stream ended early. Frames skipped as unreferenced may have been its last ones:
        # decode again without skipping so that ``stream_end`` is exact.
        result = _run(path, _Decoder(index, targets, size, drop=False, threads=num_threads),
                      data)
    return result


def _run(path: str, decoder: "_Decoder", data: bytes | None) -> DecodedFrames:
    source = _Source(path, decoder.threads, data)
    try:
        for keyframe in decoder.keyframes():
            if not decoder.groups[keyframe]:  # its frames came out while decoding another
                continue
            if not decoder.continues_to(keyframe):
                source.seek(decoder, keyframe)
            outcome = decoder.decode_group(source, keyframe)
            if outcome == "overshot":  # the seek landed past the keyframe: start over
                logger.debug("seek in %s landed past keyframe %d; decoding from the start",
                             path, keyframe)
                source.rewind(decoder)
                outcome = decoder.decode_group(source, keyframe)
            if outcome == "end":
                break
    finally:
        source.close()
    return decoder.result


class _Source:
    """The open container; ``rewind`` reopens it (the only start that never depends on how a
    demuxer seeks)."""

    def __init__(self, path: str, num_threads: int, data: bytes | None = None) -> None:
        self.path, self.num_threads, self.data = path, num_threads, data
        self.container: Any = None
        self.stream: Any = None

    def open(self) -> None:
        import av

        self.close()
        source = self.path if self.data is None else io.BytesIO(self.data)
        self.container = av.open(source, metadata_errors="ignore")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.stream.codec_context.thread_count = self.num_threads

    def rewind(self, decoder: "_Decoder") -> None:
        self.open()
        decoder.begin_run(expected=None)

    def seek(self, decoder: "_Decoder", keyframe: int) -> None:
        if keyframe == 0 or self.container is None:  # the first keyframe: from the start
            self.rewind(decoder)
            if keyframe == 0:
                return
        target = int(decoder.index.keyframe_seek[keyframe])
        self.container.seek(target, stream=self.stream, backward=True, any_frame=False)
        decoder.begin_run(expected=int(decoder.index.keyframe_positions[keyframe]))

    def packets(self) -> Iterator[Any]:
        return self.container.demux(self.stream)

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None


class _Decoder:
    """Decodes runs of packets and keeps the wanted frames (see the module docstring)."""

    def __init__(
        self, index: FrameIndex, targets: list[int], size: tuple[int, int], drop: bool,
        threads: int = 1,
    ) -> None:
        self.index, self.targets, self.size, self.drop = index, targets, size, drop
        self.threads = threads  # decoding and conversion threads (0: FFmpeg chooses)
        self.native = size == (index.width, index.height)
        self.wanted_pts = {int(index.pts[i]) for i in targets}
        self.groups: dict[int, set[int]] = {}
        for i in targets:
            self.groups.setdefault(int(index.frame_keyframe[i]), set()).add(i)
        self.positions = {int(s): p for p, s in enumerate(index.packet_stamps)}
        self.result = DecodedFrames()
        self.run_start: int | None = None  # decode position from which this run is exact
        self.expected: int | None = None  # where the last seek should land
        self.fed = -1  # decode position of the last packet fed in this run
        self.last: tuple[int, Any] | None = None  # (index, frame) of the latest frame shown
        # One converter for every frame: a frame's own ``to_ndarray`` builds a new swscale
        # context each time, which costs more than the conversion (about 1 ms per 480p frame).
        from av.video.reformatter import VideoReformatter

        self.reformatter = VideoReformatter()
        self.convert_to = (None, None) if self.native else size
        self.convert_options = {"threads": threads} if _threaded_reformat() else {}

    def keyframes(self) -> list[int]:
        """The keyframes to decode from, in decode order (-1: frames nothing reaches)."""
        return sorted(k for k in self.groups if k >= 0)

    def continues_to(self, keyframe: int) -> bool:
        """Whether the current run has decoded correctly from before ``keyframe`` and has not
        yet gone past it (then the frames still missing will come out if decoding goes on)."""
        position = int(self.index.keyframe_positions[keyframe])
        return self.run_start is not None and self.run_start <= position <= self.fed + 1

    def begin_run(self, expected: int | None) -> None:
        self.run_start, self.expected, self.fed, self.last = None, expected, -1, None

    def decode_group(self, source: _Source, keyframe: int) -> str:
        """Decodes until the frames of ``keyframe`` are out: ``"done"``, ``"end"`` (the stream
        ended) or ``"overshot"`` (the seek landed after the keyframe)."""
        import av

        group = self.groups[keyframe]
        last_needed = max(int(self.index.decode_order[i]) for i in group) if group else -1
        for packet in source.packets():
            if packet.size:
                if self.run_start is None and not self._land(packet):
                    return "overshot"
                self.fed = max(self.fed, self._position(packet, self.fed))
                if self._droppable(packet):
                    continue
            try:
                frames = source.stream.decode(packet)
            except av.error.InvalidDataError:
                continue
            for frame in frames:
                self._take(frame)
            if not group or self.fed > last_needed + REORDER_SLACK:  # done, or lost
                return "done"
        self._finish()
        return "end"

    def _land(self, packet: Any) -> bool:
        """Sets where the run starts being exact: the first keyframe at or after the packet a
        seek (or the start of the file) led to. False when that is past the wanted keyframe."""
        position = self._position(packet, None)
        if self.expected is None:  # the start of the file
            position = 0 if position is None else position
        elif position is None or position > self.expected:
            return False
        keyframes = self.index.keyframe_positions
        after = int(np.searchsorted(keyframes, position))
        self.run_start = int(keyframes[after]) if after < len(keyframes) else 1 << 62
        return True

    def _position(self, packet: Any, default: int | None) -> int | None:
        stamp = packet.pts if packet.pts is not None else packet.dts
        return self.positions.get(stamp, default) if stamp is not None else default

    def _take(self, frame: Any) -> None:
        stamp = frame.pts if frame.pts is not None else frame.dts
        if stamp is None:
            return
        target = int(np.searchsorted(self.index.pts, stamp))
        if target == len(self.index.pts) or self.index.pts[target] != stamp:
            return  # not a frame of the index (e.g. hidden by an edit list)
        keyframe = int(self.index.frame_keyframe[target])
        if keyframe < 0 or self.index.keyframe_positions[keyframe] < self.run_start:
            return  # predicted from frames this run did not decode
        if self.last is None or target > self.last[0]:
            self.last = (target, frame)
        group = self.groups.get(keyframe)
        if group is not None and target in group:
            self.result.frames[target] = self._rgb(frame)
            group.discard(target)

    def _finish(self) -> None:
        """At the end of the stream: note where it ended and keep its last frame."""
        if self.last is None:
            return  # nothing decoded in this run: it cannot tell where the stream ends
        position, frame = self.last
        self.result.stream_end = position + 1
        self.result.frames.setdefault(position, self._rgb(frame))

    def _rgb(self, frame: Any) -> np.ndarray:
        """The frame as RGB ``[H, W, 3]`` uint8 at ``size`` (bilinear, as ``to_ndarray``)."""
        width, height = self.convert_to
        return self.reformatter.reformat(frame, width, height, "rgb24",
                                         **self.convert_options).to_ndarray()

    def _droppable(self, packet: Any) -> bool:
        """An H.264 frame nobody wants that no other frame references (``nal_ref_idc == 0``)."""
        length_size = self.index.nal_length_size
        if not self.drop or length_size == 0 or packet.pts in self.wanted_pts:
            return False
        data = bytes(packet)
        offset = 0
        while offset + length_size < len(data):
            length = int.from_bytes(data[offset:offset + length_size], "big")
            header = data[offset + length_size]
            if header & 0x1F in (1, 5):  # the first coded slice (or IDR slice) decides
                return header & 0x60 == 0
            offset += length_size + length
        return False


@lru_cache(maxsize=1)
def _threaded_reformat() -> bool:
    """PyAV 17 converts frames on several threads (by default as many as FFmpeg chooses) and
    takes ``threads``; older releases convert on one thread and do not take it."""
    import av

    return int(av.__version__.split(".")[0]) >= 17
