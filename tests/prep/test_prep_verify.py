"""Verification (data_prep/verify_videos.py): decodes the listed videos with the training reader,
with a per-video time limit, and writes an exclusion list the loaders accept."""

import shutil
import time

import pytest
from data_helpers import small_data_config
from release_helpers import load_script
from video_files import truncated_copy

from videotl.data import build_dataset
from videotl.data.lists import read_exclusions
from videotl.prep import verify
from videotl.prep.progress import listed_files
from videotl.prep.verify import VideoCheck, check_video

OVERRIDES = ["data.num_frames=4", "data.frame_stride=2", "data.train_crop_size=32",
             "data.test_crop_size=32", "data.train_jitter_scales=[32,40]", "data.num_workers=0"]


@pytest.fixture
def damaged_kinetics(synthetic_kinetics, tmp_path):
    """A copy of the tiny synthetic Kinetics set with a corrupt, a truncated and a hanging
    video: ``(root, {video id: kind})``."""
    root = tmp_path / "k"
    shutil.copytree(synthetic_kinetics, root)
    ids = [line.split(" ")[0] for line in (root / "train.csv").read_text().splitlines()]
    val_ids = [line.split(" ")[0] for line in (root / "val.csv").read_text().splitlines()]
    (root / ids[1]).write_bytes(b"\x00not a video" * 100)
    whole = root / ids[4]
    truncated_copy(whole.rename(root / "whole.mp4"), whole, 0.4)
    return root, {ids[1]: "corrupt", ids[4]: "truncated", val_ids[2]: "hangs"}


def slow_for(video_id):
    """``check_video``, hanging on one video (a decoder stuck in native code)."""
    def check(task):
        if task.video_id == video_id:
            time.sleep(60)
        return check_video(task)
    return check


def test_unreadable_videos_become_an_exclusion_list(damaged_kinetics, tmp_path, monkeypatch,
                                                    capsys):
    root, damaged = damaged_kinetics
    hanging = next(video for video, kind in damaged.items() if kind == "hangs")
    monkeypatch.setattr(verify, "check_video", slow_for(hanging))  # workers are forked
    previous = root / "known_bad.txt"
    previous.write_text("# from an earlier check\ntrain/old/gone.mp4\n")
    output = tmp_path / "unreadable.txt"
    start = time.monotonic()
    code = load_script("verify_videos").main([
        "--config", "configs/kinetics400/base.yaml", f"data.root={root}",
        "data.exclude_file=known_bad.txt", *OVERRIDES, "--out", str(output), "--jobs", "2",
        "--timeout", "4", "--no-progress"])
    assert time.monotonic() - start < 40
    printed = capsys.readouterr().out
    assert code == 1
    lines = output.read_text().splitlines()
    listed = [line for line in lines if not line.startswith("#")]
    assert listed == ["train/old/gone.mp4", *damaged]  # the earlier list, then in list order
    reasons = {listed[n]: lines[lines.index(listed[n]) - 1] for n in range(1, len(listed))}
    assert reasons[hanging] == "# timed out after 4 s"
    corrupt = next(video for video, kind in damaged.items() if kind == "corrupt")
    assert reasons[corrupt].startswith("# not a readable video container")
    assert f"{20 + 10} videos checked: 3 unreadable" in printed

    # The loaders accept the file: every listed video is skipped, in every split.
    cfg = small_data_config("kinetics", root, f"data.exclude_file={output}")
    train, val = build_dataset(cfg, "train"), build_dataset(cfg, "val")
    assert sorted(train.excluded + val.excluded) == sorted(damaged)
    assert train.num_videos == 20 - 2 and val.num_videos == 10 - 1


def test_sample_and_frame_subset(synthetic_kinetics, tmp_path, capsys):
    output = tmp_path / "none.txt"
    code = load_script("verify_videos").main([
        "--config", "configs/kinetics400/base.yaml", f"data.root={synthetic_kinetics}",
        *OVERRIDES, "--out", str(output), "--sample", "5", "--frames", "3", "--splits",
        "train", "--jobs", "1", "--no-progress"])
    assert code == 0
    assert "5 videos checked: 0 unreadable" in capsys.readouterr().out
    assert [line for line in output.read_text().splitlines() if not line.startswith("#")] == []


def test_check_video_all_frames_some_frames_missing_file(synthetic_kinetics, tmp_path):
    first = synthetic_kinetics / (synthetic_kinetics / "train.csv").read_text().split(" ")[0]
    whole = check_video(VideoCheck("v", str(first), "decord", None, None))
    assert (whole.frames, whole.error, whole.note) == (45, None, None)
    sampled = check_video(VideoCheck("v", str(first), "pyav", 16, 4))
    assert (sampled.frames, sampled.error) == (4, None)
    missing = check_video(VideoCheck("v", str(tmp_path / "gone.mp4"), "decord", None, None))
    assert missing.error.startswith("file not found")


def test_missing_list_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_script("verify_videos").main([
            "--config", "configs/kinetics400/base.yaml", f"data.root={tmp_path}",
            "--out", str(tmp_path / "x.txt"), "--splits", "train"])
    assert exit_info.value.code == 2
    assert "video list not found" in capsys.readouterr().err


def test_summary_lists_at_most_limit_files_and_counts_the_rest():
    items = [(f"v{i}.mp4", "no frames") for i in range(5)]
    assert listed_files("unreadable", items, limit=2) == [
        "unreadable:", "  v0.mp4: no frames", "  v1.mp4: no frames", "  ... and 3 more"]
    assert listed_files("notes", [], limit=2) == []


def test_exclusion_list_gives_back_any_id(tmp_path):
    """Charades ids are any CSV field: one starting with '#' or holding a line break is quoted,
    not read back as a comment or as two ids; so are the names of the previous list."""
    previous = ["#old", "old\nbroken", " spaced "]
    unreadable = [("#AB12C", "not a readable video\ncontainer"), ("X\nY", "no frames"),
                  ("\"quoted\"", "timed out"), ("plain.mp4", "x"), ("vidéo, 日本", "y")]
    path = tmp_path / "unreadable.txt"
    verify.write_exclusions(path, verify.Verification(5, unreadable, [], []), previous,
                            "known_bad.txt")
    assert read_exclusions(path) == previous + [video_id for video_id, _ in unreadable]
    lines = path.read_text().splitlines()
    assert lines[lines.index("plain.mp4") - 1] == "# x"
    assert lines[lines.index('"#AB12C"') - 1] == "# not a readable video container"
