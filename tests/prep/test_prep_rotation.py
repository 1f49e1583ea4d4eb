"""Re-encoding (data_prep/resize_videos.py) turns videos upright by their display matrix exactly
as VideoReader shows them, mirrored ones included, and writes no rotation metadata. (The
quarter-turn case with a patched ``tkhd`` box is in test_prep_resize.py.)"""

import numpy as np
import pytest
from video_files import X264, encode_pattern

from videotl.data import VideoReader
from videotl.data.video_reader import probe
from videotl.prep.encode import EncodeSettings, encode_video, ffmpeg_program

# The ffmpeg program is optional; it turns videos by its own autorotation.
ENCODERS = ["pyav", pytest.param("ffmpeg", marks=pytest.mark.skipif(
    ffmpeg_program() is None, reason="the ffmpeg program (with libx264) is not installed"))]

TURNS = {"mirrored": dict(hflip=True), "rotated_270": dict(rotation=270),
         "rotated_and_mirrored": dict(rotation=90, hflip=True)}


def block_centre(frame: np.ndarray) -> np.ndarray:
    """Where the orange block of a pattern frame is: ``(row, column)`` ``[2]``."""
    orange = (frame[..., 0] > 200) & (frame[..., 2] < 80)
    return np.argwhere(orange).mean(axis=0)


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("turn", list(TURNS))
def test_outputs_are_upright_like_the_reader(encoder, turn, tmp_path):
    source = encode_pattern(tmp_path / "source.mp4", "libx264", 6, {**X264, "g": "6"},
                            **TURNS[turn])
    target = tmp_path / "upright.mp4"
    encode_video(source, target, EncodeSettings(short_side=None), encoder)
    shown = VideoReader(source, backend="pyav").get_frames([0])[0].numpy()
    encoded = VideoReader(target, backend="pyav").get_frames([0])[0].numpy()
    assert probe(target).orientation == ()  # the pixels are turned, not the metadata
    assert encoded.shape == shown.shape
    assert np.abs(block_centre(encoded) - block_centre(shown)).max() <= 1.0
