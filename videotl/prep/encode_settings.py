"""What re-encoded videos look like, shared by both encoders: ``EncodeSettings``, the libavfilter
chain (``fps``, ``scale``, ``format``), the libx264 options, the command-line arguments that set
them, and ``written_x264_options``, which reads back the options x264 recorded in a file."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, fields
from fractions import Fraction
from pathlib import Path

import av

from videotl.errors import InputError, RunError

PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
           "veryslow", "placebo")
TUNES = ("none", "fastdecode")
MAX_BFRAMES = 16  # x264's limit (X264_BFRAME_MAX)


class EncodeError(RunError, RuntimeError):
    """A video could not be re-encoded; the message says why."""


class EncodeSettingError(InputError, ValueError):
    """An ``EncodeSettings`` value out of its range: ``"<field> <reason>"``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field, self.reason = field, reason


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
            scene cuts); a decoder seeking to a frame decodes at most this much before it. None:
            x264's default interval, 250 frames.
        crf: x264 constant rate factor (lower: better and larger; x264's default is 23).
        preset: x264 speed preset (``PRESETS``).
        tune: ``"none"`` or ``"fastdecode"``: x264's tuning for cheap decoding (CAVLC instead of
            CABAC entropy coding, no deblocking filter, no weighted prediction), which costs
            bytes at the same CRF and saves decoder time on every frame.
        bframes: most B-frames in a row (0: none, decode order = display order); None: the
            preset's choice (3 for every preset from superfast to slower).
    """

    # The defaults load random training clips 1.6x faster than a keyframe every second with
    # CABAC, deblocking and B-frames at CRF 23, in 0.88x the bytes, at 1.4 dB lower PSNR
    # (geometric means over 11 real videos: benchmarks/encoding_settings.py, BENCHMARKS.md).
    short_side: int | None = 256
    upscale: bool = False
    fps: float | None = None
    keyframe_seconds: float | None = 2.0
    crf: int = 25
    preset: str = "veryfast"
    tune: str = "fastdecode"
    bframes: int | None = 0

    def __post_init__(self) -> None:
        problem = _problem(self)
        if problem is not None:
            raise EncodeSettingError(*problem)


def _problem(settings: EncodeSettings) -> tuple[str, str] | None:
    """``(field, reason)`` for the first value out of range, or None."""
    if settings.short_side is not None and settings.short_side < 2:
        return "short_side", f"must be at least 2 pixels, got {settings.short_side}"
    if settings.fps is not None and not settings.fps > 0:
        return "fps", f"must be positive, got {settings.fps}"
    if settings.keyframe_seconds is not None and not settings.keyframe_seconds > 0:
        return "keyframe_seconds", f"must be positive, got {settings.keyframe_seconds}"
    if not 0 <= settings.crf <= 51:
        return "crf", f"must be in [0, 51], got {settings.crf}"
    if settings.preset not in PRESETS:
        return "preset", f"must be one of {', '.join(PRESETS)}; got {settings.preset!r}"
    if settings.tune not in TUNES:
        return "tune", f"must be one of {', '.join(TUNES)}; got {settings.tune!r}"
    if settings.bframes is not None and not 0 <= settings.bframes <= MAX_BFRAMES:
        return "bframes", f"must be in [0, {MAX_BFRAMES}], got {settings.bframes}"
    return None


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


def keyframe_interval(settings: EncodeSettings, source_fps: float) -> int | None:
    """Frames between keyframes: ``keyframe_seconds`` at the output frame rate (None: x264's
    default)."""
    if settings.keyframe_seconds is None:
        return None
    return max(1, round(settings.keyframe_seconds * (settings.fps or source_fps)))


def x264_options(settings: EncodeSettings, source_fps: float) -> dict[str, str]:
    """The libx264 options, named as both encoders take them: PyAV's ``options`` and the
    ``ffmpeg`` program's ``-<name> <value>`` (x264's own defaults apply to what is left out)."""
    options = {"preset": settings.preset, "crf": str(settings.crf)}
    if settings.tune != "none":
        options["tune"] = settings.tune
    interval = keyframe_interval(settings, source_fps)
    if interval is not None:
        options["g"] = str(interval)
    if settings.bframes is not None:
        options["bf"] = str(settings.bframes)
    return options


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


# -- the command line --------------------------------------------------------------------------

def add_encode_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that set ``EncodeSettings`` (defaults: its own); read them back with
    ``encode_settings_from``."""
    default = EncodeSettings()
    keyframes = "x264's, 250 frames" if default.keyframe_seconds is None else \
        f"{default.keyframe_seconds:g}"
    bframes = "the preset's" if default.bframes is None else str(default.bframes)
    parser.add_argument("--short-side", type=int, default=default.short_side,
                        help=f"pixels of the shorter side (default {default.short_side}; "
                             "0 keeps the size)")
    parser.add_argument("--upscale", action="store_true",
                        help="also enlarge videos smaller than --short-side")
    parser.add_argument("--fps", type=float, default=default.fps,
                        help="output frame rate, e.g. 12 (default: keep the source's)")
    parser.add_argument("--keyframe-seconds", type=float, default=default.keyframe_seconds,
                        help="at most this many seconds between keyframes; 0: x264's default "
                             f"interval of 250 frames (default {keyframes})")
    parser.add_argument("--crf", type=int, default=default.crf,
                        help=f"x264 quality, lower is better and larger (default {default.crf})")
    parser.add_argument("--preset", default=default.preset,
                        help=f"x264 preset: {', '.join(PRESETS)} (default {default.preset})")
    parser.add_argument("--tune", default=default.tune,
                        help=f"x264 tuning: {' or '.join(TUNES)}; fastdecode makes every frame "
                             f"cheaper to decode for some more bytes (default {default.tune})")
    parser.add_argument("--bframes", type=int, default=default.bframes,
                        help=f"most B-frames in a row, 0 for none (default {bframes})")


def encode_settings_from(args: argparse.Namespace) -> EncodeSettings:
    """``EncodeSettings`` from the options of ``add_encode_arguments``.

    Raises:
        EncodeSettingError: a value out of range; the message names the option
            (``--crf must be in [0, 51], got 60``).
    """
    values = {field.name: getattr(args, field.name) for field in fields(EncodeSettings)}
    values["short_side"] = values["short_side"] or None  # 0 keeps the size
    if values["keyframe_seconds"] == 0:  # x264's default interval
        values["keyframe_seconds"] = None
    try:
        return EncodeSettings(**values)
    except EncodeSettingError as error:
        raise EncodeSettingError("--" + error.field.replace("_", "-"), error.reason) from None


# -- what x264 wrote ---------------------------------------------------------------------------

_X264_SEI = re.compile(rb"x264 - core (\d+)[^\x00]*? - options: ([^\x00]*)")


def written_x264_options(path: str | Path) -> dict[str, str]:
    """The options x264 recorded in ``path``'s first video packet (the "x264 - core N ...
    options: cabac=0 ref=1 ... crf=23.0 ..." text of its user-data SEI message), as
    ``{name: value}`` plus ``"core"``, x264's version; ``{}`` when the stream has no such text
    (another encoder, or x264 told not to write it)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        first = next((packet for packet in container.demux(stream) if packet.size), None)
        match = _X264_SEI.search(bytes(first)) if first is not None else None
    if match is None:
        return {}
    options = dict(item.split("=", 1) for item in match.group(2).decode("ascii").split()
                   if "=" in item)
    return {"core": match.group(1).decode("ascii"), **options}
