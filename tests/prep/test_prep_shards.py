"""Packing splits into tar shards (data_prep/make_shards.py): shuffled once with a seed, limited
in size and count, resumable and atomic, failures listed with their reasons."""

import json
import shutil
import tarfile

import pytest
from data_helpers import small_data_config
from release_helpers import load_script

from videotl.data.shard_format import read_manifest, read_shard
from videotl.prep.shards import MIB, make_shards
from videotl.prep.verify import listed_videos

OVERRIDES = ["data.num_frames=4", "data.frame_stride=2", "data.train_crop_size=32",
             "data.test_crop_size=32", "data.train_jitter_scales=[32,40]", "data.num_workers=0"]


def shard_bytes(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.glob("*.tar"))}


def labels_of(manifest, shard):
    label = {video.key: video.label for video in manifest.videos}
    return [label[key] for key in shard.keys]


def test_splits_become_shuffled_shards_and_manifests(synthetic_kinetics, tmp_path):
    cfg = small_data_config("kinetics", synthetic_kinetics)
    summary = make_shards(cfg, tmp_path, max_bytes=None, max_videos=4, jobs=2, progress=False)
    assert [(s.split, s.listed, s.packed, s.shards, s.written) for s in summary.splits] == [
        ("train", 20, 20, 5, 5), ("val", 10, 10, 3, 3), ("test", 10, 10, 3, 0)]
    train = read_manifest(tmp_path / "train.json")
    assert [len(shard.keys) for shard in train.shards] == [4, 4, 4, 4, 4]
    # The list is in class order; the shards are not: no shard is a run of one class.
    assert all(len(set(labels_of(train, shard))) > 1 for shard in train.shards)
    assert [video.video_id for video in train.videos] == [
        line.rsplit(None, 1)[0] for line in (synthetic_kinetics / "train.csv").read_text()
        .splitlines()]
    test = read_manifest(tmp_path / "test.json")  # the val list again: the val shards
    assert test.prefix == "val" and test.shards == read_manifest(tmp_path / "val.json").shards
    with tarfile.open(tmp_path / train.shards[0].name) as tar:
        members = tar.getmembers()
    key = train.shards[0].keys[0]
    assert [m.name for m in members[:2]] == [f"{key}.json", f"{key}.mp4"]
    assert {(m.mtime, m.uid, m.mode) for m in members} == {(0, 0, 0o444)}
    other = make_shards(cfg, tmp_path / "seed1", max_bytes=None, max_videos=4, seed=1,
                        jobs=1, progress=False)
    assert other.failed == 0
    assert read_manifest(tmp_path / "seed1" / "train.json").shards[0].keys != \
        train.shards[0].keys


def test_charades_annotations_travel_with_the_videos(synthetic_charades, tmp_path):
    cfg = small_data_config("charades", synthetic_charades)
    make_shards(cfg, tmp_path, splits=["train"], max_bytes=None, max_videos=3, jobs=1,
                progress=False)
    manifest = read_manifest(tmp_path / "train.json")
    assert manifest.multilabel and manifest.class_names[0] == "Moving up"
    rows = {video.video_id: video for video in manifest.videos}
    for shard in manifest.shards:
        for key, data, annotation in read_shard(str(tmp_path / shard.name), shard.keys):
            video = rows[annotation["video_id"]]
            assert annotation["path"] == f"{video.video_id}.mp4" == video.path
            assert [tuple(action) for action in annotation["actions"]] == list(video.actions)
            assert len(video.actions) >= 2 and 20.0 <= annotation["duration"] <= 30.0
            assert data == (synthetic_charades / "Charades_v1_480" / video.path).read_bytes()


def test_a_size_limit_closes_shards_before_they_pass_it(synthetic_avid, tmp_path):
    cfg = small_data_config("avid", synthetic_avid)
    limit = 3 * max(p.stat().st_size for p in (synthetic_avid / "train").rglob("*.mp4"))
    summary = make_shards(cfg, tmp_path, splits=["train"], max_bytes=limit, jobs=1,
                          progress=False)
    manifest = read_manifest(tmp_path / "train.json")
    assert summary.splits[0].packed == 12 and len(manifest.shards) >= 3
    path = {video.key: synthetic_avid / video.path for video in manifest.videos}
    cost = [[path[key].stat().st_size + 2048 for key in shard.keys] for shard in manifest.shards]
    for shard, costs, following in zip(manifest.shards, cost, cost[1:] + [None]):
        assert sum(costs) <= limit  # the estimate: file sizes + 2 KiB per video
        assert following is None or sum(costs) + following[0] > limit  # closed only when full
        assert shard.bytes <= limit + 10240  # + the tar's end blocks and padding


def test_missing_and_unreadable_videos_are_reported_not_dropped(synthetic_kinetics, tmp_path,
                                                                capsys):
    root = tmp_path / "k"
    shutil.copytree(synthetic_kinetics, root)
    ids = [line.rsplit(None, 1)[0] for line in (root / "train.csv").read_text().splitlines()]
    (root / ids[3]).unlink()
    (root / ids[7]).write_bytes(b"\x00not a video" * 100)
    out = tmp_path / "shards"
    code = load_script("make_shards").main([
        "--config", "configs/kinetics400/base.yaml", f"data.root={root}", *OVERRIDES,
        "--out", str(out), "--splits", "train", "--videos-per-shard", "5", "--jobs", "2",
        "--no-progress"])
    assert code == 1
    printed = capsys.readouterr().out
    assert "train: 20 videos listed, 18 packed, 2 failed; 4 shards" in printed
    assert f"  {ids[3]}: file not found or unreadable (No such file or directory)" in printed
    assert f"  {ids[7]}: not a readable video container" in printed
    manifest = read_manifest(out / "train.json")
    assert [(v.key, v.video_id, v.path, v.member) for v, _ in manifest.failed] == [
        ("00000003", ids[3], ids[3], ""), ("00000007", ids[7], ids[7], "")]
    labels = [int(line.rsplit(None, 1)[1]) for line in (root / "train.csv").read_text()
              .splitlines()]
    assert [v.label for v, _ in manifest.failed] == [labels[3], labels[7]]  # read as listed
    assert manifest.failed[0][1] == "file not found or unreadable (No such file or directory)"
    counts = json.loads((out / "train.json").read_text())["counts"]
    assert (counts["listed"], counts["packed"], counts["failed"]) == (20, 18, 2)
    assert len(manifest.videos) == 18 and ids[3] not in [v.video_id for v in manifest.videos]


def test_a_rerun_after_an_interruption_gives_the_same_shards(synthetic_kinetics, tmp_path):
    cfg = small_data_config("kinetics", synthetic_kinetics)
    out = tmp_path / "shards"
    make_shards(cfg, out, splits=["train"], max_bytes=None, max_videos=6, jobs=2,
                progress=False)
    before, manifest = shard_bytes(out), (out / "train.json").read_text()
    # An interruption while the last shard was written: its temporary file is left, the shard
    # and its record are not there, and no manifest was written.
    last = sorted(before)[-1]
    (out / last).rename(out / f".{last}.4242.tmp")
    (out / f"{last}.record.json").unlink()
    (out / "train.json").unlink()
    (out / "train-000009.tar").write_bytes(b"a shard of an earlier plan")
    summary = make_shards(cfg, out, splits=["train"], max_bytes=None, max_videos=6, jobs=2,
                          progress=False)
    split = summary.splits[0]
    assert (split.written, split.kept, split.packed) == (1, len(before) - 1, 20)
    assert sorted(summary.removed) == sorted([f".{last}.4242.tmp", "train-000009.tar"])
    assert shard_bytes(out) == before  # byte-identical, stale files gone
    assert (out / "train.json").read_text() == manifest
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    again = make_shards(cfg, out, splits=["train"], max_bytes=None, max_videos=6, jobs=1,
                        progress=False)
    assert (again.splits[0].written, again.splits[0].kept) == (0, len(before))


def test_a_changed_plan_rewrites_the_shards(synthetic_kinetics, tmp_path):
    cfg = small_data_config("kinetics", synthetic_kinetics)
    make_shards(cfg, tmp_path, splits=["val"], max_bytes=None, max_videos=3, jobs=1,
                progress=False)
    summary = make_shards(cfg, tmp_path, splits=["val"], max_bytes=None, max_videos=5, jobs=1,
                          progress=False)
    assert (summary.splits[0].written, summary.splits[0].shards) == (2, 2)
    assert sorted(summary.removed) == ["val-000002.tar", "val-000002.tar.record.json",
                                       "val-000003.tar", "val-000003.tar.record.json"]
    assert [len(s.keys) for s in read_manifest(tmp_path / "val.json").shards] == [5, 5]


@pytest.mark.parametrize("arguments, message", [
    (["--shard-size", "0"], "error: --shard-size 0 needs --videos-per-shard"),
    (["--videos-per-shard", "0"], "error: --videos-per-shard must be at least 1, got 0"),
    (["--shard-size", "-1"], "error: --shard-size must be at least 0 MiB, got -1"),
])
def test_bad_limits_are_refused_in_one_line(synthetic_kinetics, tmp_path, capsys, arguments,
                                            message):
    with pytest.raises(SystemExit) as end:
        load_script("make_shards").main([
            "--config", "configs/kinetics400/base.yaml", f"data.root={synthetic_kinetics}",
            "--out", str(tmp_path), *arguments])
    assert end.value.code == 2
    assert capsys.readouterr().err.strip() == message
    assert MIB == 2 ** 20


def test_verification_checks_the_listed_files_of_a_config_reading_shards(synthetic_kinetics,
                                                                         tmp_path):
    cfg = small_data_config("kinetics", synthetic_kinetics, "data.format=shards",
                            f"data.shard_dir={tmp_path}")
    videos, excluded = listed_videos(cfg, ["val"])
    assert [path for _, path in videos] == [
        str(synthetic_kinetics / line.rsplit(None, 1)[0])
        for line in (synthetic_kinetics / "val.csv").read_text().splitlines()]
    assert excluded == []
