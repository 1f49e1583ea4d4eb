"""What re-encoded videos look like, shared by both encoders: ``EncodeSettings``, the libavfilter
chain (``fps``, ``scale``, ``format``) and the libx264 options."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from videotl.errors import RunError


class EncodeError(RunError, RuntimeError):
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


def filters(settings: EncodeSettings) -> list[tuple[str, dict[str, str]]]:
    """The libavfilter chain both encoders run: ``[(filter, {option: value})]``.

    ``scale`` sets the short side (``iw``/``ih`` are the input sizes; ``-2`` keeps the aspect
    ratio with an even size): the target, or the source's when smaller and not upscaling,
    rounded down to even.
    """
    chain: list[tuple[str, dict[str, str]]] = []
    if settings.fps is not None:
        chain.append(("fps", {"fps": rate_text(settings.fps)}))

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


def rate_text(rate: float) -> str:
    """``12.0`` -> ``"12/1"``, ``29.97`` -> ``"30000/1001"``: a frame rate for ffmpeg options."""
    fraction = Fraction(rate).limit_denominator(1001)
    return f"{fraction.numerator}/{fraction.denominator}"


def first_line(text: str) -> str:
    """The first line of a library or program message, at most 300 characters."""
    return text.strip().splitlines()[0][:300] if text.strip() else ""


def last_lines(text: str, count: int = 3) -> str:
    """The last ``count`` lines of a message, joined by ``" | "``."""
    return " | ".join(line.strip() for line in text.strip().splitlines()[-count:])[:600]
