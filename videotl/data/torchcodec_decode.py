"""Frame-exact decoding with torchcodec, PyTorch's own video decoder: ``VideoReader``'s third
backend (``data.decoder=torchcodec``).

torchcodec is optional: ``pip install 'videotl[torchcodec]'`` installs it (0.11 or newer, the
release that matches the installed torch; see torchcodec's compatibility table), and it decodes
with the FFmpeg shared libraries it finds on the system (``libavcodec.so.N`` and its siblings, a
major version that release supports), which it does not ship. When either is missing, selecting
the backend is an ``InputError`` whose one line names the real import or load error and what to
install (``torchcodec_unavailable``); videotl never falls back silently from a backend the user
chose that cannot exist on the machine.

Frames. The decoder opens in torchcodec's *exact* seek mode: it reads every packet first and
numbers frames by presentation timestamp, leaving out packets the container hides (an MP4 edit
list's "discard" packets), as ``StreamIndex`` does. To decode frame ``i`` it seeks to the last
keyframe whose ``pts`` is at or before the frame's (in an open GOP that is the previous group's
keyframe for the frames shown before a keyframe, which is what they need), decodes, and returns
the first frame whose ``pts`` reaches the wanted one. So torchcodec's frame ``i`` is ours when
both count the same frames (checked when the decoder opens), and every returned frame's ``pts``
is compared with the index: a frame that failed to decode (torchcodec would return the next one)
or a seek that landed wrong is never taken for another frame. Any disagreement raises
``TorchcodecMismatch``, and the reader decodes that file with PyAV.

Files torchcodec is not asked for (``torchcodec_problem``): containers without a seek index
(MPEG-TS: its seeks land past the frames and it reports the end of the stream); streams with
packets without presentation timestamps (the times it gives frames are then decode times, so its
frame ``i`` is not the ``i``-th on screen); and AVI with B-frames: torchcodec seeks to a
keyframe's ``pts`` and the AVI demuxer indexes by decode time, so its seeks land past the frames
(H.264 and MPEG-4 Part 2 in AVI with B-frames: every frame wrong or missing). Whatever these rules
miss, the timestamp check above catches.

Rotation. torchcodec (0.11 and later) turns frames by the stream's display matrix itself, by the
nearest quarter turn (``VideoStreamMetadata.rotation``, degrees counter-clockwise), and ignores
mirroring: a mirrored selfie video comes out turned by 180 degrees. videotl turns frames upright
the way the ``ffmpeg`` program does (``videotl.data.orientation``); where torchcodec's turn is
not that, its turn is undone and videotl's steps applied (exact pixel moves either way).

Sources: a path, or the encoded bytes of a video (torchcodec reads both).
"""

from __future__ import annotations

import logging
import math
import re
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
import torch

from videotl.data.orientation import Steps, apply_steps, swaps_sides
from videotl.errors import InputError

logger = logging.getLogger(__name__)

MIN_VERSION = (0, 11)  # the first release that applies rotation metadata (see module docstring)
# Containers with a seek index where torchcodec finds every frame of the decoding corpus
# (tests/data/test_decoding_corpus.py); in MPEG-TS its seeks miss.
TORCHCODEC_FORMATS = {"mp4", "matroska", "webm", "avi"}
INSTALL = ("pip install 'videotl[torchcodec]' (torchcodec>=0.11, the release matching your "
           "torch) and FFmpeg's shared libraries (e.g. apt-get install ffmpeg, or conda install "
           "ffmpeg), or choose data.decoder=decord or pyav")
# The pure turns torchcodec applies, as videotl's steps: quarter turns counter-clockwise -> steps.
TURN_STEPS: dict[int, Steps] = {0: (), 1: (("transpose", "cclock"),),
                                2: (("hflip", ""), ("vflip", "")), 3: (("transpose", "clock"),)}


class TorchcodecUnavailable(InputError):
    """``data.decoder=torchcodec`` on a machine where torchcodec cannot decode; the message says
    why and what to install."""


class TorchcodecMismatch(RuntimeError):
    """torchcodec's frames are not the index's for this file (the reader falls back to PyAV)."""


def torchcodec_unavailable() -> str | None:
    """Why torchcodec cannot decode here (one line: the real import or load error and what to
    install), or None when it can. Cached per process."""
    return _unavailable()


def require_torchcodec() -> None:
    """Raises ``TorchcodecUnavailable`` unless torchcodec can decode here."""
    reason = torchcodec_unavailable()
    if reason is not None:
        raise TorchcodecUnavailable(f"data.decoder=torchcodec: {reason}; {INSTALL}")


@lru_cache(maxsize=1)
def _unavailable() -> str | None:
    try:
        import torchcodec
        from torchcodec.decoders import VideoDecoder
    except ImportError as error:
        if error.name == "torchcodec":
            return f"torchcodec is not installed ({error})"
        return f"torchcodec cannot be imported ({_one_line(error)})"
    except (RuntimeError, OSError) as error:  # releases that load FFmpeg when imported
        return f"torchcodec cannot load its libraries ({_load_errors(str(error))})"
    version = getattr(torchcodec, "__version__", "0")
    if _version(version) < MIN_VERSION:
        return (f"torchcodec {version} is older than "
                f"{'.'.join(str(part) for part in MIN_VERSION)}")
    if getattr(torchcodec, "ffmpeg_major_version", 0) is None:
        # Newer releases import without FFmpeg and say why only when a decoder is made.
        try:
            VideoDecoder(b"\0" * 16)
        except RuntimeError as error:
            return (f"torchcodec {version} cannot load FFmpeg's shared libraries "
                    f"({_load_errors(str(error))})")
        except Exception:  # noqa: BLE001 - FFmpeg loaded after all and refused the bytes
            return None
    return None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text.split("+")[0])[:2])


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300]


def _load_errors(message: str) -> str:
    """The loader's own errors inside torchcodec's report (one per FFmpeg version it tried),
    e.g. ``libavutil.so.60, libavutil.so.59 ... not found``."""
    errors = [line.strip().removeprefix("OSError: ") for line in message.splitlines()
              if line.strip().startswith("OSError: ") and "Could not load this library" not in line]
    missing = [m.group(1) for m in map(re.compile(r"(\S+): cannot open shared object file").match,
                                       errors) if m]
    if errors and len(missing) == len(errors):
        return f"{', '.join(dict.fromkeys(missing))} not found"
    if errors:
        return "; ".join(dict.fromkeys(errors))[:300]
    return _one_line(Exception(message.splitlines()[0] if message else "unknown error"))


def torchcodec_problem(container_format: str, packets_without_pts: int,
                       reordered: bool) -> str | None:
    """Why torchcodec would not find this stream's frames (see the module docstring), or None.
    ``reordered``: the stream has B-frames (frames decoded in another order than shown)."""
    formats = set(container_format.split(","))
    if not formats & TORCHCODEC_FORMATS:
        return f"a {container_format} container (no seek index; torchcodec's seeks land off)"
    if packets_without_pts:
        return "packets without presentation timestamps (torchcodec times frames by decode time)"
    if reordered and "avi" in formats:
        return "B-frames in AVI (torchcodec's seeks by presentation time land off in AVI)"
    return None


class TorchcodecReader:
    """An open torchcodec decoder for one video and its index.

    Args:
        source: the video's path or its encoded bytes.
        pts: the index's presentation timestamps, sorted ``[num_frames]`` int64.
        time_base: seconds per timestamp unit, as ``(numerator, denominator)``.
        orientation: videotl's steps that turn the coded frames upright.
        coded: ``(width, height)`` of the coded frames (before any turn).
        size: ``(width, height)`` of the upright frames to return (resized inside FFmpeg when
            it differs from the native size).
        num_threads: FFmpeg decoder threads (0: FFmpeg chooses).

    Raises:
        TorchcodecMismatch: torchcodec counts other frames than the index.
        RuntimeError, ValueError: torchcodec's own errors for files it cannot open.
    """

    def __init__(self, source: str | bytes, pts: np.ndarray, time_base: tuple[int, int],
                 orientation: Steps, coded: tuple[int, int], size: tuple[int, int],
                 num_threads: int) -> None:
        from torchcodec.decoders import VideoDecoder

        self.pts, self.orientation, self.size = pts, orientation, size
        self.num, self.den = time_base
        turned = swaps_sides(orientation)
        target = size[::-1] if turned else size  # before videotl's steps
        # torchcodec resizes after its own turn, so the size is asked in its orientation. Its
        # turn is known once it has opened the file; it swaps the sides exactly when videotl's
        # steps do unless the display matrix is skewed (videotl ignores those): then reopen.
        resize = None if target == coded else target[::-1] if turned else target
        self.decoder = self._open(VideoDecoder, source, num_threads, resize)
        self.turn = _quarter_turns(self.decoder.metadata)
        if resize is not None and bool(self.turn % 2) != turned:
            self.decoder = self._open(VideoDecoder, source, num_threads,
                                      target[::-1] if self.turn % 2 else target)
        if self.decoder.metadata.num_frames != len(pts):
            raise TorchcodecMismatch(f"torchcodec counts {self.decoder.metadata.num_frames} "
                                     f"frames, the index {len(pts)}")

    @staticmethod
    def _open(make: Any, source: str | bytes, num_threads: int,
              resize: tuple[int, int] | None) -> Any:
        transforms = None
        if resize is not None:
            from torchcodec.transforms import Resize

            transforms = [Resize((resize[1], resize[0]))]
        return make(source, seek_mode="exact", dimension_order="NHWC",
                    num_ffmpeg_threads=num_threads, transforms=transforms)

    def get_frames(self, wanted: Sequence[int]) -> torch.Tensor:
        """Frames ``wanted`` (any order, repeats allowed) as uint8 ``[N, H, W, 3]`` RGB,
        upright at ``size``."""
        batch = self.decoder.get_frames_at(list(wanted))
        # The same double arithmetic as torchcodec's pts_to_seconds: pts * num / den.
        expected = self.pts[np.asarray(wanted)].astype(np.float64) * self.num / self.den
        got = batch.pts_seconds.numpy()
        if not np.array_equal(got, expected):
            bad = int(np.flatnonzero(got != expected)[0])
            raise TorchcodecMismatch(f"torchcodec returned the frame at {got[bad]:.6f} s for "
                                     f"frame {wanted[bad]} at {expected[bad]:.6f} s")
        frames = batch.data
        if TURN_STEPS[self.turn] != self.orientation:  # its turn is not videotl's: redo it
            frames = torch.from_numpy(np.stack([
                apply_steps(np.rot90(frame, -self.turn), self.orientation)
                for frame in frames.numpy()]))
        if tuple(frames.shape[1:]) != (self.size[1], self.size[0], 3):
            raise TorchcodecMismatch(f"torchcodec returned frames of shape {tuple(frames.shape)}")
        return frames


def _quarter_turns(metadata: Any) -> int:
    """The quarter turns counter-clockwise torchcodec applies (``rotation``, rounded half away
    from zero as its C++ does); 0 for releases that report none."""
    degrees = getattr(metadata, "rotation", None)
    if degrees is None or not math.isfinite(degrees):
        return 0
    return int(math.copysign(math.floor(abs(degrees) / 90 + 0.5), degrees)) % 4
