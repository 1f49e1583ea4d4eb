"""Re-encoding with the ``ffmpeg`` program: an argument list (no shell) with both paths given as
absolute ``file:`` URLs, so no file name is read as an option, a protocol or a pattern. The
program turns videos upright by their rotation metadata on its own."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

from videotl.prep.encode_settings import (
    EncodeError,
    EncodeSettings,
    filter_text,
    filters,
    first_line,
    last_lines,
    x264_options,
)


@functools.lru_cache(maxsize=1)
def ffmpeg_program() -> str | None:
    """The ``ffmpeg`` program on PATH if it has the libx264 encoder, else None."""
    program = shutil.which("ffmpeg")
    if program is None:
        return None
    try:
        listing = subprocess.run([program, "-hide_banner", "-nostdin", "-encoders"],
                                 capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return program if "libx264" in listing.stdout else None


def ffmpeg_command(program: str, source: Path, partial: Path, settings: EncodeSettings,
                   source_fps: float) -> list[str]:
    """The ffmpeg argument list (absolute ``file:`` URLs: names are never options). The x264
    options are ``x264_options``, each as ``-<name> <value>``: the ones PyAV's encoder gets."""
    codec = [word for name, value in x264_options(settings, source_fps).items()
             for word in (f"-{name}", value)]
    return [
        program, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-threads", "1", "-i", f"file:{source}",
        "-map", "0:v:0", "-an", "-sn", "-dn", "-map_metadata", "-1",
        "-vf", filter_text(filters(settings)), "-filter_threads", "1",
        "-c:v", "libx264", *codec, "-threads", "1", "-f", "mp4", f"file:{partial}",
    ]


def encode_with_ffmpeg(source: Path, partial: Path, settings: EncodeSettings,
                       source_fps: float) -> str | None:
    """Runs the program to encode ``source`` into ``partial`` (MP4); returns its first message
    as a warning, if it printed any.

    Raises:
        EncodeError: the program is missing or failed (with its last messages).
    """
    program = ffmpeg_program()
    if program is None:
        raise EncodeError("the ffmpeg program is no longer available")
    command = ffmpeg_command(program, source, partial, settings, source_fps)
    done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    messages = done.stderr.decode("utf-8", "replace").strip()
    if done.returncode != 0:
        raise EncodeError(f"ffmpeg failed (exit code {done.returncode}): "
                          f"{last_lines(messages) or 'no message'}")
    return first_line(messages) or None
