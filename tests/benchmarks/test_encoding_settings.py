"""benchmarks/encoding_settings.py: cutting sources at a keyframe, the PSNR formula, and a whole
run on two tiny videos."""

from __future__ import annotations

import importlib.util
import math
import sys

import numpy as np
import pytest
from video_files import write_noise_video, write_video

from conftest import REPO
from videotl.data.video_reader import VideoReader


@pytest.fixture(scope="module")
def bench():
    """The script as a module (the benchmarks are scripts, not part of the package)."""
    spec = importlib.util.spec_from_file_location(
        "encoding_settings_bench", REPO / "benchmarks" / "encoding_settings.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["encoding_settings_bench"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_first_seconds_copies_whole_groups_of_pictures(bench, tmp_path):
    # Keyframes every 12 frames at 30 fps: the first one at or after 0.5 s is frame 24.
    source = write_video(tmp_path / "source.mp4", 60, gop=12)
    cut = bench.first_seconds(source, tmp_path / "cut.mkv", 0.5)
    reader = VideoReader(cut, backend="pyav")
    assert reader.num_frames == 24
    assert np.array_equal(reader.get_frames(range(24)).numpy(),
                          VideoReader(source, backend="pyav").get_frames(range(24)).numpy())


def test_psnr_is_over_every_pixel_of_every_frame(bench):
    zeros = [np.zeros((4, 6), np.uint8), np.zeros((4, 6), np.uint8)]
    assert bench.psnr(zeros, zeros) == math.inf
    # One frame off by 2 everywhere, the other exact: MSE = (4 * 24 + 0) / 48 = 2.
    off = [np.full((4, 6), 2, np.uint8), np.zeros((4, 6), np.uint8)]
    assert bench.psnr(off, zeros) == 10 * math.log10(255 ** 2 / 2)


def test_a_whole_run_reports_every_setting_against_the_baseline(bench, tmp_path, monkeypatch,
                                                                capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    write_noise_video(videos / "a.mp4", 40, size=(64, 48))
    write_video(videos / "b.mp4", 30, size=(48, 64))  # flat frames: encoded losslessly
    monkeypatch.setattr(sys, "argv", [
        "encoding_settings.py", str(videos), "--rounds", "2", "--settings", "2s fastdecode",
        "--out", str(tmp_path / "out")])
    bench.main()
    printed = capsys.readouterr().out
    assert "a: 40 frames" in printed and "b: 30 frames" in printed
    summary = printed.split("geometric mean over 2 videos")[1].splitlines()
    rows = [line.split("|")[1:-1] for line in summary if line.startswith("| ")][1:]
    assert [row[0].strip() for row in rows] == ["1s (old default)", "2s fastdecode"]
    assert [cell.strip() for cell in rows[0][1:]] == ["1.00", "1.00x", "1.00", "+0.00"]
    assert "inf" not in printed.split("b: 30 frames")[0]  # a: noise, a finite PSNR
    assert printed.rstrip().endswith("the toolkit's default (EncodeSettings()): none of these")
    assert sorted(p.name for p in (tmp_path / "out" / "2s_fastdecode").iterdir()) == [
        "a.mp4", "b.mp4"]
