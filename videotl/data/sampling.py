"""Which frames a clip takes: index arithmetic for fps resampling, training and test views.

A clip is ``num_frames`` frames taken every ``step`` native frames, where ``step`` is
``native_fps / sampling_fps`` (e.g. 29.97 / 12 = 2.4975) or an integer ``frame_stride``. Frame
``k`` of a clip starting at native frame ``start`` is the frame on screen at that time:

    index_k = floor(start + k * step)          (k = 0 .. num_frames - 1)

so it spans ``clip_span = floor((num_frames - 1) * step) + 1`` native frames.

Short videos: when a clip needs frames past the last one (the video is shorter than the clip),
those positions repeat the last frame, ``index_k = min(index_k, video_frames - 1)``: the clip
keeps its frame rate and its length, and ends on a still image.

Training takes one clip with a uniformly random start in ``[0, video_frames - clip_span]``.
Testing takes ``num_temporal_views`` clips with starts spaced uniformly from the first frame to
the last possible start (one view: the centred clip); spatial crops are in ``transforms``. A test
item's view index is ``temporal_view * num_spatial_crops + spatial_crop``.

Videos whose first frames cannot be decoded (a stream cut in the middle of a group of pictures,
``VideoReader.first_frame``) are sampled as if they began at their first decodable frame:
``first_frame`` shifts every clip, so that no clip asks for a frame that cannot be decoded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

_EPS = 1e-6  # float slack so that e.g. 2.4975 * 40 = 99.9 (not 99.8999...) floors to 99


def clip_step(native_fps: float, sampling_fps: float | None, frame_stride: int) -> float:
    """Native frames between consecutive clip frames: ``native_fps / sampling_fps`` or stride."""
    if sampling_fps is not None:
        if sampling_fps <= 0 or native_fps <= 0:
            raise ValueError(f"frame rates must be positive, got {native_fps} and {sampling_fps}")
        return native_fps / sampling_fps
    if frame_stride < 1:
        raise ValueError(f"frame_stride must be >= 1, got {frame_stride}")
    return float(frame_stride)


def clip_span(num_frames: int, step: float) -> int:
    """Native frames covered by a clip, first to last frame inclusive."""
    return int(math.floor((num_frames - 1) * step + _EPS)) + 1


def clip_indices(start: int, num_frames: int, step: float, video_frames: int) -> list[int]:
    """``min(floor(start + k * step), video_frames - 1)`` for ``k`` in ``range(num_frames)``."""
    if video_frames < 1:
        raise ValueError("the video has no frames")
    last = video_frames - 1
    return [min(int(math.floor(start + k * step + _EPS)), last) for k in range(num_frames)]


def resample_indices(
    native_fps: float, target_fps: float, num_frames: int, start: float = 0.0,
    video_frames: int | None = None,
) -> list[int]:
    """Frames of a ``native_fps`` video shown at ``target_fps``, from native frame ``start``.

    E.g. 29.97 -> 12 fps: ``[0, 2, 4, 7, 9, 12, 14, 17, 19, 22, ...]``. Indices past
    ``video_frames - 1`` (when given) repeat the last frame.
    """
    step = clip_step(native_fps, target_fps, 1)
    limit = video_frames if video_frames is not None else 1 << 62
    return clip_indices(int(start), num_frames, step, limit)


def random_clip_start(
    video_frames: int, span: int, generator: torch.Generator | None = None
) -> int:
    """A uniformly random start in ``[0, video_frames - span]`` (0 for short videos)."""
    room = max(video_frames - span, 0)
    return int(torch.randint(room + 1, (1,), generator=generator))


def uniform_clip_starts(video_frames: int, span: int, num_views: int) -> list[int]:
    """Starts of ``num_views`` clips spaced uniformly over the video.

    One view is centred; several run from the first frame to the last possible start
    (``round(v * (video_frames - span) / (num_views - 1))``). Short videos: all start at 0.
    """
    room = max(video_frames - span, 0)
    if num_views == 1:
        return [room // 2]
    return [int(round(v * room / (num_views - 1))) for v in range(num_views)]


def split_view(view: int, num_spatial_crops: int) -> tuple[int, int]:
    """View index -> ``(temporal_view, spatial_crop)``."""
    return divmod(view, num_spatial_crops)


def clip_seconds(indices: list[int], fps: float) -> tuple[float, float]:
    """The time a clip covers: from its first frame's start to its last frame's end."""
    return min(indices) / fps, (max(indices) + 1) / fps


@dataclass(frozen=True)
class ClipSampling:
    """How clips are taken: ``num_frames`` at ``sampling_fps`` (when set) or ``frame_stride``."""

    num_frames: int
    sampling_fps: float | None = None
    frame_stride: int = 1

    def step(self, native_fps: float) -> float:
        return clip_step(native_fps, self.sampling_fps, self.frame_stride)

    def train_indices(
        self, video_frames: int, native_fps: float, generator: torch.Generator | None = None,
        first_frame: int = 0,
    ) -> list[int]:
        """One random clip inside ``[first_frame, video_frames)``."""
        step = self.step(native_fps)
        frames = _decodable(video_frames, first_frame)
        start = random_clip_start(frames, clip_span(self.num_frames, step), generator)
        return [first_frame + i for i in clip_indices(start, self.num_frames, step, frames)]

    def view_indices(
        self, video_frames: int, native_fps: float, temporal_view: int, num_temporal_views: int,
        first_frame: int = 0,
    ) -> list[int]:
        """Clip ``temporal_view`` of ``num_temporal_views`` clips spaced uniformly over
        ``[first_frame, video_frames)``."""
        if not 0 <= temporal_view < num_temporal_views:
            raise IndexError(f"temporal view {temporal_view} of {num_temporal_views}")
        step = self.step(native_fps)
        span = clip_span(self.num_frames, step)
        frames = _decodable(video_frames, first_frame)
        start = uniform_clip_starts(frames, span, num_temporal_views)[temporal_view]
        return [first_frame + i for i in clip_indices(start, self.num_frames, step, frames)]


def _decodable(video_frames: int, first_frame: int) -> int:
    """Frames in ``[first_frame, video_frames)``."""
    if not 0 <= first_frame < video_frames:
        raise ValueError(f"first decodable frame {first_frame} outside [0, {video_frames})")
    return video_frames - first_frame
