"""Re-encoding (data_prep/resize_videos.py): sizes, frame rate, keyframes, audio dropped, both
encoders alike, hostile file names, corrupt and truncated sources, resuming, and a run killed
mid-write."""

import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from release_helpers import HOSTILE_NAMES, REPO, load_script, with_rotation_90
from video_files import decoded_index, truncated_copy, write_noise_video, write_video

from videotl.data import VideoReader
from videotl.prep import encode
from videotl.prep.encode import EncodeSettings, encode_video, ffmpeg_program
from videotl.prep.resize import resize_videos
from videotl.data.video_reader import probe

# The ffmpeg program is optional (PyAV is the default encoder and a Python dependency); machines
# without it, CI among them, test the PyAV path only.
ENCODERS = ["pyav", pytest.param("ffmpeg", marks=pytest.mark.skipif(
    ffmpeg_program() is None, reason="the ffmpeg program (with libx264) is not installed"))]


def write_with_audio(path: Path, num_frames: int = 30, size=(64, 48)) -> Path:
    """Grey-coded video frames (see video_files) plus an AAC audio track."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=30, options={"g": "250"})
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        audio = container.add_stream("aac", rate=16000)
        for i in range(num_frames):
            image = np.full((size[1], size[0], 3), 16 + 4 * i, np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
            sound = av.AudioFrame.from_ndarray(np.zeros((1, 533), np.float32), format="fltp",
                                               layout="mono")
            sound.sample_rate, sound.pts = 16000, i * 533
            for packet in audio.encode(sound):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode():
                container.mux(packet)
    return path


def write_corner_video(path: Path, num_frames: int = 8) -> Path:
    """64x48 frames, black with a white block in the top-left corner."""
    image = np.zeros((48, 64, 3), np.uint8)
    image[:12, :16] = 255
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(num_frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize("encoder", ENCODERS)
def test_size_frame_rate_keyframes_and_no_audio(encoder, tmp_path):
    source = write_with_audio(tmp_path / "source.mp4", num_frames=45)
    target = tmp_path / "out" / "video.mp4"
    settings = EncodeSettings(short_side=24, fps=12.0, keyframe_seconds=1.0)
    result = encode_video(source, target, settings, encoder)
    with av.open(str(target)) as container:
        assert len(container.streams.audio) == 0 and len(container.streams.video) == 1
    reader = VideoReader(target)
    assert (reader.fps, reader.size, reader.num_frames, result.frames) == (12.0, (32, 24), 18, 18)
    index = probe(target)
    spacing = np.diff(np.searchsorted(index.pts, index.keyframe_pts))
    assert index.keyframe_pts[0] == index.pts[0] and spacing.max() <= 12
    # Frame k of the 12 fps output is the source frame on screen at k / 12 s (30 fps source).
    shown = [decoded_index(frame.numpy()) for frame in reader.get_frames(range(18))]
    assert all(abs(s - k * 30 / 12) <= 1.5 for k, s in enumerate(shown)), shown


@pytest.mark.parametrize("encoder", ENCODERS)
def test_short_side_orientation_and_no_upscaling(encoder, tmp_path):
    cases = {(64, 48): (32, 24), (48, 64): (24, 32), (20, 14): (20, 14)}
    for (width, height), expected in cases.items():
        source = write_video(tmp_path / f"s{width}x{height}.mp4", 5, size=(width, height))
        target = tmp_path / f"t{width}x{height}.mp4"
        encode_video(source, target, EncodeSettings(short_side=24), encoder)
        assert VideoReader(target).size == expected
        assert VideoReader(target).num_frames == 5
    encode_video(tmp_path / "s20x14.mp4", tmp_path / "up.mp4",
                 EncodeSettings(short_side=24, upscale=True), encoder)
    assert VideoReader(tmp_path / "up.mp4").size == (34, 24)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_rotation_metadata_is_applied(encoder, tmp_path):
    source = with_rotation_90(write_corner_video(tmp_path / "plain.mp4"), tmp_path / "rot.mp4")
    target = tmp_path / "upright.mp4"
    encode_video(source, target, EncodeSettings(short_side=None), encoder)
    frame = VideoReader(target).get_frames([0])[0].numpy().mean(axis=2)
    assert frame.shape == (64, 48)  # portrait: turned by the display matrix
    bright = np.argwhere(frame > 128)
    # Shown turned 90 degrees counter-clockwise: the top-left block ends bottom-left.
    assert bright[:, 0].min() >= 64 - 16 - 2 and bright[:, 1].max() <= 12 + 2


def write_h264_segment(path: Path, size: tuple[int, int], frames: range) -> bytes:
    """Raw H.264 (Annex B) of grey-coded frames ``frames`` at ``size``."""
    with av.open(str(path), "w", format="h264") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in frames:
            image = np.full((size[1], size[0], 3), 16 + 4 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path.read_bytes()


@pytest.mark.parametrize("encoder", ENCODERS)
def test_source_changing_size_mid_stream(encoder, tmp_path):
    source = tmp_path / "changes.h264"
    source.write_bytes(write_h264_segment(tmp_path / "a.h264", (64, 48), range(0, 12))
                       + write_h264_segment(tmp_path / "b.h264", (96, 72), range(12, 24)))
    result = encode_video(source, tmp_path / "out.mp4", EncodeSettings(short_side=24), encoder)
    reader = VideoReader(tmp_path / "out.mp4")
    assert (result.frames, reader.size) == (24, (32, 24))  # the first part's output size
    frames = reader.get_frames(range(24))
    assert [decoded_index(frame.numpy()) for frame in frames] == list(range(24))


# Compares the two encoders, so it needs the optional ffmpeg program; without it there is
# nothing to compare.
@pytest.mark.skipif(ffmpeg_program() is None, reason="the ffmpeg program is not installed")
def test_both_encoders_make_the_same_video(tmp_path):
    source = write_noise_video(tmp_path / "noise.mp4", 40, size=(96, 72))
    settings = EncodeSettings(short_side=48, fps=10.0)
    outputs = {}
    for encoder in ("pyav", "ffmpeg"):
        encode_video(source, tmp_path / f"{encoder}.mp4", settings, encoder)
        reader = VideoReader(tmp_path / f"{encoder}.mp4")
        outputs[encoder] = (reader.size, probe(reader.path).pts.tolist(),
                            reader.get_frames(range(reader.num_frames)).float())
    (size_a, pts_a, frames_a), (size_b, pts_b, frames_b) = outputs.values()
    assert size_a == size_b and pts_a == pts_b
    assert (frames_a - frames_b).abs().mean() < 1.0  # same filters and x264 settings


def with_pts_as_dts(source: Path, target: Path) -> Path:
    """A copy whose packets claim ``pts == dts`` (no reordering) although the stream has
    B-frames, as some real files do (OpenCV's ``box.mp4`` sample): decoded in display order, the
    frames carry their packets' timestamps out of order."""
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        packets = [packet for packet in inp.demux(video=0) if packet.size]
        first = min(packet.dts for packet in packets)
        for packet in packets:
            packet.dts = packet.pts = packet.dts - first
            packet.stream = stream
            out.mux(packet)
    return target


@pytest.mark.parametrize("encoder", ENCODERS)
def test_frames_reordered_behind_timestamps_that_say_otherwise_are_all_kept(encoder, tmp_path):
    source = with_pts_as_dts(write_video(tmp_path / "b.mp4", 40, gop=12), tmp_path / "lies.mp4")
    with av.open(str(source)) as container:
        stamps = [frame.pts for frame in container.decode(video=0)]
    assert stamps != sorted(stamps)  # what the encoders get from the decoder
    result = encode_video(source, tmp_path / "out.mp4", EncodeSettings(short_side=None), encoder)
    frames = VideoReader(tmp_path / "out.mp4").get_frames(range(result.frames))
    shown = [decoded_index(frame.numpy()) for frame in frames]
    # Stamped by their decode times, as the ffmpeg program does; PyAV also keeps the frames
    # flushed at the end, of which the program drops the last.
    expected = 40 if encoder == "pyav" else 39
    assert shown == list(range(expected))


@pytest.mark.parametrize("encoder", ENCODERS)
def test_cut_off_source_is_encoded_with_a_warning(encoder, tmp_path):
    # A download killed mid-write whose index comes first (faststart): the frames that arrived
    # decode, and the summary says how much is missing.
    whole = write_noise_video(tmp_path / "whole.mp4", 30, fps=30, faststart=True)
    cut = truncated_copy(whole, tmp_path / "cut.mp4", 0.5)
    result = encode_video(cut, tmp_path / "out.mp4", EncodeSettings(short_side=24), encoder)
    assert 0 < result.frames < 30 and VideoReader(tmp_path / "out.mp4").num_frames == result.frames
    assert "s decoded of the 1.0 s the source states" in result.warning
    complete = encode_video(whole, tmp_path / "all.mp4", EncodeSettings(short_side=24), encoder)
    assert (complete.frames, complete.warning) == (30, None)


def hostile_input(tmp_path: Path) -> tuple[Path, list[str], dict[str, str]]:
    """Good videos with hostile names, and bad files: ``(folder, good, {bad: reason part})``."""
    source = tmp_path / "in"
    (source / "sub dir ;$(ls)").mkdir(parents=True)
    good = [f"{name}.mp4" for name in HOSTILE_NAMES] + ["sub dir ;$(ls)/clip.mkv"]
    for n, name in enumerate(good):
        write_video(source / name, 6 + n, size=(48, 32), container_format="matroska"
                    if name.endswith(".mkv") else None)
    (source / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    truncated_copy(write_noise_video(tmp_path / "whole.mp4", 20), source / "cut short.mp4", 0.5)
    (source / "empty.mp4").write_bytes(b"")
    bad = {"corrupt.mp4": "not a readable video", "cut short.mp4": "not a readable video",
           "empty.mp4": "not a readable video"}
    return source, good, bad


@pytest.mark.parametrize("encoder", ENCODERS)
def test_hostile_names_and_bad_files(encoder, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    source, good, bad = hostile_input(tmp_path)
    output = tmp_path / "out"
    code = load_script("resize_videos").main([
        str(source), str(output), "--short-side", "16", "--jobs", "2", "--encoder", encoder,
        "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 1
    for n, name in enumerate(good):
        reader = VideoReader(output / Path(name).with_suffix(".mp4"))
        assert (reader.size, reader.num_frames) == ((24, 16), 6 + n)
    failures = dict(line.split("\t") for line in
                    (output / "resize_failures.txt").read_text().splitlines())
    assert sorted(failures) == sorted(bad)
    assert all(bad[name] in reason for name, reason in failures.items())
    assert f"{len(good)} encoded" in printed and "3 failed" in printed
    assert "corrupt.mp4: not a readable video" in printed
    assert not list(tmp_path.rglob("PWNED")) and not list(output.rglob(".*"))
    produced = sorted(p.relative_to(output).as_posix() for p in output.rglob("*.mp4"))
    assert produced == sorted(Path(name).with_suffix(".mp4").as_posix() for name in good)


def test_resume_skips_finished_videos_and_replaces_partial_ones(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    for name in ("a", "b", "c"):
        write_video(source / f"{name}.mp4", 8, size=(48, 32))
    output = tmp_path / "out"
    settings = EncodeSettings(short_side=16)
    first = resize_videos(source, output, settings, jobs=2, progress=False)
    assert (first.encoded, first.skipped, first.failures) == (3, 0, [])
    finished = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in output.glob("*.mp4")}
    # As if a run had been killed while writing c.mp4, and a new video had arrived.
    (output / "c.mp4").unlink()
    (output / ".c.mp4.part").write_bytes(b"half a video")
    write_video(source / "d.mp4", 8, size=(48, 32))
    second = resize_videos(source, output, settings, jobs=2, progress=False)
    assert (second.total, second.encoded, second.skipped, second.failures) == (4, 2, 2, [])
    assert {name: (p.stat().st_ino, p.stat().st_mtime_ns) for name, p in
            ((n, output / n) for n in ("a.mp4", "b.mp4"))} == {
                name: finished[name] for name in ("a.mp4", "b.mp4")}
    assert sorted(p.name for p in output.iterdir()) == ["a.mp4", "b.mp4", "c.mp4", "d.mp4"]
    assert VideoReader(output / "c.mp4").num_frames == 8
    third = resize_videos(source, output, settings, jobs=2, progress=False)
    assert (third.encoded, third.skipped) == (0, 4)


def test_run_killed_mid_write_leaves_no_partial_output(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    frames = {"a.mp4": 10, "b.mp4": 900, "c.mp4": 10}
    write_video(source / "a.mp4", frames["a.mp4"], size=(48, 32))
    write_noise_video(source / "b.mp4", frames["b.mp4"], size=(192, 144))
    write_video(source / "c.mp4", frames["c.mp4"], size=(48, 32))
    output = tmp_path / "out"
    command = [sys.executable, str(REPO / "data_prep" / "resize_videos.py"), str(source),
               str(output), "--short-side", "64", "--jobs", "1", "--no-progress"]
    run = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 60
    while not (output / "a.mp4").exists() and run.poll() is None:
        assert time.monotonic() < deadline, "the run produced nothing"
        time.sleep(0.02)
    time.sleep(0.1)
    os.killpg(run.pid, signal.SIGKILL)  # mid-way through b.mp4; its worker dies with it
    run.wait()
    for video in output.glob("*.mp4"):  # whatever exists under a final name is complete
        assert VideoReader(video).num_frames == frames[video.name]
    before = (output / "a.mp4").stat().st_mtime_ns
    summary = resize_videos(source, output, EncodeSettings(short_side=64), jobs=1,
                            progress=False)
    assert summary.failures == [] and summary.skipped >= 1
    assert (output / "a.mp4").stat().st_mtime_ns == before
    assert {p.name: VideoReader(p).num_frames for p in output.glob("*.mp4")} == frames
    assert not list(output.glob(".*"))


def test_bad_arguments(tmp_path, capsys, monkeypatch):
    script = load_script("resize_videos")
    (tmp_path / "in").mkdir()
    monkeypatch.setattr(encode, "ffmpeg_program", lambda: None)  # as without the program
    with pytest.raises(SystemExit):
        script.main([str(tmp_path / "in"), str(tmp_path / "out"), "--encoder", "ffmpeg"])
    assert "the ffmpeg program (with libx264) is not on PATH" in capsys.readouterr().err
    for arguments, message in ((["--fps", "0"], "fps must be positive"),
                               (["--jobs", "0"], "--jobs must be at least 1")):
        with pytest.raises(SystemExit) as exit_info:
            script.main([str(tmp_path / "in"), str(tmp_path / "out"), *arguments])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main([str(tmp_path / "in"), str(tmp_path / "in")])
    assert "must differ from the input folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main([str(tmp_path / "nowhere"), str(tmp_path / "out")])
    assert "video folder not found" in capsys.readouterr().err


CORRUPT = os.fsdecode(b"corrupt\n\xff.mp4")  # a name that neither prints nor fits on a line


def awkward_tree(root: Path, monkeypatch) -> tuple[list[str], dict[str, str]]:
    """A folder with hidden files and folders, non-videos, links, odd names, a FIFO and a folder
    that cannot be listed: ``(videos, {skipped entry: reason part})``."""
    (root / ".dir").mkdir(parents=True)
    videos = ["a.mp4", ".hidden.mp4", ".dir/clip.mp4", os.fsdecode(b"bad\xff name.mp4"),
              "two\nlines.mp4"]
    for n, name in enumerate(videos):
        write_video(root / name, 6 + n, size=(48, 32))
    (root / "link.mp4").symlink_to("a.mp4")
    (root / CORRUPT).write_bytes(b"\x00" * 100)
    (root / "notes.txt").write_text("x")
    (root / "README").write_text("x")
    (root / ".a.mp4.part").write_bytes(b"half")
    (root / "._a.mp4").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 80)  # macOS resource fork
    (root / "gone.mp4").symlink_to("nowhere.mp4")
    (root / "loop").symlink_to(".")
    os.mkfifo(root / "pipe.mp4")
    (root / "locked").mkdir()
    (root / "locked" / "x.mp4").write_bytes(b"x")
    scandir = os.scandir

    def refusing(path="."):  # as a folder without read permission (tests may run as root)
        if os.fspath(path) == str(root / "locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    skipped = {"notes.txt": "not a video file (extension '.txt')",
               "README": "not a video file (no extension)",
               ".a.mp4.part": "not a video file (extension '.part')",
               "._a.mp4": "a macOS resource-fork file", "gone.mp4": "a broken link",
               "loop/": "a link to a folder searched already",
               "pipe.mp4": "not a regular file", "locked/": "cannot be listed (Permission denied)"}
    return videos + ["link.mp4", CORRUPT], skipped


def test_every_entry_is_processed_or_reported(tmp_path, monkeypatch, capsys):
    source, output = tmp_path / "in", tmp_path / "out"
    videos, skipped = awkward_tree(source, monkeypatch)
    code = load_script("resize_videos").main([str(source), str(output), "--short-side", "16",
                                              "--jobs", "2", "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 1  # the corrupt file
    encoded = sorted(p.relative_to(output).as_posix() for p in output.rglob("*.mp4"))
    assert encoded == sorted(name for name in videos if name != CORRUPT)
    assert VideoReader(output / ".dir/clip.mp4").num_frames == 8
    assert VideoReader(output / "two\nlines.mp4").num_frames == 10
    assert "7 videos: 6 encoded" in printed and "1 failed" in printed
    assert "8 other entries skipped, listed below: 15 found in all" in printed
    assert "  corrupt\\n\\xff.mp4: not a readable video" in printed
    assert (output / "resize_failures.txt").read_text().startswith(
        '"corrupt\\n\\udcff.mp4"\tnot a readable video')
    assert "  README: not a video file (no extension)" in printed
    report = dict(line.split("\t") for line in
                  (output / "resize_skipped.txt").read_text().splitlines())
    assert sorted(report) == sorted(skipped)
    assert all(skipped[name] in reason for name, reason in report.items())

    # Again: the arithmetic holds with finished outputs, and with the output inside the input.
    again = resize_videos(source, output, EncodeSettings(short_side=16), jobs=2, progress=False)
    assert (again.found, again.total, again.skipped, again.encoded) == (15, 7, 6, 0)
    assert [name for name, _ in again.failures] == [CORRUPT]
    inner = source / "inner"
    resize_videos(source, inner, EncodeSettings(short_side=16), jobs=2, progress=False)
    inside = resize_videos(source, inner, EncodeSettings(short_side=16), jobs=2, progress=False)
    assert ("inner/", "the output folder, not searched") in inside.ignored
    assert (inside.found, inside.total, inside.skipped) == (16, 7, 6)
    for summary in (again, inside):
        assert summary.found == summary.total + len(summary.ignored)
        assert summary.total == summary.skipped + summary.encoded + len(summary.failures)
