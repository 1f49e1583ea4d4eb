"""Frame-accurate reading of encoded videos with decord, and PyAV as second backend and fallback.

Container headers lie: a file may claim 444 frames and decode 70, and decord is known to loop
forever inside native code when asked for a frame past the real end of such a file. So the
reader never trusts the header. It first indexes the video stream's packets with PyAV (demuxing
only, no decoding: about 15 ms for a 30-second 480p file, cached per process) and takes the
frames that actually exist from that index: packets that are empty, truncated (flagged corrupt)
or without a timestamp are not frames. No backend is ever asked for an index outside the index.

Decoding:

* ``decord`` (default) decodes the requested indices with ``get_batch``, optionally resized by
  FFmpeg at decode time. A fresh decord reader is opened per ``VideoReader``; after every batch
  it is rewound (``seek(0)``), which releases the decoded frames decord otherwise keeps and
  keeps memory flat over many clips (see ``benchmarks/data_loading.py``).
* ``pyav`` seeks to the keyframe before the first wanted frame, decodes forward and converts
  only the wanted frames to RGB. H.264 packets of frames that are neither wanted nor referenced
  by other frames (``nal_ref_idc == 0``) are not decoded at all.
* When decord fails on a file (it cannot open it, raises while decoding, or its frame index
  disagrees with the stream's timestamps), the reader falls back to PyAV for that file and logs
  it once. When no backend can decode the frames, ``VideoDecodeError`` names the file and the
  reason.

If frames at the end of the index fail to decode (a truncated last packet), the reader lowers
``num_frames`` to what decoded and repeats the last decoded frame for the missing indices, the
same rule as for clips longer than the video (see ``videotl.data.sampling``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
import torch

from videotl.config import register_choices
from videotl.data.pyav_decode import decode_frames
from videotl.data.sampling import resample_indices

logger = logging.getLogger(__name__)

BACKENDS = ("decord", "pyav")
register_choices("data.decoder", lambda: BACKENDS)


class VideoDecodeError(RuntimeError):
    """A video cannot be opened or decoded; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"cannot decode video {path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class StreamIndex:
    """What a video stream holds, read from its packets without decoding.

    Attributes:
        pts: presentation timestamps of the frames, sorted, ``[num_frames]`` int64.
        keyframe_pts: timestamps of the keyframes, sorted.
        time_base: seconds per timestamp unit.
        fps: native frame rate (the stream's average rate, else measured from ``pts``).
        width, height: coded frame size in pixels.
        header_frames: the frame count the container header claims (0 when it says nothing).
        codec: decoder name, e.g. ``"h264"``.
        nal_length_size: bytes of the NAL unit length prefix for H.264 in MP4/MKV (AVCC), or 0.
    """

    pts: np.ndarray
    keyframe_pts: np.ndarray
    time_base: Fraction
    fps: float
    width: int
    height: int
    header_frames: int
    codec: str
    nal_length_size: int

    @property
    def num_frames(self) -> int:
        return len(self.pts)


def probe(path: str | os.PathLike) -> StreamIndex:
    """Indexes the video stream of ``path`` (cached per process by path, size and mtime).

    Raises:
        VideoDecodeError: missing file, empty file, not a video, no decodable frame.
    """
    path = str(path)
    try:
        stat = os.stat(path)
    except OSError as error:
        raise VideoDecodeError(path, f"file not found or unreadable ({error.strerror})") from None
    if stat.st_size == 0:
        raise VideoDecodeError(path, "file is empty (0 bytes)")
    return _probe_cached(path, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=512)
def _probe_cached(path: str, size: int, mtime_ns: int) -> StreamIndex:
    import av

    try:
        container = av.open(path, metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as error:
        raise VideoDecodeError(path, f"not a readable video container ({error})") from None
    with container:
        if not container.streams.video:
            raise VideoDecodeError(path, "the file has no video stream")
        stream = container.streams.video[0]
        pts, keyframes = _index_packets(container, stream)
        if not pts:
            raise VideoDecodeError(path, "the video stream has no decodable frame")
        pts_array = np.unique(np.asarray(pts, dtype=np.int64))
        keyframe_array = np.unique(np.asarray(keyframes or pts[:1], dtype=np.int64))
        time_base = stream.time_base or Fraction(1, 1)
        context = stream.codec_context
        return StreamIndex(
            pts=pts_array,
            keyframe_pts=keyframe_array,
            time_base=Fraction(time_base),
            fps=_frame_rate(stream, pts_array, time_base),
            width=int(context.width),
            height=int(context.height),
            header_frames=int(stream.frames or 0),
            codec=context.name,
            nal_length_size=_nal_length_size(context),
        )


def _index_packets(container: Any, stream: Any) -> tuple[list[int], list[int]]:
    """Timestamps of the stream's real frames and keyframes; stops at unreadable data."""
    import av

    pts: list[int] = []
    keyframes: list[int] = []
    try:
        for packet in container.demux(stream):
            stamp = packet.pts if packet.pts is not None else packet.dts
            if packet.size == 0 or stamp is None or packet.is_corrupt:
                continue
            pts.append(stamp)
            if packet.is_keyframe:
                keyframes.append(stamp)
    except av.error.FFmpegError as error:  # truncated or damaged container: keep what was read
        logger.debug("stopped indexing %s after %d packets: %s", container.name, len(pts), error)
    return pts, keyframes


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
        backend: ``"decord"`` (default, PyAV as automatic fallback) or ``"pyav"``.
        short_side: resize frames at decode time so that the shorter side has this many
            pixels (aspect ratio kept); None keeps the native size.
        num_threads: decoder threads (0 lets FFmpeg choose; 1 suits DataLoader workers).

    Attributes:
        num_frames: frames that decode (from the packet index, never the header).
        fps: native frame rate; ``duration`` = ``num_frames / fps`` seconds.
        width, height: native size; ``size``: the ``(width, height)`` frames are returned at.
        header_frames: what the container header claims, for reporting.
        backend: the backend in use (``"pyav"`` after a fallback).

    Raises:
        VideoDecodeError: the file is missing, empty, not a video or has no frames.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        backend: str = "decord",
        short_side: int | None = None,
        num_threads: int = 1,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown video backend {backend!r}; expected one of {BACKENDS}")
        if short_side is not None and short_side < 1:
            raise ValueError(f"short_side must be a positive number of pixels, got {short_side}")
        self.path = str(path)
        self.backend = backend
        self.num_threads = num_threads
        self._index = probe(self.path)
        self.num_frames = self._index.num_frames
        self.size = decode_size(self._index.width, self._index.height, short_side)
        self._decord: Any = None

    @property
    def fps(self) -> float:
        return self._index.fps

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    @property
    def width(self) -> int:
        return self._index.width

    @property
    def height(self) -> int:
        return self._index.height

    @property
    def header_frames(self) -> int:
        return self._index.header_frames

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
            VideoDecodeError: no backend could decode the frames.
        """
        wanted = [int(i) for i in indices]
        if not wanted:
            raise ValueError("get_frames needs at least one frame index")
        bad = [i for i in wanted if not 0 <= i < self.num_frames]
        if bad:
            raise IndexError(
                f"frame indices {bad[:5]} outside [0, {self.num_frames}) in {self.path}"
            )
        if self.backend == "decord" and not _decord_available():
            self.backend = "pyav"
        if self.backend == "decord":
            try:
                return self._decord_frames(wanted)
            except Exception as error:  # decord raises DECORDError, RuntimeError, ...
                self._fall_back(error)
        return self._pyav_frames(wanted)

    def close(self) -> None:
        """Releases the decoder (also done when the reader is garbage-collected)."""
        self._decord = None

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"VideoReader({self.path!r}, backend={self.backend!r}, num_frames={self.num_frames}, "
            f"fps={self.fps:.3f}, size={self.size})"
        )

    def _fall_back(self, error: Exception) -> None:
        reason = " ".join(str(error).split())[:300]
        _log_once(self.path, f"decord failed on {self.path} ({reason}); decoding it with PyAV")
        self.backend = "pyav"
        self._decord = None

    def _decord_frames(self, wanted: list[int]) -> torch.Tensor:
        import decord

        if self._decord is None:
            width, height = self.size
            resize = {} if self.size == (self.width, self.height) else {
                "width": width, "height": height
            }
            self._decord = decord.VideoReader(self.path, num_threads=self.num_threads, **resize)
        reader = self._decord
        limit = min(len(reader), self.num_frames)
        if max(wanted) >= limit:  # decord may hang past the real end: never ask it
            raise IndexError(f"decord indexed only {limit} frames")
        self._check_timestamps(reader, wanted)
        batch = reader.get_batch(wanted)
        reader.seek(0)  # rewinding releases the frames decord buffers (memory stays flat)
        frames = torch.from_numpy(batch.asnumpy()) if hasattr(batch, "asnumpy") else batch
        if tuple(frames.shape[1:3]) != (self.size[1], self.size[0]):
            raise RuntimeError(f"decord returned frames of shape {tuple(frames.shape)}")
        return frames

    def _check_timestamps(self, reader: Any, wanted: list[int]) -> None:
        """decord's frame ``i`` must be ours: its index can differ on damaged files (packets we
        drop), and then its frames would be shifted."""
        theirs = np.asarray(reader.get_frame_timestamp(wanted))[:, 0]
        ours = self._index.pts[wanted].astype(np.float64) * float(self._index.time_base)
        if np.abs(theirs - ours).max() > 0.5 / self.fps:
            raise RuntimeError("decord's frame index disagrees with the stream's timestamps")

    def _pyav_frames(self, wanted: list[int]) -> torch.Tensor:
        import av

        try:
            decoded = decode_frames(self.path, self._index, wanted, self.size, self.num_threads)
        except (av.error.FFmpegError, OSError) as error:
            raise VideoDecodeError(self.path, f"PyAV failed: {error}") from None
        if decoded.stream_end is not None and decoded.stream_end < self.num_frames:
            self._shorten(decoded.stream_end)
        if self.num_frames == 0:
            raise VideoDecodeError(self.path, "no frame decodes")
        # Frames past the real end of the stream repeat its last frame (the short-video rule).
        frames = decoded.frames
        lost = sorted({i for i in wanted if min(i, self.num_frames - 1) not in frames})
        if lost:
            raise VideoDecodeError(self.path, f"frames {lost[:5]} failed to decode")
        return torch.from_numpy(np.stack([frames[min(i, self.num_frames - 1)] for i in wanted]))

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
