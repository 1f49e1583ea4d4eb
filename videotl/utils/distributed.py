"""Everything about running in several processes lives here; the rest of the code asks these
helpers and never branches on whether it is distributed.

Launch with ``torchrun --nproc_per_node=N tools/train_net.py ...``: ``init_distributed`` reads the
environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and joins the
process group (NCCL on CUDA, gloo on CPU). Without torchrun it does nothing: one process.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from videotl.config import ConfigError


# What torchrun (or any launcher of PyTorch's env:// rendezvous) sets for each process.
LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def launched() -> bool:
    """Whether a launcher such as torchrun started this process (its variables are set)."""
    return all(name in os.environ for name in LAUNCHER_VARIABLES)


def init_distributed(device: torch.device) -> None:
    """Joins the process group when launched by torchrun, also as its only process (a group of
    one runs the multi-process code: DDP, NCCL on one GPU); no-op otherwise or if joined."""
    if dist.is_initialized() or not (launched() or int(os.environ.get("WORLD_SIZE", "1")) > 1):
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)


def backend() -> str | None:
    """The process group's backend (``"nccl"``, ``"gloo"``), None outside one."""
    return str(dist.get_backend()) if dist.is_initialized() else None


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def get_rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_distributed() -> bool:
    """Whether this process is in a process group (of any size, one included)."""
    return dist.is_available() and dist.is_initialized()


def is_main_process() -> bool:
    return get_rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def select_device(name: str) -> torch.device:
    """``"auto"``: this process's GPU under torchrun (LOCAL_RANK) when CUDA exists, else CPU;
    ``"cuda"`` without an index: this process's GPU (CUDA must exist)."""
    if name == "auto":
        name = f"cuda:{local_rank()}" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name!r}: CUDA is not available on this machine; "
                              "use device=cpu or device=auto")
        if device.index is None:
            # torch.cuda.set_device and DDP's device_ids need an index.
            device = torch.device("cuda", local_rank())
        torch.cuda.set_device(device)
    return device


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_gather_objects(obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order (``[obj]`` in one process)."""
    if not dist.is_initialized():
        return [obj]
    gathered: list[Any] = [None] * get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel in a process group, else the model itself. On CUDA, BatchNorm
    statistics are synchronised across processes (SyncBatchNorm has no CPU implementation)."""
    if not dist.is_initialized():
        return model
    if device.type != "cuda":
        return nn.parallel.DistributedDataParallel(model)
    model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index])


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain model inside ``torch.compile`` and DistributedDataParallel wrappers."""
    model = getattr(model, "_orig_mod", model)
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
