"""Re-encoding settings (``EncodeSettings``: tune, B-frames, keyframe interval, CRF, preset) reach
the encoded stream with both encoders, bad values end with one exact line, and the default
encoding decodes frame-exact with every backend."""

import random
from pathlib import Path

import av
import numpy as np
import pytest
from release_helpers import load_script
from video_files import sequential_frames

from videotl.data.video_reader import VideoReader, probe
from videotl.errors import InputError
from videotl.prep.encode import (
    EncodeSettingError,
    EncodeSettings,
    encode_settings_from,
    encode_video,
    ffmpeg_program,
    written_x264_options,
)
from videotl.prep.encode_settings import x264_options
from videotl.prep.ffmpeg_encoder import ffmpeg_command

ENCODERS = ["pyav", pytest.param("ffmpeg", marks=pytest.mark.skipif(
    ffmpeg_program() is None, reason="the ffmpeg program (with libx264) is not installed"))]


def write_panning_video(path: Path, num_frames: int, size: tuple[int, int] = (96, 64),
                        fps: int = 30) -> Path:
    """A coarse random texture panning sideways with a block moving over it (smooth motion:
    x264 chooses P- and B-frames and no scene cuts), near-lossless H.264."""
    width, height = size
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (height // 8, (width + 2 * num_frames) // 8 + 1, 3), np.uint8)
    texture = np.kron(coarse, np.ones((8, 8, 1), np.uint8))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"qp": "8", "g": "300"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        for i in range(num_frames):
            image = texture[:, 2 * i:2 * i + width].copy()
            x, y = (3 * i) % (width - 12), (2 * i) % (height - 12)
            image[y:y + 12, x:x + 12] = (230, 40, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def panning(tmp_path_factory) -> Path:
    """5 s at 30 fps, 96x64."""
    return write_panning_video(tmp_path_factory.mktemp("source") / "panning.mp4", 150)


def keyframe_frames(path: Path) -> list[int]:
    """Display positions of the keyframes."""
    index = probe(path)
    return np.searchsorted(index.pts, index.keyframe_pts).tolist()


def in_decode_order(path: Path) -> bool:
    """Whether packets come in display order (pts order == dts order: no B-frames)."""
    with av.open(str(path)) as container:
        pts = [packet.pts for packet in container.demux(video=0) if packet.size]
    return pts == sorted(pts)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_fastdecode_without_bframes_reaches_the_stream(encoder, panning, tmp_path):
    settings = EncodeSettings(short_side=None, keyframe_seconds=1.5, crf=30, preset="faster",
                              tune="fastdecode", bframes=0)
    target = tmp_path / "out.mp4"
    encode_video(panning, target, settings, encoder)
    written = written_x264_options(target)
    # tune=fastdecode: CAVLC (cabac=0), no deblocking filter, no weighted prediction.
    assert {key: written[key] for key in ("cabac", "deblock", "weightp", "bframes", "keyint",
                                          "crf")} == {
        "cabac": "0", "deblock": "0:0:0", "weightp": "0", "bframes": "0", "keyint": "45",
        "crf": "30.0"}
    assert written["subme"] == "4"  # preset faster (veryfast has subme=2)
    assert keyframe_frames(target) == [0, 45, 90, 135]
    assert in_decode_order(target)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_cabac_bframes_and_x264_interval_reach_the_stream(encoder, panning, tmp_path):
    settings = EncodeSettings(short_side=None, keyframe_seconds=None, crf=18, tune="none",
                              bframes=2)
    target = tmp_path / "out.mp4"
    encode_video(panning, target, settings, encoder)
    written = written_x264_options(target)
    assert {key: written[key] for key in ("cabac", "deblock", "bframes", "keyint", "crf")} == {
        "cabac": "1", "deblock": "1:0:0", "bframes": "2", "keyint": "250", "crf": "18.0"}
    assert written["subme"] == "2"  # preset veryfast
    assert keyframe_frames(target) == [0]  # 150 frames: within x264's 250
    assert not in_decode_order(target)  # B-frames are decoded after the frame they precede


def test_both_encoders_get_the_same_x264_options(tmp_path):
    # The program's arguments carry exactly x264_options, as "-name value" pairs, after
    # "-c:v libx264"; PyAV's encoder gets the same dictionary.
    cases = {
        EncodeSettings(): None,
        EncodeSettings(keyframe_seconds=None, tune="fastdecode", bframes=0, crf=28,
                       preset="medium"): {"preset": "medium", "crf": "28", "tune": "fastdecode",
                                          "bf": "0"},
        EncodeSettings(keyframe_seconds=2.0, fps=12.0, tune="none", bframes=None, crf=23,
                       preset="veryfast"): {"preset": "veryfast", "crf": "23", "g": "24"},
    }
    for settings, expected in cases.items():
        options = x264_options(settings, 25.0)
        if expected is not None:
            assert options == expected
        command = ffmpeg_command("ffmpeg", tmp_path / "a.mp4", tmp_path / "b.mp4", settings, 25.0)
        start = command.index("libx264") + 1
        end = command.index("-threads", start)
        assert command[start:end] == [word for key, value in options.items()
                                      for word in (f"-{key}", value)]


def test_written_options_of_a_stream_without_x264_text(tmp_path):
    path = tmp_path / "mpeg4.avi"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for packet in stream.encode(av.VideoFrame.from_ndarray(
                np.zeros((32, 32, 3), np.uint8), format="rgb24")):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    assert written_x264_options(path) == {}


BAD_SETTINGS = [
    (dict(short_side=1), "short_side must be at least 2 pixels, got 1"),
    (dict(fps=0.0), "fps must be positive, got 0.0"),
    (dict(keyframe_seconds=0.0), "keyframe_seconds must be positive, got 0.0"),
    (dict(keyframe_seconds=-2.0), "keyframe_seconds must be positive, got -2.0"),
    (dict(crf=52), "crf must be in [0, 51], got 52"),
    (dict(crf=-1), "crf must be in [0, 51], got -1"),
    (dict(preset="fastest"), "preset must be one of ultrafast, superfast, veryfast, faster, "
                             "fast, medium, slow, slower, veryslow, placebo; got 'fastest'"),
    (dict(tune="film"), "tune must be one of none, fastdecode; got 'film'"),
    (dict(bframes=17), "bframes must be in [0, 16], got 17"),
    (dict(bframes=-1), "bframes must be in [0, 16], got -1"),
]


@pytest.mark.parametrize("values, message", BAD_SETTINGS)
def test_bad_settings_are_refused_with_their_field(values, message):
    with pytest.raises(EncodeSettingError) as error:
        EncodeSettings(**values)
    assert str(error.value) == message
    assert isinstance(error.value, InputError) and isinstance(error.value, ValueError)


BAD_OPTIONS = [
    (["--crf", "60"], "error: --crf must be in [0, 51], got 60"),
    (["--tune", "film"], "error: --tune must be one of none, fastdecode; got 'film'"),
    (["--preset", "fastest"], "error: --preset must be one of ultrafast, superfast, veryfast, "
                              "faster, fast, medium, slow, slower, veryslow, placebo; "
                              "got 'fastest'"),
    (["--bframes", "17"], "error: --bframes must be in [0, 16], got 17"),
    (["--keyframe-seconds", "-1"], "error: --keyframe-seconds must be positive, got -1.0"),
    (["--short-side", "1"], "error: --short-side must be at least 2 pixels, got 1"),
    (["--fps", "-3"], "error: --fps must be positive, got -3.0"),
]


@pytest.mark.parametrize("arguments, line", BAD_OPTIONS)
def test_resize_videos_refuses_bad_values_in_one_line(arguments, line, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        load_script("resize_videos").main([str(tmp_path / "in"), str(tmp_path / "out"),
                                           *arguments])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == line + "\n"
    assert not (tmp_path / "out").exists()


def test_resize_videos_options_make_the_settings(tmp_path):
    script = load_script("resize_videos")
    folders = [str(tmp_path / "in"), str(tmp_path / "out")]
    assert encode_settings_from(script.parse_args(folders)) == EncodeSettings()
    given = script.parse_args([*folders, "--short-side", "0", "--upscale", "--fps", "12",
                               "--keyframe-seconds", "0", "--crf", "20", "--preset", "medium",
                               "--tune", "none", "--bframes", "0"])
    assert encode_settings_from(given) == EncodeSettings(
        short_side=None, upscale=True, fps=12.0, keyframe_seconds=None, crf=20, preset="medium",
        tune="none", bframes=0)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_default_encoding_decodes_every_frame_exactly(encoder, panning, tmp_path):
    # The defaults as resize_videos.py applies them (the size kept to stay small): every frame
    # VideoReader returns, alone or in random sets in any order, is bit-identical to a plain
    # sequential decode, with both backends, and decord is used (no fallback).
    target = tmp_path / "default.mp4"
    encode_video(panning, target, EncodeSettings(short_side=None), encoder)
    assert len(keyframe_frames(target)) >= 2  # more than one group of pictures
    index = probe(target)
    frames = sequential_frames(target)
    reference = [frames[int(pts)] for pts in index.pts]
    assert len(reference) == 150
    rng = random.Random(0)
    sets = [[i] for i in range(150)]
    sets += [[rng.randrange(150) for _ in range(rng.randint(2, 16))] for _ in range(8)]
    sets += [list(range(149, -1, -1)), list(range(0, 150, 4))]
    for backend in ("decord", "pyav"):
        for wanted in sets:
            reader = VideoReader(target, backend=backend)
            got = reader.get_frames(wanted).numpy()
            assert reader.backend == backend
            for k, i in enumerate(wanted):
                assert np.array_equal(got[k], reference[i]), f"frame {i} of {wanted}, {backend}"
