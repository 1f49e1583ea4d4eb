"""Turning frames upright by a video's rotation metadata, the way the ``ffmpeg`` program does.

Phones record in the sensor's orientation and store the turn needed to show the picture upright
in the container: a display matrix (the MP4 ``tkhd`` matrix, which FFmpeg attaches to every
decoded frame as side data) or, in files from older tools, a ``rotate`` tag in clockwise degrees.
A reader that ignores it returns portrait videos lying on their side (and mirrored selfie videos
mirrored). The steps here follow ``fftools/ffmpeg_filter.c``: the angle from the matrix, rounded
to a quarter turn, becomes ``transpose`` / ``hflip`` / ``vflip`` filters, and the matrix's signs
choose the flipped variants. Angles that are not quarter turns are rounded to the nearest one.

``Steps`` is a tuple of ``(filter, direction)`` pairs, e.g. ``(("transpose", "cclock"),)``; the
same steps run as libavfilter filters when re-encoding (``filter_chain``) and as pixel
permutations on decoded RGB frames in the reader (``apply_steps``), so both give the same picture.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

Steps = tuple[tuple[str, str], ...]

UPRIGHT: Steps = ()


def matrix_steps(matrix: Sequence[int]) -> Steps:
    """Steps for a display matrix (9 int32 values, 16.16 fixed point for the first 6)."""
    theta = _clockwise_degrees(matrix)
    if theta is None:
        return UPRIGHT
    turn = round(theta / 90) % 4
    if turn == 1:
        return (("transpose", "cclock_flip" if matrix[3] > 0 else "clock"),)
    if turn == 2:
        return tuple(step for step, flip in ((("hflip", ""), matrix[0] < 0),
                                             (("vflip", ""), matrix[4] < 0)) if flip)
    if turn == 3:
        return (("transpose", "clock_flip" if matrix[3] < 0 else "cclock"),)
    return (("vflip", ""),) if matrix[4] < 0 else UPRIGHT


def tag_steps(rotate: str | None) -> Steps:
    """Steps for a ``rotate`` tag (degrees clockwise, e.g. ``"90"``); unreadable tags: none."""
    try:
        turn = round(float(rotate or 0) / 90) % 4
    except ValueError:
        return UPRIGHT
    return {0: UPRIGHT, 1: (("transpose", "clock"),), 2: (("hflip", ""), ("vflip", "")),
            3: (("transpose", "cclock"),)}[turn]


def frame_steps(frame: Any, stream: Any) -> Steps:
    """Steps for a decoded PyAV frame: its display matrix, else the stream's ``rotate`` tag."""
    from av.sidedata.sidedata import Type

    side_data = frame.side_data.get(Type.DISPLAYMATRIX)
    if side_data is not None:
        matrix = np.frombuffer(bytes(side_data), dtype="<i4")
        if len(matrix) == 9:
            return matrix_steps([int(value) for value in matrix])
    return tag_steps(stream.metadata.get("rotate"))


def swaps_sides(steps: Steps) -> bool:
    """True when the steps turn the picture a quarter turn (width and height swap)."""
    return any(name == "transpose" for name, _ in steps)


def filter_chain(steps: Steps) -> list[tuple[str, dict[str, str]]]:
    """The steps as libavfilter filters ``[(name, {option: value})]``."""
    return [(name, {"dir": direction} if name == "transpose" else {}) for name, direction in steps]


def apply_steps(image: np.ndarray, steps: Steps) -> np.ndarray:
    """The steps on an image ``[H, W, C]`` (exact pixel moves, identical to the filters)."""
    for name, direction in steps:
        if name == "hflip":
            image = image[:, ::-1]
        elif name == "vflip":
            image = image[::-1]
        elif direction in ("cclock_flip", "clock_flip"):
            image = image.transpose(1, 0, 2)
            image = image[::-1, ::-1] if direction == "clock_flip" else image
        else:
            image = np.rot90(image, 1 if direction == "cclock" else -1)
    return np.ascontiguousarray(image)


def _clockwise_degrees(matrix: Sequence[int]) -> float | None:
    """The clockwise turn of a display matrix (``-av_display_rotation_get``), in [0, 360), or
    None for a matrix that is no turn: damaged headers (random bytes in ``tkhd``) would
    otherwise turn a landscape video on its side."""
    scale_x, scale_y = math.hypot(matrix[0], matrix[3]), math.hypot(matrix[1], matrix[4])
    if scale_x == 0 or scale_y == 0:  # a degenerate matrix: FFmpeg ignores it too
        return None
    if matrix[2] or matrix[5] or matrix[8] != 1 << 30:  # not a 2-D placement
        return None
    shear = abs(matrix[0] * matrix[1] + matrix[3] * matrix[4]) / (scale_x * scale_y)
    if shear > 0.01 or not 0.99 < scale_x / scale_y < 1.01:  # skewed or stretched
        return None
    theta = math.degrees(math.atan2(matrix[1] / scale_y, matrix[0] / scale_x))
    return round(theta) % 360
