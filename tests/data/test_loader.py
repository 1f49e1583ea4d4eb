"""Loaders: batches, samplers (exact distributed coverage), worker seeding, failures seen from the
main process."""

import random

import numpy as np
import pytest
import torch
import torch.distributed as dist
from data_helpers import small_data_config
from torch.utils.data import Dataset, DistributedSampler

from videotl.data import (
    EpochShuffleSampler,
    ShardedEvalSampler,
    build_dataset,
    build_loader,
    loader_seed,
)


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("num_items", [0, 1, 2, 5, 7, 10, 31, 300])
def test_eval_sharding_covers_every_item_exactly_once(world_size, num_items):
    shards = [list(ShardedEvalSampler(num_items, world_size, rank)) for rank in range(world_size)]
    merged = sorted(index for shard in shards for index in shard)
    assert merged == list(range(num_items))  # no item lost, none repeated or padded
    sizes = [len(shard) for shard in shards]
    assert sizes == [len(ShardedEvalSampler(num_items, world_size, r)) for r in range(world_size)]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("world_size", [2, 3])
def test_eval_sharding_counts_each_video_view_once(world_size):
    """7 videos x 6 views = 42 items: each (video, view) pair lands on exactly one rank."""
    views = 6
    seen = []
    for rank in range(world_size):
        seen += [divmod(i, views) for i in ShardedEvalSampler(7 * views, world_size, rank)]
    assert sorted(seen) == [(v, w) for v in range(7) for w in range(views)]


def test_padded_distributed_sampler_would_double_count():
    """Why evaluation does not use DistributedSampler: 7 items on 3 ranks become 9."""
    padded = [i for r in range(3) for i in DistributedSampler(range(7), 3, r, shuffle=False)]
    assert len(padded) == 9 and len(set(padded)) == 7


def test_epoch_shuffle_sampler_is_reproducible_per_epoch():
    sampler = EpochShuffleSampler(50, seed=3)
    first = list(sampler)
    assert sorted(first) == list(range(50)) and list(sampler) == first
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first and sorted(second) == list(range(50))
    again = EpochShuffleSampler(50, seed=3)
    again.set_epoch(1)
    assert list(again) == second


def test_train_and_test_loaders(synthetic_kinetics):
    cfg = small_data_config("kinetics", synthetic_kinetics, "train.batch_size=8",
                            "test.batch_size=5")
    train = build_loader(cfg, "train")
    assert isinstance(train.sampler, EpochShuffleSampler) and train.drop_last
    train.sampler.set_epoch(0)
    batches = list(train)
    assert len(batches) == 20 // 8
    batch = batches[0]
    assert batch["video"].shape == (8, 3, 4, 32, 32) and batch["video"].dtype == torch.float32
    assert batch["target"].shape == (8,) and batch["target"].dtype == torch.int64
    assert batch["ok"].dtype == torch.bool and batch["ok"].all()
    test = build_loader(cfg, "test")
    assert isinstance(test.sampler, ShardedEvalSampler) and not test.drop_last
    pairs = [(int(v), int(w)) for b in test for v, w in zip(b["video_index"], b["view_index"])]
    assert sorted(pairs) == [(v, w) for v in range(10) for w in range(6)]


def test_eval_failures_in_workers_reach_the_main_process(synthetic_kinetics, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "classes.txt").write_text((synthetic_kinetics / "classes.txt").read_text())
    good = (synthetic_kinetics / "val.csv").read_text().splitlines()[:3]
    rows = [f"{synthetic_kinetics / line.split()[0]} {line.split()[1]}" for line in good]
    (root / "bad.mp4").write_bytes(b"\x00\x01" * 64)
    (root / "val.csv").write_text("\n".join(rows[:2] + ["bad.mp4 4"] + rows[2:]) + "\n")
    cfg = small_data_config("kinetics", root, "data.num_workers=2", "test.batch_size=1")
    loader = build_loader(cfg, "val")
    assert loader.persistent_workers
    flags = [bool(b["ok"]) for b in loader]
    assert flags == [True, True, False, True]
    failures = loader.dataset.failures
    assert [path for path, _ in failures] == [str(root / "bad.mp4")]
    assert "not a readable video" in failures[0][1]


class RandomDraws(Dataset):
    """Items are draws from torch, NumPy and Python generators, plus the worker id."""

    def __len__(self):
        return 8

    def __getitem__(self, index):
        worker = torch.utils.data.get_worker_info()
        return torch.tensor([torch.rand(()).item(), np.random.rand(), random.random(),
                             worker.id if worker else -1, index], dtype=torch.float64)


def draws(seed, epochs=1):
    from videotl.config import load_config

    cfg = load_config(None, [f"seed={seed}", "data.num_workers=2", "test.batch_size=1"])
    loader = build_loader(cfg, "test", dataset=RandomDraws())
    return [torch.cat(list(loader)) for _ in range(epochs)]


def test_workers_are_seeded_distinctly_and_reproducibly():
    first, second = draws(seed=1, epochs=2)
    assert torch.equal(first, draws(seed=1)[0])  # reproducible from the seed
    assert not torch.equal(first[:, :3], draws(seed=2)[0][:, :3])
    by_worker = {int(w): row[:3] for row, w in zip(first, first[:, 3])}
    assert set(by_worker) == {0, 1} and not torch.equal(by_worker[0], by_worker[1])
    assert not torch.equal(first[:, :3], second[:, :3])  # persistent workers: new draws
    for column in range(3):  # each generator (torch, NumPy, Python) differs between workers
        assert first[first[:, 3] == 0, column][0] != first[first[:, 3] == 1, column][0]


def test_loader_seed_differs_per_rank():
    assert len({loader_seed(0, rank) for rank in range(4)}) == 4
    assert loader_seed(5, 1) == loader_seed(5, 1)


@pytest.fixture
def process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)
    yield
    dist.destroy_process_group()


def test_distributed_loaders(synthetic_kinetics, process_group):
    cfg = small_data_config("kinetics", synthetic_kinetics)
    train = build_loader(cfg, "train")
    assert isinstance(train.sampler, DistributedSampler) and train.sampler.shuffle
    train.sampler.set_epoch(2)
    assert train.sampler.epoch == 2
    test = build_loader(cfg, "test", dataset=build_dataset(cfg, "test"))
    assert isinstance(test.sampler, ShardedEvalSampler) and len(test.sampler) == 60
