"""Which frames a visualisation shows and which clips the model runs on.

The shown frames are the video sampled as clips are (``videotl.data.sampling``): native frame
``floor(first + n * step)`` for ``n = 0, 1, ...`` while it lies in the chosen span, ``step`` being
``native_fps / data.sampling_fps`` or ``data.frame_stride``. Two plans:

- ``"all"`` (sliding clips): consecutive clips of ``T = data.num_frames`` of those frames cover
  them all; the last clip ends on the last shown frame, so it may overlap the one before (each
  shown frame then takes its maps from the first clip holding it). A span shorter than one clip
  is one clip padded as in testing (indices past the video repeat its last frame).
- ``"centre"``: the single centred clip of one-view testing (``ClipSampling.view_indices``);
  its frames past the end of a short video are not shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from videotl.data.sampling import ClipSampling, clip_indices

CLIP_PLANS = ("all", "centre")
_EPS = 1e-6  # as in videotl.data.sampling


@dataclass(frozen=True)
class ClipPlan:
    """Shown frames and clips.

    Attributes:
        frame_indices: native index of every shown frame, ``N`` of them.
        clips: native indices of each clip's ``T`` frames.
        clip_starts: position in ``frame_indices`` of each clip's first frame.
        frame_clip: the clip each shown frame takes its maps and scores from.
        frame_offset: its position within that clip.
        step: native frames between shown frames.
    """

    frame_indices: list[int]
    clips: list[list[int]]
    clip_starts: list[int]
    frame_clip: list[int]
    frame_offset: list[int]
    step: float


def plan_clips(
    video_frames: int,
    native_fps: float,
    sampling: ClipSampling,
    plan: str = "all",
    start_s: float = 0.0,
    duration_s: float | None = None,
) -> ClipPlan:
    """Plans the clips over native frames ``[start_s, start_s + duration_s)`` seconds of a
    ``video_frames``-frame video (``duration_s=None``: to the end; ignored by ``"centre"``).

    Raises:
        ValueError: unknown plan, or a span outside the video.
    """
    if plan not in CLIP_PLANS:
        raise ValueError(f"unknown clip plan {plan!r}; expected one of {CLIP_PLANS}")
    step = sampling.step(native_fps)
    length = sampling.num_frames
    if plan == "centre":
        clip = sampling.view_indices(video_frames, native_fps, 0, 1)
        shown = _frames_in_span(clip[0], step, video_frames - 1, length)
        return _assemble(clip[:shown], [clip], [0], length, step)
    first, last = _span(video_frames, native_fps, start_s, duration_s)
    shown = _frames_in_span(first, step, last, None)
    if shown <= length:
        clip = clip_indices(first, length, step, video_frames)
        return _assemble(clip[:shown], [clip], [0], length, step)
    frames = clip_indices(first, shown, step, video_frames)
    starts = list(range(0, shown - length + 1, length))
    if starts[-1] + length < shown:
        starts.append(shown - length)
    clips = [frames[s:s + length] for s in starts]
    return _assemble(frames, clips, starts, length, step)


def _span(video_frames: int, fps: float, start_s: float,
          duration_s: float | None) -> tuple[int, int]:
    """First and last native frame of ``[start_s, start_s + duration_s)``."""
    if start_s < 0 or (duration_s is not None and duration_s <= 0):
        raise ValueError(f"start must be >= 0 s and duration > 0 s, got {start_s} and "
                         f"{duration_s}")
    first = int(math.floor(start_s * fps + _EPS))
    if first >= video_frames:
        raise ValueError(f"start {start_s} s is past the end of the video "
                         f"({video_frames} frames at {fps:.3f} fps = {video_frames / fps:.2f} s)")
    last = video_frames - 1
    if duration_s is not None:
        last = min(last, int(math.ceil((start_s + duration_s) * fps - _EPS)) - 1)
    return first, max(first, last)


def _frames_in_span(first: int, step: float, last: int, limit: int | None) -> int:
    """How many ``floor(first + n * step)`` lie in ``[first, last]`` (at most ``limit``)."""
    count = int(math.ceil((last - first + 1 - _EPS) / step))
    return max(1, count if limit is None else min(count, limit))


def _assemble(frames: list[int], clips: list[list[int]], starts: list[int], length: int,
              step: float) -> ClipPlan:
    owner, offset = [], []
    for position in range(len(frames)):
        clip = next(k for k, s in enumerate(starts) if s <= position < s + length)
        owner.append(clip)
        offset.append(position - starts[clip])
    return ClipPlan(list(frames), [list(c) for c in clips], list(starts), owner, offset, step)
