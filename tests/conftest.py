"""Shared test settings: deterministic seeds and a small thread count for 2-core machines."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def repo() -> Path:
    return REPO


# --- tiny synthetic datasets, generated once per test session --------------------------------
SYNTHETIC_SIZES = {"kinetics": (20, 10), "avid": (12, 6), "charades": (4, 2)}


def _synthetic(tmp_path_factory, kind: str) -> Path:
    from videotl.data.synthetic import make_synthetic_dataset

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
