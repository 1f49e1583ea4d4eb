"""Samplers: epoch-seeded shuffling for training, exact sharding for evaluation."""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler


class EpochShuffleSampler(Sampler[int]):
    """A fresh permutation of ``range(num_items)`` each epoch, drawn from ``seed + epoch``.

    The single-process counterpart of ``DistributedSampler(shuffle=True)``: call
    ``set_epoch(epoch)`` before each epoch; the same seed and epoch give the same order.
    """

    def __init__(self, num_items: int, seed: int = 0) -> None:
        self.num_items, self.seed, self.epoch = num_items, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.num_items, generator=generator).tolist())

    def __len__(self) -> int:
        return self.num_items


class ShardedEvalSampler(Sampler[int]):
    """Rank ``rank`` of ``num_replicas`` gets the contiguous block
    ``[rank * N // R, (rank + 1) * N // R)``: every item goes to exactly one rank, nothing is
    padded or repeated, and the ranks' counts differ by at most one.

    (``DistributedSampler`` pads the last ranks with repeated items so that all have the same
    count, which would count those views twice in evaluation.)
    """

    def __init__(self, num_items: int, num_replicas: int = 1, rank: int = 0) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside [0, {num_replicas})")
        self.num_items, self.num_replicas, self.rank = num_items, num_replicas, rank
        self.start = rank * num_items // num_replicas
        self.stop = (rank + 1) * num_items // num_replicas

    def set_epoch(self, epoch: int) -> None:
        """No effect (the order is fixed); present so that loaders are used uniformly."""

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        return self.stop - self.start
