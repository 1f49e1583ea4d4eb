"""Re-encoding one video: short side to N pixels, optional fixed frame rate, H.264 that is cheap
to decode at random positions (keyframe interval, x264 tuning, B-frames, CRF: ``EncodeSettings``
in ``encode_settings``), video only.

Two encoders make the same file: PyAV (``pyav_encoder``, the default: always available, and
as fast as the ``ffmpeg`` program or faster in ``benchmarks/resize_encoders.py``) and the
``ffmpeg`` program (``ffmpeg_encoder``, when installed). Both run the same libavfilter chain
and libx264 settings and turn videos upright by their rotation metadata.

Every output is written to a hidden temporary name in the target folder, checked (its video
stream is indexed the way ``VideoReader`` indexes it), and only then renamed into place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av

from videotl.data.video_reader import VideoDecodeError, probe
from videotl.prep.encode_settings import (
    EncodeError,
    EncodeSettingError,
    EncodeSettings,
    add_encode_arguments,
    encode_settings_from,
    first_line,
    written_x264_options,
)
from videotl.prep.ffmpeg_encoder import encode_with_ffmpeg, ffmpeg_program
from videotl.prep.files import part_path
from videotl.prep.pyav_encoder import encode_with_pyav

__all__ = ["ENCODERS", "EncodeError", "EncodeResult", "EncodeSettingError", "EncodeSettings",
           "add_encode_arguments", "choose_encoder", "encode_settings_from", "encode_video",
           "ffmpeg_program", "written_x264_options"]

ENCODERS = ("pyav", "ffmpeg")
SHORT_OUTPUT = 0.9  # an output shorter than this share of the source's stated length is reported


@dataclass(frozen=True)
class EncodeResult:
    """``frames`` in the output; ``warning``: what the decoder complained about, if anything."""

    frames: int
    warning: str | None = None


def choose_encoder(encoder: str) -> str:
    """Checks that ``encoder`` (``"pyav"`` or ``"ffmpeg"``) can run here and returns it.

    Raises:
        ValueError: unknown encoder, or ``"ffmpeg"`` asked for but not installed.
    """
    if encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {encoder!r}; expected one of {ENCODERS}")
    if encoder == "ffmpeg" and ffmpeg_program() is None:
        raise ValueError("the ffmpeg program (with libx264) is not on PATH; use the default "
                         "encoder (pyav) or install ffmpeg")
    return encoder


def encode_video(source: Path, target: Path, settings: EncodeSettings,
                 encoder: str) -> EncodeResult:
    """Re-encodes ``source`` into ``target`` (an MP4), atomically: ``target`` appears complete
    or not at all. ``encoder`` is ``"ffmpeg"`` or ``"pyav"``.

    Raises:
        EncodeError: the source cannot be read or yields no frame; the encoder failed.
    """
    source, target = Path(source).absolute(), Path(target).absolute()
    partial = part_path(target)
    partial.unlink(missing_ok=True)  # left by an interrupted run
    target.parent.mkdir(parents=True, exist_ok=True)
    source_fps, stated_seconds = _source_timing(source)
    try:
        if encoder == "ffmpeg":
            warning = encode_with_ffmpeg(source, partial, settings, source_fps)
        else:
            warning = encode_with_pyav(source, partial, settings, source_fps)
        frames, seconds = _indexed_output(partial)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if stated_seconds and seconds < SHORT_OUTPUT * stated_seconds:  # e.g. a cut-off download
        short = f"{seconds:.1f} s decoded of the {stated_seconds:.1f} s the source states"
        warning = f"{short}; {warning}" if warning else short
    return EncodeResult(frames, warning)


def _source_timing(source: Path) -> tuple[float, float | None]:
    """``(frame rate, seconds the container states or None)`` of the first video stream."""
    try:
        with av.open(str(source), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise EncodeError("the file has no video stream")
            stream = container.streams.video[0]
            rate = next((float(r) for r in (stream.average_rate, stream.guessed_rate,
                                            stream.base_rate) if r and 0 < float(r) < 1000), 30.0)
            if stream.duration and stream.time_base:
                return rate, float(stream.duration * stream.time_base)
            return rate, container.duration / 1e6 if container.duration else None
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as error:
        raise EncodeError(f"not a readable video ({first_line(str(error))})") from None


def _indexed_output(path: Path) -> tuple[int, float]:
    """``(frames, seconds)`` of an output, indexed as ``VideoReader`` indexes it."""
    try:
        index = probe(path)
    except VideoDecodeError as error:
        raise EncodeError(f"the output is not readable: {error.reason}") from None
    span = float((index.pts[-1] - index.pts[0]) * index.time_base)
    return index.num_frames, span + 1.0 / index.fps
