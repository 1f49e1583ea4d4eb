"""The torchcodec backend: the one-line error when it cannot load (package or FFmpeg libraries
missing, a release too old), the files it is not asked for, its rotation handling, and, where
FFmpeg's shared libraries load, decoding from bytes, resizing, and falling back to PyAV when its
frames disagree with the index."""

import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from video_files import (
    X264,
    decoded_index,
    encode_pattern,
    sequential_frames,
    write_video,
)

from videotl.data import torchcodec_decode, video_reader
from videotl.data.build import loading_policy
from videotl.data.torchcodec_decode import (
    TorchcodecMismatch,
    TorchcodecUnavailable,
    _quarter_turns,
    torchcodec_problem,
    torchcodec_unavailable,
)
from videotl.data.video_reader import VideoReader, probe
from videotl.errors import InputError

INSTALL = ("pip install 'videotl[torchcodec]' (torchcodec>=0.11, the release matching your "
           "torch) and FFmpeg's shared libraries (e.g. apt-get install ffmpeg, or conda install "
           "ffmpeg), or choose data.decoder=decord or pyav")
# What torchcodec 0.17 raises when no FFmpeg it supports is installed (abridged).
LOAD_FAILURE = """Could not load libtorchcodec. Likely causes:
          1. FFmpeg is not properly installed in your environment.
[start of libtorchcodec loading traceback]
FFmpeg version 8:
Traceback (most recent call last):
OSError: libavutil.so.60: cannot open shared object file: No such file or directory

The above exception was the direct cause of the following exception:

OSError: Could not load this library: /site-packages/torchcodec/libtorchcodec_core8.so

FFmpeg version 7:
OSError: libavutil.so.59: cannot open shared object file: No such file or directory
OSError: Could not load this library: /site-packages/torchcodec/libtorchcodec_core7.so
[end of libtorchcodec loading traceback]."""

needs_torchcodec = pytest.mark.skipif(
    torchcodec_unavailable() is not None,
    reason=f"torchcodec cannot decode here: {torchcodec_unavailable()}")


@pytest.fixture
def video(tmp_path):
    return write_video(tmp_path / "ramp.mp4", 30)


@pytest.fixture
def fake_torchcodec(monkeypatch):
    """Installs a stand-in ``torchcodec`` package (``version``, whether FFmpeg loaded, what
    making a decoder raises) and forgets the cached verdict before and after."""

    def install(version, ffmpeg_major_version=None, error=None):
        package = types.ModuleType("torchcodec")
        package.__path__ = []
        package.__version__ = version
        package.ffmpeg_major_version = ffmpeg_major_version
        decoders = types.ModuleType("torchcodec.decoders")

        def make_decoder(*args, **kwargs):
            raise error

        decoders.VideoDecoder = make_decoder
        package.decoders = decoders
        monkeypatch.setitem(sys.modules, "torchcodec", package)
        monkeypatch.setitem(sys.modules, "torchcodec.decoders", decoders)
        torchcodec_decode._unavailable.cache_clear()

    yield install
    torchcodec_decode._unavailable.cache_clear()


def test_missing_package_is_an_input_error_naming_what_to_install(video, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchcodec", None)
    torchcodec_decode._unavailable.cache_clear()
    try:
        with pytest.raises(TorchcodecUnavailable) as error:
            VideoReader(video, backend="torchcodec")
    finally:
        torchcodec_decode._unavailable.cache_clear()
    assert isinstance(error.value, InputError) and error.value.exit_status == 2
    assert str(error.value) == (
        "data.decoder=torchcodec: torchcodec is not installed (import of torchcodec halted; "
        f"None in sys.modules); {INSTALL}")


def test_missing_ffmpeg_libraries_name_the_loader_errors(video, fake_torchcodec):
    fake_torchcodec("0.17.0", error=RuntimeError(LOAD_FAILURE))
    assert torchcodec_unavailable() == ("torchcodec 0.17.0 cannot load FFmpeg's shared "
                                        "libraries (libavutil.so.60, libavutil.so.59 not found)")
    with pytest.raises(TorchcodecUnavailable) as error:
        VideoReader(video, backend="torchcodec")
    assert str(error.value) == ("data.decoder=torchcodec: torchcodec 0.17.0 cannot load FFmpeg's "
                                "shared libraries (libavutil.so.60, libavutil.so.59 not found); "
                                f"{INSTALL}")
    assert "\n" not in str(error.value)


def test_other_load_errors_are_named_as_they_are(fake_torchcodec):
    failure = ("Could not load libtorchcodec.\nOSError: /x/libtorchcodec_core8.so: undefined "
               "symbol: _ZN3c104cuda9SetDeviceEa\n")
    fake_torchcodec("0.17.0", error=RuntimeError(failure))
    assert torchcodec_unavailable() == (
        "torchcodec 0.17.0 cannot load FFmpeg's shared libraries (/x/libtorchcodec_core8.so: "
        "undefined symbol: _ZN3c104cuda9SetDeviceEa)")


def test_a_release_before_rotation_support_is_refused(fake_torchcodec):
    fake_torchcodec("0.10.0+cpu", ffmpeg_major_version=7)
    assert torchcodec_unavailable() == "torchcodec 0.10.0+cpu is older than 0.11"


def test_a_loaded_release_is_available(fake_torchcodec):
    fake_torchcodec("0.11.1", ffmpeg_major_version=6)
    assert torchcodec_unavailable() is None


def test_the_loader_refuses_the_backend_before_any_worker_starts(fake_torchcodec):
    from videotl.config import load_config

    fake_torchcodec("0.17.0", error=RuntimeError(LOAD_FAILURE))
    cfg = load_config(None, ["data.decoder=torchcodec"])
    assert cfg.data.decoder == "torchcodec"
    with pytest.raises(TorchcodecUnavailable, match=r"^data\.decoder=torchcodec: torchcodec "):
        loading_policy(cfg.data)
    assert loading_policy(load_config(None, ["data.decoder=pyav"]).data).backend == "pyav"


@pytest.mark.parametrize("error", [
    RuntimeError("Could not open input file"), ValueError("Invalid seek mode"),
    IndexError("Invalid frame index=40"), TorchcodecMismatch("torchcodec counts 29 frames")])
def test_errors_a_file_can_cause_fall_back_to_pyav(video, monkeypatch, caplog, error):
    # No FFmpeg libraries needed: torchcodec's decoding is replaced by the error it raised.
    monkeypatch.setattr(video_reader, "require_torchcodec", lambda: None)

    def failing(self, wanted):
        raise error

    monkeypatch.setattr(VideoReader, "_torchcodec_frames", failing)
    reader = VideoReader(video, backend="torchcodec")
    frames = reader.get_frames([3, 17])
    assert reader.backend == "pyav"
    assert [decoded_index(frame) for frame in frames.numpy()] == [3, 17]
    assert f"torchcodec failed on {video} ({error}); decoding it with PyAV" in caplog.text


@pytest.mark.parametrize("error", [
    TypeError("VideoDecoder.__init__() got an unexpected keyword argument 'seek_mode'"),
    AttributeError("'VideoDecoder' object has no attribute 'get_frames_at'")])
def test_an_api_error_of_torchcodec_propagates(video, monkeypatch, error):
    monkeypatch.setattr(video_reader, "require_torchcodec", lambda: None)

    def failing(self, wanted):
        raise error

    monkeypatch.setattr(VideoReader, "_torchcodec_frames", failing)
    reader = VideoReader(video, backend="torchcodec")
    with pytest.raises(type(error)) as raised:
        reader.get_frames([3, 17])
    assert raised.value is error and reader.backend == "torchcodec"


@pytest.mark.parametrize("degrees, turns", [
    (None, 0), (0.0, 0), (90.0, 1), (-90.0, 3), (180.0, 2), (-180.0, 2), (45.0, 1), (-45.0, 3),
    (135.0, 2), (44.9, 0), (float("nan"), 0)])
def test_quarter_turns_round_as_torchcodec_does(degrees, turns):
    assert _quarter_turns(SimpleNamespace(rotation=degrees)) == turns


def test_releases_without_rotation_report_no_turn():
    assert _quarter_turns(SimpleNamespace(width=64)) == 0


def test_files_torchcodec_is_not_asked_for():
    mp4 = "mov,mp4,m4a,3gp,3g2,mj2"
    assert torchcodec_problem(mp4, 0, True) is None
    assert torchcodec_problem("matroska,webm", 0, True) is None
    assert torchcodec_problem("avi", 0, False) is None
    assert torchcodec_problem("avi", 0, True) == (
        "B-frames in AVI (torchcodec's seeks by presentation time land off in AVI)")
    assert torchcodec_problem("mpegts", 0, False) == (
        "a mpegts container (no seek index; torchcodec's seeks land off)")
    assert torchcodec_problem(mp4, 3, False) == (
        "packets without presentation timestamps (torchcodec times frames by decode time)")


def test_h264_with_b_frames_in_avi_goes_to_pyav(tmp_path):
    """AVI stores no presentation times: H.264 packets there have increasing timestamps although
    the stream has B-frames, which the decoder's reordering depth reveals."""
    path = encode_pattern(tmp_path / "h264.avi", "libx264", 30, {**X264, "g": "3", "bf": "2"})
    assert probe(path).torchcodec_problem == (
        "B-frames in AVI (torchcodec's seeks by presentation time land off in AVI)")
    if torchcodec_unavailable() is None:
        frames, index = sequential_frames(path), probe(path)
        reader = VideoReader(path, backend="torchcodec")
        got = reader.get_frames(list(range(reader.num_frames))[::-1]).numpy()[::-1]
        assert reader.backend == "pyav"
        assert all(np.array_equal(got[i], frames[int(pts)]) for i, pts in enumerate(index.pts))


@needs_torchcodec
def test_decodes_bytes_as_it_decodes_the_file(video):
    wanted = [29, 0, 13, 13, 5]
    from_file = VideoReader(video, backend="torchcodec").get_frames(wanted)
    reader = VideoReader("memory.mp4", backend="torchcodec", data=video.read_bytes())
    from_bytes = reader.get_frames(wanted)
    assert reader.backend == "torchcodec" and torch.equal(from_file, from_bytes)
    assert [decoded_index(frame) for frame in from_bytes.numpy()] == wanted


@needs_torchcodec
def test_resizes_inside_the_decoder(video):
    reader = VideoReader(video, backend="torchcodec", short_side=24)
    frames = reader.get_frames([5, 20])
    assert reader.backend == "torchcodec" and frames.shape == (2, 24, 32, 3)
    assert [decoded_index(frame) for frame in frames.numpy()] == [5, 20]


@needs_torchcodec
@pytest.mark.parametrize("kind", ["rotated", "mirrored"])
def test_turned_videos_resize_to_the_upright_size_like_pyav(tmp_path, kind):
    options = {**X264, "g": "10", "bf": "2"}
    path = encode_pattern(tmp_path / f"{kind}.mp4", "libx264", 20, options,
                          rotation=90 if kind == "rotated" else None, hflip=kind == "mirrored")
    reader = VideoReader(path, backend="torchcodec", short_side=24)
    frames = reader.get_frames([0, 7])
    expected = VideoReader(path, backend="pyav", short_side=24).get_frames([0, 7])
    assert reader.backend == "torchcodec" and frames.shape == expected.shape
    assert reader.size == ((24, 32) if kind == "rotated" else (32, 24))
    # Scaled by another filter than PyAV's, so not bit-equal; turned the same way: the orange
    # block (in a corner of frame 0) lies where PyAV puts it, to a pixel.
    for got, want in zip(frames, expected):
        assert np.abs(block_centre(got) - block_centre(want)).max() <= 1.0


def block_centre(frame):
    """``(row, column)`` of the orange block of ``pattern_frame`` in an RGB frame."""
    image = frame.numpy().astype(int)
    rows, columns = np.nonzero((image[..., 0] - image[..., 2] > 100) & (image[..., 1] < 160))
    assert len(rows), "no orange block"
    return np.array([rows.mean(), columns.mean()])


@needs_torchcodec
def test_frames_disagreeing_with_the_index_fall_back_to_pyav(video, monkeypatch):
    from torchcodec.decoders import VideoDecoder

    original = VideoDecoder.get_frames_at

    def shifted(self, indices):  # the frame after each wanted one, as a lost frame would give
        return original(self, [min(i + 1, 29) for i in indices])

    monkeypatch.setattr(VideoDecoder, "get_frames_at", shifted)
    reader = VideoReader(video, backend="torchcodec")
    frames = reader.get_frames([3, 17])
    assert reader.backend == "pyav"
    assert [decoded_index(frame) for frame in frames.numpy()] == [3, 17]
