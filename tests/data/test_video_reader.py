"""VideoReader on videos made in the test: frame accuracy, fps resampling, resizing, and bad files
(missing, zero-byte, non-video, audio-only, truncated, corrupt, lying metadata)."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from video_files import (
    corrupted_copy,
    decoded_index,
    frame_value,
    reader_backends,
    truncated_copy,
    write_audio_only,
    write_noise_video,
    write_video,
)

from videotl.data.sampling import resample_indices
from videotl.data.video_reader import VideoDecodeError, VideoReader, decode_size, probe

BACKENDS = reader_backends()


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """60 frames at 30 fps, keyframe every 12 frames, B-frames."""
    return write_video(tmp_path_factory.mktemp("videos") / "ramp.mp4", 60)


@pytest.fixture(scope="module")
def lying(tmp_path_factory):
    """MP4 whose header (moov first) claims 120 frames, cut to 30 % of its bytes."""
    folder = tmp_path_factory.mktemp("lying")
    full = write_noise_video(folder / "full.mp4", 120, faststart=True)
    return truncated_copy(full, folder / "lying.mp4", 0.3)


def full_decode_count(path):
    """Frames PyAV decodes when reading the whole file, skipping packets that fail."""
    import av

    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        try:
            for packet in container.demux(stream):
                try:
                    count += len(stream.decode(packet))
                except av.error.InvalidDataError:
                    pass
        except av.error.FFmpegError:
            pass
    return count


@pytest.mark.parametrize("backend", BACKENDS)
def test_metadata(video, backend):
    reader = VideoReader(video, backend=backend)
    assert reader.num_frames == 60 and reader.header_frames == 60
    assert reader.fps == pytest.approx(30.0)
    assert reader.duration == pytest.approx(2.0)
    assert (reader.width, reader.height) == (64, 48) and reader.size == (64, 48)


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_access_is_frame_accurate(video, backend):
    indices = [59, 0, 13, 12, 11, 30, 30, 47, 1, 24]  # across keyframes, backwards, repeats
    frames = VideoReader(video, backend=backend).get_frames(indices)
    assert frames.shape == (len(indices), 48, 64, 3) and frames.dtype == torch.uint8
    assert [decoded_index(f) for f in frames.numpy()] == indices


@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_decode_identical_pixels(video, backend):
    indices = list(range(0, 60, 7))
    frames = VideoReader(video, backend=backend).get_frames(indices)
    pyav_frames = VideoReader(video, backend="pyav").get_frames(indices)
    assert torch.equal(frames, pyav_frames)


@pytest.mark.parametrize("backend", BACKENDS)
def test_resampling_to_12_fps(tmp_path, backend):
    path = write_video(tmp_path / "ntsc.mp4", 60, fps=30000 / 1001)
    reader = VideoReader(path, backend=backend)
    assert reader.fps == pytest.approx(29.97, abs=1e-3)
    indices = reader.resampled_indices(12.0, num_frames=20)
    assert indices == resample_indices(30000 / 1001, 12.0, 20)
    frames = reader.get_frames(indices)
    assert [decoded_index(f) for f in frames.numpy()] == indices
    whole = reader.resampled_indices(12.0)  # the rest of the video
    assert whole[-1] <= 59 and len(whole) == 24


@pytest.mark.parametrize("backend", BACKENDS)
def test_resize_at_decode(video, backend):
    reader = VideoReader(video, backend=backend, short_side=24)
    assert reader.size == (32, 24)
    frames = reader.get_frames([5, 40])
    assert frames.shape == (2, 24, 32, 3)
    means = frames.float().mean(dim=(1, 2, 3))  # flat frames stay flat; scaling rounds by <= 2
    assert torch.allclose(means, torch.tensor([frame_value(5), frame_value(40)]).float(), atol=2)


def test_decode_size():
    assert decode_size(640, 480, 256) == (341, 256)
    assert decode_size(480, 640, 256) == (256, 341)
    assert decode_size(640, 480, None) == (640, 480)


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_of_range_indices_raise_index_error(video, backend):
    with pytest.raises(IndexError, match=r"outside \[0, 60\)"):
        VideoReader(video, backend=backend).get_frames([0, 60])


def test_missing_file(tmp_path):
    with pytest.raises(VideoDecodeError, match="not found") as error:
        VideoReader(tmp_path / "absent.mp4")
    assert error.value.path.endswith("absent.mp4")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.touch()
    with pytest.raises(VideoDecodeError, match="empty"):
        VideoReader(path)


def test_non_video_file(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoDecodeError, match="not a readable video"):
        VideoReader(path)


def test_audio_only_file(tmp_path):
    with pytest.raises(VideoDecodeError, match="no video stream"):
        VideoReader(write_audio_only(tmp_path / "audio.mp4"))


def test_lying_metadata_reports_frames_that_decode(lying):
    reader = VideoReader(lying)
    assert reader.header_frames == 120
    assert reader.num_frames == full_decode_count(lying)
    assert 0 < reader.num_frames < 120
    frames = reader.get_frames([0, reader.num_frames - 1])
    assert frames.shape == (2, 48, 64, 3)
    assert reader.backend == "pyav"  # decord cannot read this file: automatic fallback
    with pytest.raises(IndexError):
        reader.get_frames([reader.num_frames])


def test_lying_metadata_never_hangs_decord(lying):
    """decord is known to spin forever in native code past the real end of such files, where no
    Python timeout can stop it: run the reads in a child process with a time limit."""
    script = textwrap.dedent(f"""
        from videotl.data.video_reader import VideoReader
        reader = VideoReader({str(lying)!r}, backend="decord")
        last = reader.num_frames - 1
        frames = reader.get_frames(list(range(max(0, last - 5), last + 1)))
        print(reader.num_frames, tuple(frames.shape))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == str(full_decode_count(lying))


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_file_tail_repeats_last_decoded_frame(tmp_path, backend):
    """The last packet is cut: indexed frames that fail at the end repeat the last good one."""
    full = write_video(tmp_path / "full.mp4", 60, faststart=True)
    cut = truncated_copy(full, tmp_path / "cut.mp4", 0.93)
    reader = VideoReader(cut, backend=backend)
    frames = reader.get_frames(list(range(reader.num_frames)))
    shown = [decoded_index(f) for f in frames.numpy()]
    real = full_decode_count(cut)
    assert shown[:real] == list(range(real))
    assert all(index == real - 1 for index in shown[real:])
    assert reader.num_frames == real


@pytest.mark.parametrize("start", [0.1, 0.35, 0.6, 0.85])
@pytest.mark.parametrize("backend", BACKENDS)
def test_corrupt_file_decodes_or_raises_decode_error(video, tmp_path, backend, start):
    """Garbage in the middle: every frame comes back with the right shape, or VideoDecodeError
    names the file; never another exception."""
    bad = corrupted_copy(video, tmp_path / "bad.mp4", start, 64, seed=int(start * 100))
    try:
        reader = VideoReader(bad, backend=backend)
        indexed = reader.num_frames
        frames = reader.get_frames(list(range(indexed)))
    except VideoDecodeError as error:
        assert str(bad) in str(error)
        return
    assert frames.shape == (indexed, 48, 64, 3)


def test_corrupt_frames_in_the_middle_are_reported(video, tmp_path):
    """When frames inside the stream fail, PyAV reports them instead of inventing frames."""
    bad = corrupted_copy(video, tmp_path / "bad.mp4", 0.5, 64, seed=50)
    reader = VideoReader(bad, backend="pyav")
    try:
        frames = reader.get_frames(list(range(reader.num_frames)))
    except VideoDecodeError as error:
        assert "failed to decode" in error.reason
        return
    shown = [decoded_index(f) for f in frames.numpy()]
    assert shown == list(range(len(shown)))  # whatever decodes is the right frame


def test_short_video_single_frame(tmp_path):
    path = write_video(tmp_path / "one.mp4", 1)
    reader = VideoReader(path)
    assert reader.num_frames == 1
    assert reader.get_frames([0, 0, 0]).shape == (3, 48, 64, 3)


def test_probe_reports_keyframes_and_is_cached(video):
    index = probe(video)
    assert list(index.keyframe_pts) == [int(index.pts[i]) for i in range(0, 60, 12)]
    assert probe(video) is index


def test_unknown_backend(video):
    with pytest.raises(ValueError, match="unknown video backend"):
        VideoReader(video, backend="opencv")


def test_pyav_skips_unreferenced_frames_but_decodes_wanted_ones(video):
    """Every second frame is an unreferenced B-frame here; asking for those frames must still
    return them (they are never skipped when wanted)."""
    import av

    from videotl.data.pyav_decode import _Decoder

    decoder = _Decoder(probe(video), [], (64, 48), drop=True)
    with av.open(str(video)) as container:
        skippable = [p.pts for p in container.demux(video=0) if p.size and decoder._droppable(p)]
    assert len(skippable) >= 10  # the file has unreferenced frames to skip
    wanted = list(range(1, 60, 2))
    frames = VideoReader(video, backend="pyav").get_frames(wanted)
    assert [decoded_index(f) for f in frames.numpy()] == wanted
    decord_frame = VideoReader(video, backend="decord").get_frames([1]).numpy()[0]
    assert np.array_equal(frames.numpy()[0], decord_frame)


@pytest.mark.parametrize("num_threads", [1, 0])
def test_pyav_converts_with_the_decoder_threads_and_one_context(video, monkeypatch, num_threads):
    """The conversion to RGB runs on ``num_threads`` threads (DataLoader workers give the
    parallelism; 0 lets FFmpeg choose), through one swscale context for all frames."""
    import av

    from videotl.data import pyav_decode

    made, calls = [], []
    original = av.video.reformatter.VideoReformatter

    class Recorder:
        def __init__(self):
            made.append(self)
            self.inner = original()

        def reformat(self, frame, width, height, format, **options):
            calls.append(options)
            return self.inner.reformat(frame, width, height, format, **options)

    monkeypatch.setattr(av.video.reformatter, "VideoReformatter", Recorder)
    reader = VideoReader(video, backend="pyav", short_side=24, num_threads=num_threads)
    reader.get_frames([0, 7, 30])
    assert len(made) == 1 and len(calls) == 3
    expected = {"threads": num_threads} if pyav_decode._threaded_reformat() else {}
    assert all(options == expected for options in calls)


def test_decord_index_disagreeing_with_timestamps_falls_back_to_pyav(video, monkeypatch):
    import decord

    original = decord.VideoReader.get_frame_timestamp
    monkeypatch.setattr(decord.VideoReader, "get_frame_timestamp",
                        lambda self, idx: original(self, idx) + 1 / 30)  # shifted by a frame
    reader = VideoReader(video, backend="decord")
    frames = reader.get_frames([3, 40])
    assert reader.backend == "pyav"
    assert [decoded_index(f) for f in frames.numpy()] == [3, 40]
