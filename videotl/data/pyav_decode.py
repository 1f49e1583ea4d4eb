"""Frame-accurate decoding of chosen frames with PyAV.

For each run of wanted frames that share a keyframe, the decoder seeks to that keyframe (only
when it lies beyond the current position), decodes forward and converts only the wanted frames
to RGB (resized by FFmpeg's scaler when asked). H.264 packets of frames that are not wanted and
that no other frame references (``nal_ref_idc == 0``, most B-frames) are not decoded at all.
Packets that fail to decode are skipped; the frames they carried are simply absent from the
result, and reaching the end of the stream is reported so that the caller can tell a stream
shorter than its index from frames lost in the middle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


class FrameIndex(Protocol):
    pts: np.ndarray
    keyframe_pts: np.ndarray
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
    path: str, index: FrameIndex, wanted: list[int], size: tuple[int, int], num_threads: int
) -> DecodedFrames:
    """Decodes frames ``wanted`` (indices into ``index.pts``) at ``size`` ``(width, height)``.

    Raises PyAV's errors for files it cannot open or read.
    """
    targets = sorted(set(wanted))
    result = _run(path, _Decoder(index, targets, size, drop=True), num_threads)
    if result.stream_end is not None and len(result.frames) < len(targets):
        # The stream ended early. Frames skipped as unreferenced may have been its last ones:
        # decode again without skipping so that ``stream_end`` is exact.
        result = _run(path, _Decoder(index, targets, size, drop=False), num_threads)
    return result


def _run(path: str, decoder: "_Decoder", num_threads: int) -> DecodedFrames:
    import av

    index = decoder.index
    with av.open(path, metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = num_threads
        position = None  # pts of the last frame decoded since the last seek
        for keyframe, last_pts in keyframe_groups(index, decoder.targets):
            if position is None or keyframe > position:
                container.seek(int(keyframe), stream=stream, backward=True, any_frame=False)
            position = decoder.decode_until(container, stream, last_pts)
            if position is None:
                break
    return decoder.result


def keyframe_groups(index: FrameIndex, targets: list[int]) -> list[tuple[int, int]]:
    """``(keyframe pts, last wanted pts)`` for each run of sorted ``targets`` sharing a keyframe."""
    groups: list[tuple[int, int]] = []
    for i in targets:
        pts = int(index.pts[i])
        position = int(np.searchsorted(index.keyframe_pts, pts, side="right")) - 1
        keyframe = int(index.keyframe_pts[max(position, 0)])
        if groups and groups[-1][0] == keyframe:
            groups[-1] = (keyframe, pts)
        else:
            groups.append((keyframe, pts))
    return groups


class _Decoder:
    def __init__(
        self, index: FrameIndex, targets: list[int], size: tuple[int, int], drop: bool
    ) -> None:
        self.index, self.targets, self.size, self.drop = index, targets, size, drop
        self.native = size == (index.width, index.height)
        self.pts_to_index = {int(index.pts[i]): i for i in targets}
        self.result = DecodedFrames()
        self.last: tuple[int, Any] | None = None  # (index, frame) of the last frame out

    def decode_until(self, container: Any, stream: Any, last_pts: int) -> int | None:
        """Decodes until the frame at ``last_pts`` is out; returns the pts reached, or None at
        the end of the stream."""
        import av

        for packet in container.demux(stream):
            if packet.size and packet.pts is not None and self._droppable(packet):
                continue
            try:
                frames = stream.decode(packet)
            except av.error.InvalidDataError:
                continue
            for frame in frames:
                self._take(frame)
                if frame.pts is not None and frame.pts >= last_pts:
                    return frame.pts
        self._finish()
        return None

    def _take(self, frame: Any) -> None:
        target = self.pts_to_index.get(frame.pts)
        if target is not None and target not in self.result.frames:
            self.result.frames[target] = self._rgb(frame)
        if frame.pts is not None:
            position = int(np.searchsorted(self.index.pts, frame.pts))
            if position < len(self.index.pts) and self.index.pts[position] == frame.pts:
                self.last = (position, frame)

    def _finish(self) -> None:
        """At the end of the stream: note where it ended and keep its last frame."""
        if self.last is None:
            self.result.stream_end = 0
            return
        position, frame = self.last
        self.result.stream_end = position + 1
        self.result.frames.setdefault(position, self._rgb(frame))

    def _rgb(self, frame: Any) -> np.ndarray:
        if self.native:
            return frame.to_ndarray(format="rgb24")
        return frame.to_ndarray(format="rgb24", width=self.size[0], height=self.size[1])

    def _droppable(self, packet: Any) -> bool:
        """An H.264 frame nobody wants that no other frame references (``nal_ref_idc == 0``)."""
        length_size = self.index.nal_length_size
        if not self.drop or length_size == 0 or packet.pts in self.pts_to_index:
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
