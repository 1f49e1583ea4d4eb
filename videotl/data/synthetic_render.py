"""Drawing and encoding synthetic videos: shapes that move, scale, spin, fade or blink.

A video holds actors over a static textured background. An actor is one shape (bar, triangle
or cross) with a random colour, size and place, doing one motion during ``[start, end]``
seconds. The motion is the only thing that tells classes apart: shape, colour, size, position
and background are drawn independently of it, so a single frame cannot name the class. Every
motion is unchanged by a horizontal flip (sideways motions go either way, spins turn either
way), so the default flip augmentation keeps labels valid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

SHAPES = ("bar", "triangle", "cross")


@dataclass(frozen=True)
class Pose:
    """Where and how an actor is drawn at one instant (coordinates in [0, 1] of the frame)."""

    x: float
    y: float
    scale: float = 1.0
    angle: float = 0.0  # radians
    alpha: float = 1.0


Motion = Callable[[float, float, "np.random.Generator"], Callable[[float], Pose]]


def _linear(a: float, b: float, u: float) -> float:
    return a + (b - a) * u


def _moving_vertically(up: bool) -> Motion:
    def motion(duration: float, _: float, rng: np.random.Generator) -> Callable[[float], Pose]:
        x, top, bottom = rng.uniform(0.3, 0.7), rng.uniform(0.2, 0.3), rng.uniform(0.7, 0.8)
        start, end = (bottom, top) if up else (top, bottom)
        return lambda u: Pose(x, _linear(start, end, u))
    return motion


def _sliding_sideways(duration: float, _: float, rng: np.random.Generator):
    y, left, right = rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.25), rng.uniform(0.75, 0.85)
    start, end = (left, right) if rng.random() < 0.5 else (right, left)
    return lambda u: Pose(_linear(start, end, u), y)


def _scaling(grow: bool) -> Motion:
    def motion(duration: float, _: float, rng: np.random.Generator) -> Callable[[float], Pose]:
        x, y = rng.uniform(0.35, 0.65), rng.uniform(0.35, 0.65)
        small, large = rng.uniform(0.4, 0.55), rng.uniform(1.5, 1.8)
        start, end = (small, large) if grow else (large, small)
        return lambda u: Pose(x, y, scale=_linear(start, end, u))
    return motion


def _fading(appear: bool) -> Motion:
    def motion(duration: float, _: float, rng: np.random.Generator) -> Callable[[float], Pose]:
        x, y = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7)
        return lambda u: Pose(x, y, alpha=u if appear else 1.0 - u)
    return motion


def _spinning(duration: float, _: float, rng: np.random.Generator):
    x, y, angle = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0, math.pi)
    turns = rng.choice([-1.0, 1.0]) * rng.uniform(0.35, 0.5) * 2 * math.pi * duration
    return lambda u: Pose(x, y, angle=angle + turns * u)


def _blinking(duration: float, _: float, rng: np.random.Generator):
    x, y = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7)
    period, phase = rng.uniform(1.0, 1.4), rng.uniform(0, 1)
    return lambda u: Pose(x, y, alpha=float((u * duration / period + phase) % 1.0 < 0.5))


def _staying_still(duration: float, _: float, rng: np.random.Generator):
    pose = Pose(rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), angle=rng.uniform(0, math.pi))
    return lambda u: pose


def _bouncing(duration: float, _: float, rng: np.random.Generator):
    x, period, phase = rng.uniform(0.3, 0.7), rng.uniform(0.8, 1.2), rng.uniform(0, 1)
    return lambda u: Pose(x, 0.5 + 0.25 * math.sin(2 * math.pi * (u * duration / period + phase)))


def _pulsing(duration: float, _: float, rng: np.random.Generator):
    x, y = rng.uniform(0.35, 0.65), rng.uniform(0.35, 0.65)
    period, phase = rng.uniform(0.8, 1.2), rng.uniform(0, 1)
    return lambda u: Pose(x, y, scale=1.0 + 0.45 * math.sin(
        2 * math.pi * (u * duration / period + phase)))


MOTIONS: dict[str, Motion] = {
    "moving up": _moving_vertically(up=True),
    "moving down": _moving_vertically(up=False),
    "sliding sideways": _sliding_sideways,
    "approaching": _scaling(grow=True),
    "receding": _scaling(grow=False),
    "appearing": _fading(appear=True),
    "vanishing": _fading(appear=False),
    "spinning": _spinning,
    "blinking": _blinking,
    "staying still": _staying_still,
    "bouncing": _bouncing,
    "pulsing": _pulsing,
}


@dataclass(frozen=True)
class Actor:
    """One shape doing ``motion`` from ``start`` to ``end`` seconds (invisible outside)."""

    motion: str
    start: float
    end: float
    shape: str
    color: tuple[int, int, int]
    size: float  # half-extent in pixels at scale 1
    path: Callable[[float], Pose]

    def pose(self, time: float) -> Pose | None:
        if not self.start <= time <= self.end:
            return None
        return self.path((time - self.start) / max(self.end - self.start, 1e-6))


def make_actor(
    motion: str, start: float, end: float, short_side: int, rng: np.random.Generator
) -> Actor:
    """An actor with random appearance (shape, bright colour, size) doing ``motion``."""
    color = tuple(int(c) for c in rng.integers(140, 256, 3))
    size = short_side * rng.uniform(0.13, 0.19)
    path = MOTIONS[motion](end - start, short_side, rng)
    return Actor(motion, start, end, str(rng.choice(SHAPES)), color, size, path)


def background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A dark, smooth random texture ``[H, W, 3]`` float32."""
    base = rng.uniform(10, 60, 3)
    coarse = rng.uniform(-10, 10, (height // 16 + 2, width // 16 + 2, 3))
    texture = np.kron(coarse, np.ones((16, 16, 1)))[:height, :width]
    return (base + texture).astype(np.float32)


class Canvas:
    """Draws actors onto a background; coordinate grids are computed once per video."""

    def __init__(self, width: int, height: int, rng: np.random.Generator) -> None:
        self.width, self.height = width, height
        self.background = background(width, height, rng)
        self.ys, self.xs = np.mgrid[0:height, 0:width].astype(np.float32)

    def frame(self, actors: Sequence[Actor], time: float) -> np.ndarray:
        """The frame at ``time`` seconds: uint8 ``[H, W, 3]``."""
        image = self.background.copy()
        for actor in actors:
            pose = actor.pose(time)
            if pose is None or pose.alpha <= 0:
                continue
            mask = self._mask(actor, pose)
            weight = (pose.alpha * mask)[..., None]
            image = image * (1 - weight) + np.asarray(actor.color, np.float32) * weight
        return np.clip(image, 0, 255).astype(np.uint8)

    def _mask(self, actor: Actor, pose: Pose) -> np.ndarray:
        extent = actor.size * pose.scale
        cos, sin = math.cos(pose.angle), math.sin(pose.angle)
        dx = (self.xs - pose.x * self.width) / extent
        dy = (self.ys - pose.y * self.height) / extent
        lx, ly = cos * dx + sin * dy, -sin * dx + cos * dy
        if actor.shape == "bar":
            inside = (np.abs(lx) <= 1.0) & (np.abs(ly) <= 0.35)
        elif actor.shape == "cross":
            inside = ((np.abs(lx) <= 1.0) & (np.abs(ly) <= 0.3)) | (
                (np.abs(ly) <= 1.0) & (np.abs(lx) <= 0.3))
        else:  # triangle pointing up: apex (0, -1), base corners (+-0.9, 0.7)
            inside = (ly <= 0.7) & (1.7 * lx + 0.9 * ly >= -0.9) & (-1.7 * lx + 0.9 * ly >= -0.9)
        return inside.astype(np.float32)


def write_video(
    path: Path, actors: Sequence[Actor], duration: float, fps: float, width: int, height: int,
    rng: np.random.Generator,
) -> int:
    """Renders and encodes an H.264 MP4 (yuv420p, keyframe every 2 s); returns frames written.

    ``width`` and ``height`` must be even (4:2:0 chroma). One encoder thread: the bytes depend
    only on the inputs.
    """
    import av

    from av.video.reformatter import VideoReformatter

    canvas = Canvas(width, height, rng)
    to_yuv = VideoReformatter()  # one converter per video instead of one per frame
    num_frames = max(1, int(round(duration * fps)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001),
                                      options={"preset": "veryfast", "crf": "20",
                                               "g": str(max(1, int(2 * fps)))})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(canvas.frame(actors, i / fps), format="rgb24")
            for packet in stream.encode(to_yuv.reformat(frame, format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return num_frames
