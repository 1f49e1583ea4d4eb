"""Reading tar shards (data.format=shards): the same clips, targets and coverage as from files,
reproducible per (seed, epoch), from local paths, brace patterns and pipe: commands."""

import logging
import shutil

import numpy as np
import pytest
import torch
from data_helpers import small_data_config
from torch import nn
from video_files import truncated_copy

from videotl.config import ConfigError
from videotl.data import build_dataset, build_loader
from videotl.data.dataset import DataLoadingError
from videotl.data.lists import AnnotationError
from videotl.data.shard_format import ShardReadError, read_manifest, read_shard
from videotl.data.shards import ShardClipDataset, block, epoch_shard_order, stream_pieces
from videotl.data.video_reader import VideoDecodeError, VideoReader
from videotl.evaluation.evaluator import evaluate
from videotl.prep.shards import make_shards


@pytest.fixture(scope="module")
def kinetics_shards(synthetic_kinetics, tmp_path_factory):
    """The tiny synthetic Kinetics set in shards of 3 videos: ``(root, shard folder)``."""
    out = tmp_path_factory.mktemp("kinetics_shards")
    cfg = small_data_config("kinetics", synthetic_kinetics)
    summary = make_shards(cfg, out, max_bytes=None, max_videos=3, jobs=1, progress=False)
    assert summary.failed == 0
    return "kinetics", synthetic_kinetics, out


@pytest.fixture(scope="module")
def charades_shards(synthetic_charades, tmp_path_factory):
    out = tmp_path_factory.mktemp("charades_shards")
    cfg = small_data_config("charades", synthetic_charades)
    make_shards(cfg, out, max_bytes=None, max_videos=1, jobs=1, progress=False)
    return "charades", synthetic_charades, out


SHARD_KEYS = ("data.shard_dir=", "data.shard_urls=", "data.shuffle_buffer=")


def configs(shards, *overrides):
    """``(files config, shards config)`` of the same data and settings (the keys read only
    with shards, a config error with files, go to the shards config alone)."""
    kind, root, out = shards
    files = [override for override in overrides if not override.startswith(SHARD_KEYS)]
    return (small_data_config(kind, root, *files),
            small_data_config(kind, root, "data.format=shards", f"data.shard_dir={out}",
                              *overrides))


def eval_items(dataset):
    """``{(video, view): (video tensor, target, ok)}`` of every batch of every worker."""
    items = {}
    for worker in range(dataset.workers):
        for batch in dataset.batches(worker):
            for n, (video, view) in enumerate(zip(batch["video_index"], batch["view_index"])):
                key = (int(video), int(view))
                assert key not in items, f"{key} read twice"
                items[key] = (batch["video"][n], batch["target"][n], bool(batch["ok"][n]))
    return items


def with_slots(dataset, rank, world_size, num_workers, batch_size=None):
    return ShardClipDataset(dataset.clips, dataset.manifest, dataset.urls,
                            batch_size or dataset.batch_size, num_workers=num_workers,
                            rank=rank, world_size=world_size,
                            shuffle_buffer=dataset.shuffle_buffer)


# -- the same data as from files ----------------------------------------------------------
@pytest.mark.parametrize("shards", ["kinetics_shards", "charades_shards"])
@pytest.mark.parametrize("split", ["val", "test"])
def test_evaluation_views_and_targets_equal_the_files(shards, split, request):
    shards = request.getfixturevalue(shards)
    files_cfg, shards_cfg = configs(shards, "test.batch_size=5")
    files, sharded = build_dataset(files_cfg, split), build_dataset(shards_cfg, split)
    assert isinstance(sharded, ShardClipDataset)
    assert sharded.video_ids == files.video_ids and sharded.class_names == files.class_names
    assert (sharded.num_classes, sharded.multilabel, sharded.view_aggregation) == (
        files.num_classes, files.multilabel, files.view_aggregation)
    items = eval_items(sharded)
    assert sorted(items) == [divmod(i, files.views_per_video) for i in range(len(files))]
    for (video, view), (clip, target, ok) in items.items():
        expected = files[video * files.views_per_video + view]
        assert ok and expected["ok"]
        assert torch.equal(clip, expected["video"])  # bit-exact
        assert torch.equal(target, expected["target"])
        assert torch.equal(target, sharded.video_target(video))


@pytest.mark.parametrize("shards", ["kinetics_shards", "charades_shards"])
def test_training_clips_equal_the_files_for_the_same_seed_and_epoch(shards, request):
    shards = request.getfixturevalue(shards)
    files_cfg, shards_cfg = configs(shards, "train.batch_size=2", "seed=5",
                                    "data.shuffle_buffer=3")
    files, sharded = build_dataset(files_cfg, "train"), build_dataset(shards_cfg, "train")
    for epoch in (0, 3):
        files.set_epoch(epoch)
        sharded.set_epoch(epoch)
        seen = []
        for batch in sharded.batches(0):
            for n, video in enumerate(batch["video_index"].tolist()):
                expected = files[video]
                assert torch.equal(batch["video"][n], expected["video"])  # clip + augmentation
                assert torch.equal(batch["target"][n], expected["target"])  # timed actions too
                seen.append(video)
        # One process: every video once, but for the last incomplete batch.
        assert len(seen) == len(set(seen)) == files.num_videos // 2 * 2


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_the_readers_decode_a_video_in_memory_as_its_file(synthetic_avid, backend):
    """No temporary file: PyAV reads a BytesIO, decord a file-like object."""
    for path in sorted(synthetic_avid.rglob("*.mp4"))[:3]:
        data = path.read_bytes()
        from_file = VideoReader(path, backend=backend, short_side=24)
        from_memory = VideoReader("member.mp4", backend=backend, short_side=24, data=data)
        indices = [0, from_file.num_frames - 1, 3, 3]
        assert (from_memory.num_frames, from_memory.fps, from_memory.size) == (
            from_file.num_frames, from_file.fps, from_file.size)
        assert torch.equal(from_memory.get_frames(indices), from_file.get_frames(indices))
        assert from_memory.backend == from_file.backend


def test_a_video_in_memory_that_is_no_video_names_its_member():
    with pytest.raises(VideoDecodeError) as error:
        VideoReader("train-000001.tar:00000007.mp4 (a/b.mp4)", data=b"\x00not a video" * 50)
    assert error.value.path == "train-000001.tar:00000007.mp4 (a/b.mp4)"
    assert error.value.reason.startswith("not a readable video container")
    with pytest.raises(VideoDecodeError, match=r"the video is empty \(0 bytes\)"):
        VideoReader("m.mp4", data=b"")


# -- who reads what -----------------------------------------------------------------------
@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("num_workers", [0, 2])
def test_evaluation_reads_every_view_exactly_once_across_ranks(kinetics_shards, world_size,
                                                               num_workers):
    _, shards_cfg = configs(kinetics_shards, "test.batch_size=4")
    dataset = build_dataset(shards_cfg, "test")
    merged = []
    for rank in range(world_size):
        part = with_slots(dataset, rank, world_size, num_workers)
        pairs = [(int(v), int(w)) for worker in range(part.workers)
                 for batch in part.batches(worker)
                 for v, w in zip(batch["video_index"], batch["view_index"])]
        assert len(part) == sum(1 for worker in range(part.workers)
                                for _ in part.batches(worker))
        merged += pairs
    views = dataset.views_per_video
    assert sorted(merged) == [(v, w) for v in range(dataset.num_videos) for w in range(views)]


@pytest.mark.parametrize("world_size, num_workers", [(1, 0), (2, 0), (3, 0), (2, 2)])
def test_training_ranks_get_equal_batches_of_distinct_videos(kinetics_shards, world_size,
                                                             num_workers):
    _, shards_cfg = configs(kinetics_shards, "train.batch_size=2", "data.shuffle_buffer=2")
    dataset = build_dataset(shards_cfg, "train")  # 20 videos in 7 shards
    counts, videos = [], []
    for rank in range(world_size):
        part = with_slots(dataset, rank, world_size, num_workers)
        part.set_epoch(1)
        batches = [b for worker in range(part.workers) for b in part.batches(worker)]
        assert len(batches) == len(part)
        assert all(len(b["video_index"]) == 2 for b in batches)
        counts.append(len(batches))
        videos += [v for b in batches for v in b["video_index"].tolist()]
    slots = world_size * max(1, num_workers)
    assert counts == [max(1, num_workers) * (20 // slots // 2)] * world_size  # DDP: same count
    assert len(videos) == len(set(videos))  # no video twice in an epoch


def test_training_order_is_a_function_of_seed_and_epoch(kinetics_shards):
    def order(seed, epoch):
        _, cfg = configs(kinetics_shards, "train.batch_size=2", f"seed={seed}",
                         "data.shuffle_buffer=4")
        dataset = build_dataset(cfg, "train")  # a fresh dataset: as a resumed run builds it
        dataset.set_epoch(epoch)
        return [v for b in dataset.batches(0) for v in b["video_index"].tolist()]

    first = order(0, 2)
    assert first == order(0, 2)  # resumable: the epoch's order from (seed, epoch) alone
    assert sorted(first) == list(range(20))
    assert order(0, 3) != first and sorted(order(0, 3)) == list(range(20))
    assert order(1, 2) != first


def test_the_loader_runs_shards_in_worker_processes(kinetics_shards):
    _, shards_cfg = configs(kinetics_shards, "test.batch_size=4", "train.batch_size=2",
                            "data.num_workers=2")
    loader = build_loader(shards_cfg, "test")
    assert loader.batch_size is None and len(loader) == len(loader.dataset)
    batches = list(loader)
    assert len(batches) == len(loader)
    pairs = sorted((int(v), int(w)) for b in batches
                   for v, w in zip(b["video_index"], b["view_index"]))
    assert pairs == [(v, w) for v in range(10) for w in range(6)]
    train = build_loader(shards_cfg, "train")
    train.dataset.set_epoch(0)
    assert len(list(train)) == len(train) == 2 * (10 // 2)  # 2 workers x 10 videos each


def test_stream_pieces_and_blocks():
    lengths = [3, 0, 2, 4]
    assert stream_pieces(lengths, [0, 1, 2, 3], 0, 9) == [(0, 0, 3), (2, 0, 2), (3, 0, 4)]
    assert stream_pieces(lengths, [3, 0, 1, 2], 2, 6) == [(3, 2, 4), (0, 0, 2)]
    assert stream_pieces(lengths, [0, 1, 2, 3], 4, 4) == []
    assert [block(7, 3, part) for part in range(3)] == [(0, 2), (2, 4), (4, 7)]
    assert epoch_shard_order(10, 0, 1) == epoch_shard_order(10, 0, 1)
    assert sorted(epoch_shard_order(10, 0, 1)) == list(range(10))
    assert epoch_shard_order(10, 0, 1) != epoch_shard_order(10, 0, 2)


def test_more_training_processes_than_videos_is_refused(kinetics_shards):
    train = build_dataset(configs(kinetics_shards)[1], "train")
    with pytest.raises(ConfigError, match=r"^20 train videos cannot feed 24 loader processes "
                                          r"\(3 ranks x 8\); lower data.num_workers$"):
        with_slots(train, 0, 3, 8)


# -- sources ------------------------------------------------------------------------------
def test_pipe_commands_and_brace_patterns_read_the_same_views(kinetics_shards):
    out = kinetics_shards[2]
    last = f"{len(read_manifest(out / 'val.json').shards) - 1:06d}"
    expected = eval_items(build_dataset(configs(kinetics_shards)[1], "val"))
    for pattern in (f"{out}/{{split}}-{{000000..{last}}}.tar",
                    f"pipe:cat {out}/{{split}}-{{000000..{last}}}.tar"):
        dataset = build_dataset(configs(kinetics_shards, f"data.shard_urls={pattern}")[1], "val")
        first = pattern.replace("{split}", "val").replace(f"{{000000..{last}}}", "000000")
        assert dataset.urls[0] == first
        items = eval_items(dataset)
        assert items.keys() == expected.keys()
        assert all(torch.equal(items[key][0], expected[key][0]) for key in items)


def test_shard_urls_that_do_not_match_the_manifest_are_refused(kinetics_shards):
    out = kinetics_shards[2]
    count = len(read_manifest(out / "val.json").shards)
    _, cfg = configs(kinetics_shards, f"data.shard_urls={out}/val-{{000000..000009}}.tar")
    with pytest.raises(ConfigError, match=rf"gives 10 URLs for the {count} shards of the val "):
        build_dataset(cfg, "val")
    pattern = f"{out}/other-{{000000..{count - 1:06d}}}.tar"
    _, cfg = configs(kinetics_shards, f"data.shard_urls={pattern}")
    with pytest.raises(ConfigError, match=rf"URL '{out}/other-000000.tar' does not name shard "
                                          r"val-000000.tar \(the URLs must follow the "):
        build_dataset(cfg, "val")


def test_a_missing_manifest_or_one_of_another_dataset_is_refused(kinetics_shards, tmp_path):
    _, cfg = configs(kinetics_shards, f"data.shard_dir={tmp_path}")
    with pytest.raises(AnnotationError, match=rf"^shard manifest not found: {tmp_path}/val.json"):
        build_dataset(cfg, "val")
    _, cfg = configs(kinetics_shards, "data.dataset=avid")
    with pytest.raises(AnnotationError, match=r"shards of dataset 'kinetics', but "
                                              r"data.dataset='avid'$"):
        build_dataset(cfg, "val")


def test_a_truncated_missing_or_reordered_shard_is_an_error_naming_it(kinetics_shards,
                                                                      tmp_path):
    out = kinetics_shards[2]
    copy = tmp_path / "shards"
    shutil.copytree(out, copy)
    shards = read_manifest(copy / "val.json").shards
    first = copy / shards[0].name
    truncated_copy(out / shards[0].name, first, 0.5)
    with pytest.raises(ShardReadError) as error:
        list(read_shard(str(first), shards[0].keys))
    assert str(error.value).startswith(f"cannot read shard {first}: ")
    gone = copy / shards[1].name
    gone.unlink()
    with pytest.raises(ShardReadError, match=rf"^cannot read shard {gone}: No such file or "
                                             r"directory$"):
        list(read_shard(str(gone), shards[1].keys))
    with pytest.raises(ShardReadError, match=r"\(command exit status 1\)$"):
        list(read_shard(f"pipe:cat {gone} 2>/dev/null", shards[1].keys))
    keys = shards[2].keys
    with pytest.raises(ShardReadError, match=rf"holds video '{keys[0]}' where '{keys[1]}' was "
                                             r"expected \(the shard and its manifest differ\)$"):
        list(read_shard(str(copy / shards[2].name), keys[1:2] + keys[:1]))


def test_a_shard_gives_the_wanted_members_bytes_and_annotations(kinetics_shards):
    _, root, out = kinetics_shards
    shard = read_manifest(out / "train.json").shards[0]
    read = list(read_shard(str(out / shard.name), shard.keys[1:]))
    assert [key for key, _, _ in read] == list(shard.keys[1:])
    for key, data, annotation in read:
        assert annotation["key"] == key and annotation["member"] == f"{key}.mp4"
        assert data == (root / annotation["path"]).read_bytes()
        assert annotation["duration"] == 3.0 and isinstance(annotation["label"], int)


# -- videos that failed to pack -------------------------------------------------------------
@pytest.fixture(scope="module")
def kinetics_one_missing(synthetic_kinetics, tmp_path_factory):
    """The tiny Kinetics set with the 5th listed train and val videos deleted, packed in shards
    of 3: ``((kind, root, shard folder), {split: the missing video's id})``."""
    root = tmp_path_factory.mktemp("kinetics_missing") / "k"
    shutil.copytree(synthetic_kinetics, root)
    missing = {}
    for split in ("train", "val"):
        listed = (root / f"{split}.csv").read_text().splitlines()
        missing[split] = listed[4].rsplit(None, 1)[0]
        (root / missing[split]).unlink()
    out = root.parent / "shards"
    summary = make_shards(small_data_config("kinetics", root), out, max_bytes=None,
                          max_videos=3, jobs=1, progress=False)
    assert summary.failed == 3  # train, val, and test (the val list again)
    missing["test"] = missing["val"]
    return ("kinetics", root, out), missing


NOT_PACKED = ("not packed into the shards (file not found or unreadable (No such file or "
              "directory))")


class MeanColour(nn.Module):
    """A fixed tiny classifier: the clip's mean colour, linearly to the classes."""

    def __init__(self, num_classes):
        super().__init__()
        self.linear = nn.Linear(3, num_classes)

    def forward(self, video):  # [B, C, T, H, W] -> [B, K]
        return self.linear(video.mean(dim=(2, 3, 4)))


@pytest.mark.parametrize("split", ["val", "test"])
def test_videos_that_failed_to_pack_are_failed_videos_as_missing_files_are(
        kinetics_one_missing, split, caplog):
    shards, missing = kinetics_one_missing
    root = shards[1]
    # One view per batch: every clip goes through the model alone, so scores are bit-equal.
    files_cfg, shards_cfg = configs(shards, "test.batch_size=1")
    with caplog.at_level(logging.WARNING, logger="videotl.data.shards"):
        sharded = build_dataset(shards_cfg, split)
    files = build_dataset(files_cfg, split)
    warnings = [r.getMessage() for r in caplog.records if r.name == "videotl.data.shards"]
    assert warnings == [f'kinetics {split}: 1 of the 10 listed videos are not in the shards '
                        '(they failed when packed: the manifest\'s "failed"); they count as '
                        'videos that cannot be loaded']
    assert sharded.failures == [(missing[split], NOT_PACKED)]  # listed when built
    assert sharded.video_ids == files.video_ids and missing[split] in files.video_ids
    model = MeanColour(files.num_classes)
    device = torch.device("cpu")
    from_files = evaluate(model, build_loader(files_cfg, split, files), device)
    from_shards = evaluate(model, build_loader(shards_cfg, split, sharded), device)
    assert from_files.failed_videos == from_shards.failed_videos == [missing[split]]
    views = files.views_per_video
    assert from_shards.metrics["num_failed_videos"] == 1
    assert from_shards.metrics["num_failed_views"] == views
    assert from_shards.metrics["num_videos"] == 9
    assert from_shards.metrics == from_files.metrics
    np.testing.assert_array_equal(from_shards.scores, from_files.scores)  # NaN row: the missing
    assert np.array_equal(from_shards.views, from_files.views)
    assert [path for path, _ in files.failures] == [str(root / missing[split])]
    assert sharded.failures == [(missing[split], NOT_PACKED)]


@pytest.mark.parametrize("world_size, num_workers", [(1, 0), (2, 2), (3, 1)])
def test_views_of_videos_not_packed_come_once_each_and_failed(kinetics_one_missing,
                                                              world_size, num_workers):
    shards, missing = kinetics_one_missing
    dataset = build_dataset(configs(shards, "test.batch_size=4")[1], "test")
    failed = dataset.video_ids.index(missing["test"])
    merged = {}
    for rank in range(world_size):
        part = with_slots(dataset, rank, world_size, num_workers)
        items = eval_items(part)
        assert sum(1 for worker in range(part.workers) for _ in part.batches(worker)) == len(part)
        assert not items.keys() & merged.keys()
        merged.update(items)
    views = dataset.views_per_video
    assert sorted(merged) == [(v, w) for v in range(10) for w in range(views)]
    assert [key for key, (_, _, ok) in sorted(merged.items()) if not ok] == [
        (failed, w) for w in range(views)]
    assert all(torch.equal(merged[(failed, w)][1], dataset.video_target(failed))
               for w in range(views))


def test_training_counts_videos_not_packed_towards_the_failure_limit(kinetics_one_missing):
    shards, missing = kinetics_one_missing
    _, cfg = configs(shards, "train.batch_size=2")  # data.max_failure_fraction=0.01: 1 > 0.2
    with pytest.raises(DataLoadingError) as error:
        build_dataset(cfg, "train")
    assert str(error.value) == (
        "kinetics train: 1 of 20 videos failed to load, more than "
        "data.max_failure_fraction=0.01. Fix or list them in data.exclude_file:\n"
        f"  {missing['train']}: {NOT_PACKED}")
    _, cfg = configs(shards, "train.batch_size=2", "data.max_failure_fraction=0.05")
    dataset = build_dataset(cfg, "train")
    assert dataset.failures == [(missing["train"], NOT_PACKED)]
    assert dataset.num_videos == 20 and dataset.streamed == 19
    dataset.set_epoch(0)
    seen = [v for batch in dataset.batches(0) for v in batch["video_index"].tolist()]
    assert len(seen) == len(set(seen)) == 18  # 19 videos in the shards, in batches of 2
    assert dataset.video_ids.index(missing["train"]) not in seen
