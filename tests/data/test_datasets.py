"""Datasets on synthetic data and on videos made in the test: items, targets, views, Charades
label overlap, failures, exclusions, annotation errors."""

import logging
from dataclasses import replace

import pytest
import torch
from data_helpers import small_data_config
from video_files import decoded_index, write_video

from videotl.data import (
    AnnotationError,
    ClipDataset,
    ClipSampling,
    DataLoadingError,
    LoadingPolicy,
    VideoEntry,
    build_dataset,
    overlapping_actions,
)
from videotl.data.transforms import EvalTransform, TrainTransform
from videotl.registry import RegistryError

KEYS = {"video", "target", "video_index", "view_index", "ok"}


def check_item(item, num_frames=4, size=32):
    assert set(item) == KEYS
    assert item["video"].shape == (3, num_frames, size, size)
    assert item["video"].dtype == torch.float32 and item["ok"] is True
    assert torch.isfinite(item["video"]).all()


@pytest.mark.parametrize("kind", ["kinetics", "avid"])
def test_single_label_splits(kind, request):
    root = request.getfixturevalue(f"synthetic_{kind}")
    cfg = small_data_config(kind, root, "data.sampling_fps=10")
    names = (root / "classes.txt").read_text().split("\n")[:-1]
    train, val, test = (build_dataset(cfg, split) for split in ("train", "val", "test"))
    assert train.num_classes == len(names) and train.class_names == names
    assert not train.multilabel
    assert (len(train), train.views_per_video) == (train.num_videos, 1)
    assert (len(val), val.views_per_video) == (val.num_videos, 1)
    assert test.views_per_video == 6 and len(test) == test.num_videos * 6
    listed = [line.split()[0] for line in (root / "train.csv").read_text().splitlines()]
    assert train.video_ids == listed
    for index in (0, len(train) - 1):
        item = train[index]
        check_item(item)
        assert item["target"].dtype == torch.int64 and item["target"].shape == ()
        assert torch.equal(item["target"], train.video_target(item["video_index"]))
        assert item["view_index"] == 0
    check_item(val[len(val) - 1])
    for index in (0, 7, len(test) - 1):
        item = test[index]
        check_item(item)
        assert (item["video_index"], item["view_index"]) == divmod(index, 6)
        assert torch.equal(item["target"], test.video_target(item["video_index"]))


def test_test_views_differ_in_time_and_space(synthetic_kinetics):
    cfg = small_data_config("kinetics", synthetic_kinetics, "data.frame_stride=1",
                            "test.num_temporal_views=3")
    test = build_dataset(cfg, "test")
    views = [test[i]["video"] for i in range(9)]
    assert not torch.equal(views[0], views[1])  # left vs centre crop
    assert not torch.equal(views[1], views[4])  # first vs second temporal view, centre crop


def test_charades_targets(synthetic_charades):
    cfg = small_data_config("charades", synthetic_charades, "data.sampling_fps=12")
    train, test = build_dataset(cfg, "train"), build_dataset(cfg, "test")
    assert train.multilabel and train.num_classes == 8 and train.view_aggregation == "max"
    rows = (synthetic_charades / "Charades_v1_test.csv").read_text().splitlines()[1:]
    assert test.video_ids == [row.split(",")[0] for row in rows]
    for index in range(test.num_videos):
        target = test.video_target(index)
        expected = torch.zeros(8)
        expected[[label for label, _, _ in test.videos[index].actions]] = 1
        assert target.dtype == torch.float32 and torch.equal(target, expected)
    item = test[5]
    check_item(item)
    assert torch.equal(item["target"], test.video_target(item["video_index"]))
    for index in range(len(train)):
        target = train[index]["target"]
        assert target.shape == (8,) and target.dtype == torch.float32
        assert (target <= train.video_target(train[index]["video_index"])).all()


def test_overlapping_actions_boundaries():
    actions = [(3, 0.0, 2.0), (5, 2.0, 4.0), (7, 1.0, 1.5), (9, 6.0, 7.0)]
    assert overlapping_actions(actions, 1.2, 1.3) == [3, 7]
    assert overlapping_actions(actions, 1.9, 2.1) == [3, 5]
    assert overlapping_actions(actions, 4.0, 6.0) == []  # touching intervals do not overlap
    assert overlapping_actions(actions, 0.0, 10.0) == [3, 5, 7, 9]


def one_video_dataset(path, split, actions=(), label=None, frames=1, **policy):
    sampling = ClipSampling(frames, frame_stride=1)
    return ClipDataset(
        [VideoEntry(str(path), "v", label=label, actions=tuple(actions))], split,
        num_classes=3, multilabel=label is None, class_names=["a", "b", "c"], sampling=sampling,
        train_transform=TrainTransform([48, 48], 48, [0.0] * 3, [1 / 255] * 3, flip=False),
        eval_transform=EvalTransform(48, 1, [0.0] * 3, [1 / 255] * 3),
        policy=LoadingPolicy(**policy),
    )


def test_training_clip_labels_are_the_actions_overlapping_the_clip(tmp_path):
    """Single-frame clips of a 30 fps video: read back which frame was drawn from its pixels and
    compare the target with the overlap formula for that frame's time span."""
    path = write_video(tmp_path / "v.mp4", 60)
    actions = [(0, 0.0, 0.5), (1, 0.4, 1.2), (2, 1.5, 2.0)]
    dataset = one_video_dataset(path, "train", actions)
    seen = set()
    for epoch in range(40):
        dataset.set_epoch(epoch)  # a new clip every epoch
        item = dataset[0]
        frame = decoded_index(item["video"][:, 0].permute(1, 2, 0).numpy())
        seen.add(frame)
        expected = torch.zeros(3)
        expected[overlapping_actions(actions, frame / 30, (frame + 1) / 30)] = 1
        assert torch.equal(item["target"], expected), frame
    assert len(seen) > 15  # clips were drawn all over the video


def test_unreadable_eval_video_is_reported_not_dropped(tmp_path, caplog):
    good = write_video(tmp_path / "good.mp4", 30)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"")
    sampling = ClipSampling(4, frame_stride=2)
    dataset = ClipDataset(
        [VideoEntry(str(good), "good", label=0), VideoEntry(str(bad), "bad", label=2)], "test",
        num_classes=3, multilabel=False, class_names=["a", "b", "c"], sampling=sampling,
        train_transform=TrainTransform([48, 48], 48, [0.45] * 3, [0.225] * 3),
        eval_transform=EvalTransform(48, 3, [0.45] * 3, [0.225] * 3), num_temporal_views=2,
    )
    assert len(dataset) == 12
    with caplog.at_level(logging.WARNING):
        items = [dataset[i] for i in range(12)]
    assert [item["ok"] for item in items] == [True] * 6 + [False] * 6
    for item in items[6:]:
        assert item["video"].shape == (3, 4, 48, 48) and not item["video"].any()
        assert int(item["target"]) == 2 and item["video_index"] == 1
    assert dataset.failures == [(str(bad), "file is empty (0 bytes)")]
    assert sum(str(bad) in record.getMessage() for record in caplog.records) == 1


def test_training_retries_other_videos_and_counts_failures(tmp_path, caplog):
    good = write_video(tmp_path / "good.mp4", 30)
    missing = tmp_path / "missing.mp4"
    text = tmp_path / "text.mp4"
    text.write_text("not a video")
    entries = [VideoEntry(str(missing), "m", label=0), VideoEntry(str(text), "t", label=1)]
    entries += [VideoEntry(str(good), f"g{i}", label=2) for i in range(8)]

    def dataset(fraction):
        return ClipDataset(
            entries, "train", num_classes=3, multilabel=False, class_names=["a", "b", "c"],
            sampling=ClipSampling(4),
            train_transform=TrainTransform([48, 48], 48, [0.45] * 3, [0.225] * 3),
            eval_transform=EvalTransform(48, 1, [0.45] * 3, [0.225] * 3),
            policy=LoadingPolicy(max_failure_fraction=fraction),
        )

    tolerant = dataset(0.25)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            for index in (0, 1):
                item = tolerant[index]
                assert item["ok"] and item["video_index"] >= 2 and int(item["target"]) == 2
    assert sorted(path for path, _ in tolerant.failures) == sorted([str(missing), str(text)])
    assert sum(str(missing) in r.getMessage() for r in caplog.records) == 1  # logged once

    strict = dataset(0.1)  # 2 bad of 10 > 10 %: stop at the second bad file, listing both
    with pytest.raises(DataLoadingError, match="2 of 10 videos failed") as error:
        strict[0]  # one bad file is tolerated; a retry may already hit the second one
        strict[1]
    assert str(missing) in str(error.value) and str(text) in str(error.value)
    assert "data.exclude_file" in str(error.value)


def test_training_gives_up_when_no_video_loads(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    dataset = one_video_dataset(bad, "train", label=0, max_failure_fraction=1.0, video_retries=2)
    with pytest.raises(DataLoadingError, match="after trying 3 videos"):
        dataset[0]


def test_exclusion_list(synthetic_kinetics, tmp_path):
    cfg = small_data_config("kinetics", synthetic_kinetics)
    full = build_dataset(cfg, "train")
    listed = tmp_path / "exclude.txt"
    listed.write_text(f"# known bad\n{full.video_ids[3]}\n\n{full.videos[5].path}\nother.mp4\n")
    dataset = build_dataset(small_data_config("kinetics", synthetic_kinetics,
                                              f"data.exclude_file={listed}"), "train")
    assert dataset.num_videos == full.num_videos - 2
    assert dataset.excluded == [full.video_ids[3], full.video_ids[5]]
    assert full.video_ids[3] not in dataset.video_ids


def test_unknown_dataset_name(synthetic_kinetics):
    # load_config may refuse the name too; build_dataset checks whatever config it gets.
    cfg = small_data_config("kinetics", synthetic_kinetics)
    cfg = replace(cfg, data=replace(cfg.data, dataset="kinetic"))
    with pytest.raises(RegistryError, match="did you mean 'kinetics'"):
        build_dataset(cfg, "train")
    with pytest.raises(ValueError, match="unknown split"):
        build_dataset(small_data_config("kinetics", synthetic_kinetics), "validation")


def write_lists(root, train_text, classes="a\nb\nc\n"):
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text(classes)
    (root / "train.csv").write_text(train_text)
    return small_data_config("kinetics", root)


def test_list_formats(tmp_path):
    video = write_video(tmp_path / "clip one.mp4", 10)
    cfg = write_lists(tmp_path / "data", f"path,label\n{video},2\n{video} b\n")
    dataset = build_dataset(cfg, "train")
    assert [entry.label for entry in dataset.videos] == [2, 1]
    assert dataset.videos[0].path == str(video)  # absolute paths (with spaces) kept
    relative = write_lists(tmp_path / "rel", "clips/a.mp4 0\n")
    assert build_dataset(relative, "train").videos[0].path == str(tmp_path / "rel/clips/a.mp4")


@pytest.mark.parametrize("text, message", [
    ("a.mp4 3\n", r"train.csv:1: label 3 outside \[0, 3\)"),
    ("a.mp4 0\nb.mp4 dancing\n", r"train.csv:2: label 'dancing' is neither"),
    ("lonely\n", r"train.csv:1: expected 'path label'"),
    ("", "no videos listed"),
])
def test_bad_lists_name_file_and_line(tmp_path, text, message):
    with pytest.raises(AnnotationError, match=message):
        build_dataset(write_lists(tmp_path / "data", text), "train")


def test_missing_annotations_suggest_synthetic(tmp_path):
    cfg = small_data_config("kinetics", tmp_path / "nothing")
    with pytest.raises(AnnotationError, match="video list not found.*data.synthetic=true"):
        build_dataset(cfg, "train")


def test_class_names_from_json_and_fallback_to_model_classes(tmp_path):
    cfg = write_lists(tmp_path / "data", "a.mp4 1\n")
    (tmp_path / "data" / "classes.txt").unlink()
    (tmp_path / "data" / "ids.json").write_text('{"run": 1, "walk": 0}')
    named = build_dataset(small_data_config("kinetics", tmp_path / "data",
                                            "data.class_names_file=ids.json"), "train")
    assert named.class_names == ["walk", "run"]
    unnamed = build_dataset(small_data_config("kinetics", tmp_path / "data",
                                              "model.num_classes=5"), "train")
    assert unnamed.num_classes == 5 and unnamed.class_names == ["0", "1", "2", "3", "4"]
    del cfg


def test_charades_bad_action_names_row(synthetic_charades, tmp_path):
    root = tmp_path / "charades"
    root.mkdir()
    (root / "Charades_v1_classes.txt").write_text(
        (synthetic_charades / "Charades_v1_classes.txt").read_text())
    (root / "Charades_v1_train.csv").write_text(
        "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n"
        'AB12C,S1,room,7,7,Yes,"x, y",o,d,c001 1.0 2.0;c999 0.5 1.0,10.0\n')
    with pytest.raises(AnnotationError, match=r"Charades_v1_train.csv:2 \(id AB12C\).*'c999"):
        build_dataset(small_data_config("charades", root), "train")


@pytest.mark.parametrize("kind, folder", [("kinetics", "kinetics400"), ("charades", "charades"),
                                          ("avid", "avid")])
def test_shipped_synthetic_configs_build_their_dataset(repo, tmp_path, kind, folder):
    from videotl.config import load_config

    cfg = load_config(repo / "configs" / folder / "synthetic.yaml", [
        f"data.root={tmp_path / kind}", "data.synthetic_train_videos=2",
        "data.synthetic_eval_videos=1", "data.num_workers=0"])
    dataset = build_dataset(cfg, "train")
    assert dataset.num_classes == cfg.model.num_classes
    item = dataset[0]
    size = cfg.data.train_crop_size
    assert item["video"].shape == (3, cfg.data.num_frames, size, size)
