"""videotl.utils.distributed: when a process joins a process group, and which GPU it takes."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist

from videotl.config import ConfigError
from videotl.utils import distributed

LAUNCHER = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK")


@pytest.fixture
def no_launcher(monkeypatch):
    for name in LAUNCHER:
        monkeypatch.delenv(name, raising=False)
    yield monkeypatch
    distributed.shutdown_distributed()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_without_a_launcher_there_is_no_process_group(no_launcher):
    distributed.init_distributed(torch.device("cpu"))
    assert not distributed.is_distributed() and distributed.backend() is None
    assert (distributed.get_rank(), distributed.get_world_size()) == (0, 1)


def test_torchrun_with_one_process_joins_a_group_of_one(no_launcher):
    # What torchrun --nproc_per_node=1 sets: the multi-process code runs (NCCL on one GPU).
    for name, value in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0",
                        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}.items():
        no_launcher.setenv(name, value)
    distributed.init_distributed(torch.device("cpu"))
    assert distributed.is_distributed() and dist.get_world_size() == 1
    assert distributed.backend() == "gloo"
    distributed.init_distributed(torch.device("cpu"))  # joined already: nothing happens


def test_cuda_without_an_index_is_this_processs_gpu(no_launcher):
    chosen = []
    no_launcher.setattr(torch.cuda, "is_available", lambda: True)
    no_launcher.setattr(torch.cuda, "set_device", chosen.append)
    no_launcher.setenv("LOCAL_RANK", "3")
    assert distributed.select_device("cuda") == torch.device("cuda", 3)
    assert distributed.select_device("auto") == torch.device("cuda", 3)
    assert distributed.select_device("cuda:1") == torch.device("cuda", 1)
    assert chosen == [torch.device("cuda", 3), torch.device("cuda", 3), torch.device("cuda", 1)]


def test_cuda_without_cuda_is_a_config_error(no_launcher):
    no_launcher.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError) as error:
        distributed.select_device("cuda")
    assert str(error.value) == ("device='cuda': CUDA is not available on this machine; use "
                                "device=cpu or device=auto")
