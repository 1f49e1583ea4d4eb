"""Frame-accurate reading of encoded videos with decord, PyAV (second backend and fallback) or
torchcodec.

Container headers lie: a file may claim 444 frames and decode 70, and decord is known to loop
forever inside native code when asked for a frame past the real end of such a file. So the
reader never trusts the header. It first indexes the video stream's packets with PyAV (demuxing,
plus decoding the first keyframe for its rotation metadata: about 15 ms for a 30-second 480p
file, cached per process) and takes the
frames that actually exist from that index: packets that are empty, truncated (flagged corrupt)
or without a timestamp are not frames. No backend is ever asked for an index outside the index.

Frame ``i`` is the ``i``-th frame on screen. The index numbers frames by presentation timestamp
(packets come in decode order, and with B-frames the two orders differ), counts only packets that
show a picture (an MP4 edit list that cuts the start marks the packets before the cut "discard":
the decoder needs them but shows nothing), and names for each frame the keyframe to decode from.
Decoded frames are matched to it by timestamp, never by counting what the decoder returns.

Decoding:

* ``decord`` decodes the requested indices with ``get_batch``, optionally resized by
  FFmpeg at decode time. A fresh decord reader is opened per ``VideoReader``; after every batch
  it is rewound (``seek(0)``), which releases the decoded frames decord otherwise keeps and
  keeps memory flat over many clips (see ``benchmarks/data_loading.py``). decord numbers every
  packet as a frame and seeks by decode position, then counts frames; it is only asked for
  frames of files where that finds our frames (``StreamIndex.decord_problem`` says why not).
* ``pyav`` (``pyav_decode``; the default, as its loader was the fastest of the three overall in
  ``benchmarks/data_loading.py --floor``) seeks backwards to the frame's keyframe,
  checks where it landed, decodes forward and converts only the wanted frames to RGB, all with
  one swscale context. H.264 packets of frames that are neither wanted nor referenced by other
  frames (``nal_ref_idc == 0``) are not decoded at all.
* ``torchcodec`` (``torchcodec_decode``, optional: ``videotl[torchcodec]`` and FFmpeg's shared
  libraries) decodes in its exact seek mode, its frames checked against the index by timestamp;
  files it would not find frames in (``StreamIndex.torchcodec_problem``) go to PyAV. When it
  cannot load at all, choosing it is an ``InputError`` naming what to install.
* When decord or torchcodec fails on a file (it cannot open it, raises while decoding, or its
  frame count or timestamps disagree with the index), the reader falls back to PyAV for that
  file and logs it once; for torchcodec, only the errors a file can cause fall back (an error
  of its API, a ``TypeError`` from a release that changed it, propagates). When no backend can
  decode the frames, ``VideoDecodeError`` names the file and the reason.
* Rotation metadata (display matrix, ``rotate`` tag) is applied: frames come out upright
  (``videotl.data.orientation``).
* A video held in memory (``VideoReader(name, data=bytes)``, e.g. a member of a tar shard,
  ``videotl.data.shards``) is read exactly as its file would be, without a temporary file: PyAV
  opens it as a ``BytesIO``, decord as a file-like object, torchcodec takes the bytes; ``name``
  only names it in messages.

A stream cut in the middle of a group of pictures starts with frames that no keyframe reaches:
``first_frame`` is the first decodable one, and asking for earlier frames is an error. If frames
at the end of the index fail to decode (a truncated last packet), the reader lowers
``num_frames`` to what decoded and repeats the last decoded frame for the missing indices, the
same rule as for clips longer than the video (see ``videotl.data.sampling``).
"""

from __future__ import annotations

import io
import logging
import os
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
import torch

from videotl.config import register_choices
from videotl.data.orientation import Steps, apply_steps, frame_steps, swaps_sides, tag_steps
from videotl.data.pyav_decode import decode_frames
from videotl.data.torchcodec_decode import (
    TorchcodecMismatch,
    TorchcodecReader,
    require_torchcodec,
    torchcodec_problem,
)
from videotl.data.sampling import resample_indices
from videotl.errors import RunError

logger = logging.getLogger(__name__)

BACKENDS = ("decord", "pyav", "torchcodec")
# Containers with a seek index, where decord finds the frames of the test corpus
# (tests/data/test_decoding_corpus.py); in others (MPEG-TS, raw streams) its seeks miss.
DECORD_FORMATS = {"mp4", "matroska", "webm", "avi"}
register_choices("data.decoder", lambda: BACKENDS)


class VideoDecodeError(RunError, RuntimeError):
    """A video cannot be opened or decoded; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"cannot decode video {path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class StreamIndex:
    """What a video stream holds, read from its packets (and its first keyframe, decoded for the
    rotation metadata).

    A *frame* is a packet that decodes to a picture on screen: it has data, a timestamp, is not
    flagged corrupt, and is not hidden by the container (an MP4 edit list that cuts the start
    marks the packets before the cut "discard": the decoder needs them as references but shows
    nothing for them). Frames are numbered in presentation order (by ``pts``); packets, frames
    or not, are numbered in decode order ("decode positions"), the order the demuxer returns them.

    Attributes:
        pts: presentation timestamps of the frames, sorted, ``[num_frames]`` int64.
        decode_order: the decode position of each frame's packet, ``[num_frames]``.
        frame_keyframe: for each frame, the keyframe (an index into ``keyframe_positions``) to
            start decoding from, ``[num_frames]``; -1 for frames no keyframe before them can
            reach (a stream cut in the middle of a group of pictures).
        keyframe_pts: timestamps of the keyframes, sorted.
        keyframe_positions: decode positions of the keyframes, ascending, ``[K]``.
        keyframe_seek: the timestamp to seek to for each keyframe, ``[K]``: the smaller of its
            ``pts`` and ``dts``, since demuxers index by either.
        packet_stamps: the timestamp of every packet in decode order (its ``pts``, else its
            ``dts``), ``[num_packets]``; tells where a seek landed.
        time_base: seconds per timestamp unit.
        start_pts: the stream's stated start time (None when it states none).
        fps: native frame rate (the stream's average rate, else measured from ``pts``).
        width, height: coded frame size in pixels (before ``orientation``).
        orientation: the steps that turn decoded frames upright (``videotl.data.orientation``).
        header_frames: the frame count the container header claims (0 when it says nothing).
        codec: decoder name, e.g. ``"h264"``.
        nal_length_size: bytes of the NAL unit length prefix for H.264 in MP4/MKV (AVCC), or 0.
        container_format: the demuxer's name, e.g. ``"mov,mp4,m4a,3gp,3g2,mj2"``.
        decord_problem: why decord would return wrong frames for this stream, or None.
        torchcodec_problem: why torchcodec would, or None.
    """

    pts: np.ndarray
    decode_order: np.ndarray
    frame_keyframe: np.ndarray
    keyframe_pts: np.ndarray
    keyframe_positions: np.ndarray
    keyframe_seek: np.ndarray
    packet_stamps: np.ndarray
    time_base: Fraction
    start_pts: int | None
    fps: float
    width: int
    height: int
    orientation: Steps
    header_frames: int
    codec: str
    nal_length_size: int
    container_format: str
    decord_problem: str | None
    torchcodec_problem: str | None = None

    @property
    def num_frames(self) -> int:
        return len(self.pts)

    @property
    def first_frame(self) -> int:
        """The first frame a keyframe reaches (0 unless the stream starts mid-GOP)."""
        reachable = np.flatnonzero(self.frame_keyframe >= 0)
        return int(reachable[0]) if len(reachable) else self.num_frames


@dataclass
class _Packets:
    """The video packets of a file in decode order (see ``StreamIndex``)."""

    stamps: list[int] = field(default_factory=list)
    dts: list[int | None] = field(default_factory=list)
    keyframe: list[bool] = field(default_factory=list)
    shown: list[bool] = field(default_factory=list)
    skipped: int = 0  # packets without data or timestamp, or corrupt
    without_pts: int = 0
    first_keyframe: Any = None  # the packet, decoded for the rotation metadata


def probe(path: str | os.PathLike, data: bytes | None = None) -> StreamIndex:
    """Indexes the video stream of ``path`` (cached per process by path, size and mtime), or of
    the video file's bytes ``data`` when given (``path`` then only names it; cached by name,
    size and CRC-32 for the last ``MEMORY_INDEXES`` videos, since each view of a video probes).

    Raises:
        VideoDecodeError: missing file, empty file, not a video, no decodable frame.
    """
    path = str(path)
    if data is not None:
        return _probe_memory(path, data)
    try:
        stat = os.stat(path)
    except OSError as error:
        raise VideoDecodeError(path, f"file not found or unreadable ({error.strerror})") from None
    if stat.st_size == 0:
        raise VideoDecodeError(path, "file is empty (0 bytes)")
    return _probe_cached(path, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=512)
def _probe_cached(path: str, size: int, mtime_ns: int) -> StreamIndex:
    return _index_stream(path, path)


MEMORY_INDEXES = 64
_MEMORY_CACHE: OrderedDict[tuple[str, int, int], StreamIndex] = OrderedDict()


def _probe_memory(path: str, data: bytes) -> StreamIndex:
    if len(data) == 0:
        raise VideoDecodeError(path, "the video is empty (0 bytes)")
    # Keyed by a checksum, never by the bytes themselves: the cache must not keep videos alive.
    key = (path, len(data), zlib.crc32(data))
    index = _MEMORY_CACHE.get(key)
    if index is None:
        index = _index_stream(io.BytesIO(data), path)
        _MEMORY_CACHE[key] = index
        while len(_MEMORY_CACHE) > MEMORY_INDEXES:
            _MEMORY_CACHE.popitem(last=False)
    _MEMORY_CACHE.move_to_end(key)
    return index


def _index_stream(source: str | io.BytesIO, path: str) -> StreamIndex:
    import av

    try:
        container = av.open(source, metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as error:
        raise VideoDecodeError(path, f"not a readable video container ({error})") from None
    with container:
        if not container.streams.video:
            raise VideoDecodeError(path, "the file has no video stream")
        stream = container.streams.video[0]
        packets = _index_packets(container, stream)
        if not any(packets.shown):
            raise VideoDecodeError(path, "the video stream has no decodable frame")
        orientation, width, height = _first_picture(stream, packets.first_keyframe)
        return _stream_index(container, stream, packets, orientation, width, height)


def _index_packets(container: Any, stream: Any) -> _Packets:
    """The stream's packets in decode order; stops at unreadable data."""
    import av

    packets = _Packets()
    try:
        for packet in container.demux(stream):
            stamp = packet.pts if packet.pts is not None else packet.dts
            if packet.size == 0 or stamp is None or packet.is_corrupt:
                packets.skipped += packet.size > 0  # (the demuxer's final flush packet is empty)
                continue
            packets.without_pts += packet.pts is None
            packets.stamps.append(stamp)
            packets.dts.append(packet.dts)
            packets.keyframe.append(packet.is_keyframe)
            packets.shown.append(not packet.is_discard)
            if packet.is_keyframe and packets.first_keyframe is None:
                packets.first_keyframe = packet
    except av.error.FFmpegError as error:  # truncated or damaged container: keep what was read
        logger.debug("stopped indexing %s after %d packets: %s", container.name,
                     len(packets.stamps), error)
    if packets.stamps and not any(packets.keyframe):
        packets.keyframe[0] = True  # no keyframe flags at all (some AVI): decode from the start
    return packets


def _first_picture(stream: Any, packet: Any) -> tuple[Steps, int, int]:
    """``(orientation, coded width, coded height)``: the rotation metadata reaches PyAV only as
    side data of decoded frames, so the first keyframe is decoded (one frame, ~1 ms)."""
    import av

    context = stream.codec_context
    frames = []
    if packet is not None:
        try:
            frames = stream.decode(packet) + stream.decode(None)
        except av.error.FFmpegError:
            pass
    if not frames:
        return tag_steps(stream.metadata.get("rotate")), int(context.width), int(context.height)
    return frame_steps(frames[0], stream), frames[0].width, frames[0].height


def _stream_index(container: Any, stream: Any, packets: _Packets, orientation: Steps, width: int,
                  height: int) -> StreamIndex:
    stamps = np.asarray(packets.stamps, dtype=np.int64)
    shown = np.asarray(packets.shown, dtype=bool)
    keyframes = np.flatnonzero(np.asarray(packets.keyframe, dtype=bool))
    # Presentation order: frames sorted by pts (a repeated pts is one frame: the decoder
    # returns one picture per timestamp that we can match).
    pts, first = np.unique(stamps[shown], return_index=True)
    decode_order = np.flatnonzero(shown)[first]
    seek = np.asarray([min(s, d) if d is not None else s for s, d in
                       zip(stamps[keyframes], (packets.dts[k] for k in keyframes))], np.int64)
    time_base = Fraction(stream.time_base or Fraction(1, 1))
    context = stream.codec_context
    index = StreamIndex(
        pts=pts,
        decode_order=decode_order,
        frame_keyframe=_frame_keyframes(pts, decode_order, stamps[keyframes], keyframes),
        keyframe_pts=np.sort(stamps[keyframes]) if len(keyframes) else pts[:1],
        keyframe_positions=keyframes,
        keyframe_seek=seek,
        packet_stamps=stamps,
        time_base=time_base,
        start_pts=stream.start_time,
        fps=_frame_rate(stream, pts, time_base),
        width=int(width),
        height=int(height),
        orientation=orientation,
        header_frames=int(stream.frames or 0),
        codec=context.name,
        nal_length_size=_nal_length_size(context),
        container_format=container.format.name,
        decord_problem=None,
    )
    # B-frames: frames decoded out of order, or a decoder that says it reorders (H.264 in AVI
    # stores monotonic timestamps, yet has B-frames).
    reordered = bool(np.any(np.diff(decode_order) < 0) or getattr(context, "has_b_frames", 1))
    return replace(index, decord_problem=_decord_problem(index, packets, len(stamps) - len(pts)),
                   torchcodec_problem=torchcodec_problem(index.container_format,
                                                         packets.without_pts, reordered))


def _frame_keyframes(pts: np.ndarray, decode_order: np.ndarray, keyframe_pts: np.ndarray,
                     keyframe_positions: np.ndarray) -> np.ndarray:
    """For each frame, the last keyframe that precedes it both in decode order and on screen.

    Both matter: in an open GOP the frames shown just before a keyframe are decoded after it
    but predicted from the previous group, so decoding must start at the previous keyframe.
    """
    candidate = np.searchsorted(keyframe_positions, decode_order, side="right") - 1
    reached = np.maximum(candidate, 0)
    for frame in np.flatnonzero((candidate >= 0) & (keyframe_pts[reached] > pts)):
        while candidate[frame] >= 0 and keyframe_pts[candidate[frame]] > pts[frame]:
            candidate[frame] -= 1  # a leading frame of an open GOP: the group before
    return candidate


def _decord_problem(index: StreamIndex, packets: _Packets, hidden: int) -> str | None:
    """Why decord cannot find this stream's frames, or None.

    decord numbers every packet as a frame, seeks to its keyframes by their position in decode
    order, and then counts the frames the decoder returns; its frame ``i`` is ours only when
    each packet shows one frame and no frame is decoded out of its group.
    """
    keyframe_frames = np.flatnonzero(np.isin(index.decode_order, index.keyframe_positions))
    if not set(index.container_format.split(",")) & DECORD_FORMATS:
        return (f"a {index.container_format} container (no seek index; decord's seeks land "
                "off its frame count)")
    if index.orientation:
        return "rotation metadata (decord returns such frames in the wrong shape)"
    if packets.skipped or hidden:
        return "packets that show no frame (empty, damaged, hidden by an edit list or repeated)"
    if packets.without_pts:
        return "packets without presentation timestamps"
    if index.first_frame > 0:
        return "frames before the first keyframe"
    if not np.array_equal(keyframe_frames, index.decode_order[keyframe_frames]):
        return "keyframes decoded out of presentation order (open GOP or decode-time index)"
    return None


def _frame_rate(stream: Any, pts: np.ndarray, time_base: Fraction) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and float(rate) > 0:
            return float(rate)
    span = float((pts[-1] - pts[0]) * time_base)
    if len(pts) > 1 and span > 0:
        return (len(pts) - 1) / span
    return 1.0


def _nal_length_size(context: Any) -> int:
    """Length-prefix size of H.264 NAL units stored AVCC-style (MP4, MKV); 0 otherwise."""
    extradata = context.extradata
    if context.name == "h264" and extradata and len(extradata) > 4 and extradata[0] == 1:
        return (extradata[4] & 3) + 1
    return 0


def decode_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """``(width, height)`` scaled so that the shorter side is ``short_side`` (None: unchanged)."""
    if short_side is None or min(width, height) == short_side:
        return width, height
    scale = short_side / min(width, height)
    if width <= height:
        return short_side, max(1, int(round(height * scale)))
    return max(1, int(round(width * scale))), short_side


class VideoReader:
    """Random access to the frames of one video file.

    >>> reader = VideoReader("clip.mp4", short_side=256)
    >>> frames = reader.get_frames([0, 5, 10])      # uint8 [3, H, W, 3], H or W == 256
    >>> frames = reader.get_frames(reader.resampled_indices(12.0, num_frames=64))

    Args:
        path: the video file.
        backend: ``"pyav"`` (default), ``"decord"`` (PyAV as automatic fallback) or
            ``"torchcodec"`` (PyAV as fallback; an ``InputError`` when it cannot load).
        short_side: resize frames at decode time so that the shorter side has this many
            pixels (aspect ratio kept); None keeps the native size.
        num_threads: decoder threads (0 lets FFmpeg choose; 1 suits DataLoader workers).
        data: the video file's bytes, read from memory instead of ``path`` (which then only
            names the video in messages), e.g. a member of a tar shard.

    Attributes:
        num_frames: frames that decode (from the packet index, never the header).
        first_frame: the first frame that decodes (0 unless the stream starts mid-GOP);
            ``decodable_range`` is ``range(first_frame, num_frames)``.
        fps: native frame rate; ``duration`` = ``num_frames / fps`` seconds.
        width, height: native size, upright (rotation metadata applied); ``size``: the
            ``(width, height)`` frames are returned at.
        header_frames: what the container header claims, for reporting.
        backend: the backend in use (``"pyav"`` after a fallback).

    Raises:
        VideoDecodeError: the file is missing, empty, not a video or has no frames.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        backend: str = "pyav",
        short_side: int | None = None,
        num_threads: int = 1,
        data: bytes | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown video backend {backend!r}; expected one of {BACKENDS}")
        if backend == "torchcodec":
            require_torchcodec()
        if short_side is not None and short_side < 1:
            raise ValueError(f"short_side must be a positive number of pixels, got {short_side}")
        self.path = str(path)
        self.backend = backend
        self.num_threads = num_threads
        self._data = data
        self._index = probe(self.path, data)
        self.num_frames = self._index.num_frames
        self.first_frame = self._index.first_frame
        if self.first_frame >= self.num_frames:
            raise VideoDecodeError(self.path, "no frame follows a keyframe")
        self.size = decode_size(self.width, self.height, short_side)
        self._decord: Any = None
        self._torchcodec: TorchcodecReader | None = None

    @property
    def fps(self) -> float:
        return self._index.fps

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    @property
    def width(self) -> int:
        return self._index.height if swaps_sides(self._index.orientation) else self._index.width

    @property
    def height(self) -> int:
        return self._index.width if swaps_sides(self._index.orientation) else self._index.height

    @property
    def header_frames(self) -> int:
        return self._index.header_frames

    @property
    def decodable_range(self) -> range:
        """The frames that decode: ``range(first_frame, num_frames)`` (``num_frames`` drops
        when a decode finds that the last indexed frames fail)."""
        return range(self.first_frame, self.num_frames)

    def resampled_indices(
        self, target_fps: float, num_frames: int | None = None, start: float = 0.0
    ) -> list[int]:
        """Indices of the frames on screen at ``target_fps`` from native frame ``start``.

        ``num_frames=None`` covers the rest of the video. See ``sampling.resample_indices``.
        """
        if num_frames is None:
            step = self.fps / target_fps
            num_frames = max(1, int((self.num_frames - 1 - start) // step) + 1)
        return resample_indices(self.fps, target_fps, num_frames, start, self.num_frames)

    def get_frames(self, indices: Sequence[int]) -> torch.Tensor:
        """Decodes frames ``indices`` (any order, repeats allowed).

        Returns:
            uint8 ``[len(indices), H, W, 3]`` RGB, ``(W, H) == self.size``.

        Raises:
            IndexError: an index outside ``[0, num_frames)``.
            VideoDecodeError: an index before ``first_frame``, or no backend could decode
                the frames.
        """
        wanted = [int(i) for i in indices]
        if not wanted:
            raise ValueError("get_frames needs at least one frame index")
        bad = [i for i in wanted if not 0 <= i < self.num_frames]
        if bad:
            raise IndexError(
                f"frame indices {bad[:5]} outside [0, {self.num_frames}) in {self.path}"
            )
        early = sorted({i for i in wanted if i < self.first_frame})
        if early:
            raise VideoDecodeError(self.path, f"frames {early[:5]} precede the first decodable "
                                              f"frame {self.first_frame} (the stream starts "
                                              "without its keyframe)")
        if self.backend == "decord" and not _decord_available():
            self.backend = "pyav"
        if self.backend == "decord" and self._index.decord_problem:
            self._fall_back(self._index.decord_problem)
        if self.backend == "decord":
            try:
                return self._decord_frames(wanted)
            except Exception as error:  # decord raises DECORDError, RuntimeError, ...
                self._fall_back(error)
        if self.backend == "torchcodec" and self._index.torchcodec_problem:
            self._fall_back(self._index.torchcodec_problem)
        if self.backend == "torchcodec":
            try:
                return self._torchcodec_frames(wanted)
            # What a file can cause: torchcodec's C++ checks raise RuntimeError (IndexError for
            # its index checks), its Python checks ValueError or IndexError; frames that are not
            # the index's raise TorchcodecMismatch. Anything else (TypeError, AttributeError:
            # a torchcodec release whose API changed) is a broken installation and propagates,
            # rather than sending every file to PyAV.
            except (TorchcodecMismatch, RuntimeError, ValueError, IndexError) as error:
                self._fall_back(error)
        return self._pyav_frames(wanted)

    def close(self) -> None:
        """Releases the decoder (also done when the reader is garbage-collected)."""
        self._decord = None
        self._torchcodec = None

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"VideoReader({self.path!r}, backend={self.backend!r}, num_frames={self.num_frames}, "
            f"fps={self.fps:.3f}, size={self.size})"
        )

    def _fall_back(self, error: Exception | str) -> None:
        reason = " ".join(str(error).split())[:300]
        _log_once(self.path, f"{self.backend} failed on {self.path} ({reason}); decoding it "
                             "with PyAV")
        self.backend = "pyav"
        self.close()

    def _decord_frames(self, wanted: list[int]) -> torch.Tensor:
        import decord

        if self._decord is None:
            width, height = self.size
            resize = {} if self.size == (self.width, self.height) else {
                "width": width, "height": height
            }
            source = self.path if self._data is None else io.BytesIO(self._data)
            self._decord = decord.VideoReader(source, num_threads=self.num_threads, **resize)
        reader = self._decord
        if len(reader) != self._index.num_frames:  # its frame i would not be ours
            raise IndexError(f"decord indexed {len(reader)} frames, the stream has "
                             f"{self._index.num_frames}")
        if max(wanted) >= self.num_frames:  # decord may hang past the real end: never ask it
            raise IndexError(f"decord indexed only {self.num_frames} frames")
        self._check_timestamps(reader, wanted)
        batch = reader.get_batch(wanted)
        reader.seek(0)  # rewinding releases the frames decord buffers (memory stays flat)
        frames = torch.from_numpy(batch.asnumpy()) if hasattr(batch, "asnumpy") else batch
        if tuple(frames.shape[1:]) != (self.size[1], self.size[0], 3):
            raise RuntimeError(f"decord returned frames of shape {tuple(frames.shape)}")
        return frames

    def _check_timestamps(self, reader: Any, wanted: list[int]) -> None:
        """decord's frame ``i`` must be ours: its index can differ on damaged files (packets we
        drop), and then its frames would be shifted. decord counts time from the stream's
        stated start; a stream that states none gets unusable times from it."""
        theirs = np.asarray(reader.get_frame_timestamp(wanted))[:, 0]
        start = self._index.start_pts or 0
        ours = (self._index.pts[wanted] - start).astype(np.float64) * float(self._index.time_base)
        if self._index.start_pts is None or np.abs(theirs - ours).max() > 0.5 / self.fps:
            raise RuntimeError("decord's frame index disagrees with the stream's timestamps")

    def _torchcodec_frames(self, wanted: list[int]) -> torch.Tensor:
        if self._torchcodec is None:
            index = self._index
            self._torchcodec = TorchcodecReader(
                self.path if self._data is None else self._data, index.pts,
                (index.time_base.numerator, index.time_base.denominator), index.orientation,
                (index.width, index.height), self.size, self.num_threads)
        return self._torchcodec.get_frames(wanted)

    def _pyav_frames(self, wanted: list[int]) -> torch.Tensor:
        import av

        coded = self.size[::-1] if swaps_sides(self._index.orientation) else self.size
        try:
            decoded = decode_frames(self.path, self._index, wanted, coded, self.num_threads,
                                    self._data)
        except (av.error.FFmpegError, OSError) as error:
            raise VideoDecodeError(self.path, f"PyAV failed: {error}") from None
        if decoded.stream_end is not None and decoded.stream_end < self.num_frames:
            self._shorten(decoded.stream_end)
        if self.num_frames <= self.first_frame:
            raise VideoDecodeError(self.path, "no frame decodes")
        # Frames past the real end of the stream repeat its last frame (the short-video rule).
        frames = decoded.frames
        lost = sorted({i for i in wanted if min(i, self.num_frames - 1) not in frames})
        if lost:
            raise VideoDecodeError(self.path, f"frames {lost[:5]} failed to decode")
        upright = self._index.orientation
        return torch.from_numpy(np.stack(
            [apply_steps(frames[min(i, self.num_frames - 1)], upright) for i in wanted]))

    def _shorten(self, num_frames: int) -> None:
        if num_frames < self.num_frames:
            _log_once(self.path, f"{self.path}: only {num_frames} of {self.num_frames} indexed "
                                 "frames decode; repeating the last one")
            self.num_frames = num_frames


@lru_cache(maxsize=1)
def _decord_available() -> bool:
    try:
        import decord  # noqa: F401
    except ImportError as error:
        logger.warning("decord is not available (%s); decoding with PyAV", error)
        return False
    return True


_LOGGED: set[str] = set()


def _log_once(path: str, message: str) -> None:
    if path not in _LOGGED:
        _LOGGED.add(path)
        logger.warning(message)
