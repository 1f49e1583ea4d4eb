"""Shared test settings: deterministic seeds and a small thread count for 2-core machines."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from videotl.config import load_config
from videotl.data.synthetic import make_synthetic_dataset
from videotl.models import build_model
from videotl.models.complexity import measure_complexity

REPO = Path(__file__).resolve().parent.parent
CHARADES_CONFIG = REPO / "configs" / "charades" / "x2plus1d_m_tokenlearner_64f.yaml"


@pytest.fixture(autouse=True)
def _seed() -> Iterator[None]:
    """Seed 0 for every test, and torch's thread count as the test found it (a run sets it
    from ``num_threads``, for the whole process)."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="session")
def _kernel_cache(tmp_path_factory) -> Iterator[None]:
    """Builds the C kernels into a folder of this test session, not the user's cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("VIDEOTL_CACHE_DIR", str(tmp_path_factory.mktemp("kernel_cache")))
    yield
    patch.undo()


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def res5_module():
    """``res5_module(*overrides)``: the counts ``tools/model_stats.py`` reports for the last res5
    space-time module of the Charades X(2+1)D-M config with ``overrides`` (input 8x8x64, C = 432,
    for a 64 x 256 x 256 clip). Cached: counting a network takes about a second."""
    @functools.lru_cache(maxsize=None)
    def measure(*overrides: str):
        cfg = load_config(CHARADES_CONFIG, list(overrides))
        stats = measure_complexity(lambda: build_model(cfg), [3, 64, 256, 256])
        module = stats.modules[-1]
        assert module.name == "stages.3.6.space_time" and module.input == [432, 64, 8, 8]
        return module

    return measure


# --- tiny synthetic datasets, generated once per test session --------------------------------
SYNTHETIC_SIZES = {"kinetics": (20, 10), "avid": (12, 6), "charades": (4, 2)}


def _synthetic(tmp_path_factory, kind: str) -> Path:
    root = tmp_path_factory.mktemp(f"synthetic_{kind}")
    train, evaluation = SYNTHETIC_SIZES[kind]
    make_synthetic_dataset(kind, root, seed=0, train_videos=train, eval_videos=evaluation,
                           short_side=32, processes=2)
    return root


@pytest.fixture(scope="session")
def synthetic_kinetics(tmp_path_factory) -> Path:
    return _synthetic(tmp_path_factory, "kinetics")


@pytest.fixture(scope="session")
def synthetic_avid(tmp_path_factory) -> Path:
    return _synthetic(tmp_path_factory, "avid")


@pytest.fixture(scope="session")
def synthetic_charades(tmp_path_factory) -> Path:
    return _synthetic(tmp_path_factory, "charades")
