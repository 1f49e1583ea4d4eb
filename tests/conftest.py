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
