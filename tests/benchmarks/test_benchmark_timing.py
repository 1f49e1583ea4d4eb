"""The benchmarks' timing rules: alternating rounds and per-round ratios."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch

from conftest import REPO


def benchmark_common():
    """``benchmarks/common.py`` (the benchmarks are scripts, not part of the package)."""
    if "benchmark_common" not in sys.modules:
        spec = importlib.util.spec_from_file_location("benchmark_common",
                                                      REPO / "benchmarks" / "common.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["benchmark_common"] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules["benchmark_common"]


def test_measure_runs_every_variant_each_round_starting_one_later():
    common = benchmark_common()
    calls = []
    runs = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    rows = common.measure(runs, torch.device("cpu"), repeats=3, warmup=1,
                          peaks_mb={"a": 1.0, "b": 2.0, "c": 4.0})
    assert "".join(calls) == "abc" + "abc" + "bca" + "cab"  # warm-up, then 3 rounds
    assert [row.name for row in rows] == ["a", "b", "c"]
    assert all(len(row.rounds) == 3 for row in rows)
    assert [row.peak_mb for row in rows] == [1.0, 2.0, 4.0]


def test_time_ratio_is_the_median_of_per_round_ratios():
    common = benchmark_common()
    baseline = common.Measurement("base", 2.0, 100.0, (1.0, 2.0, 4.0))
    variant = common.Measurement("variant", 1.8, 50.0, (1.1, 1.8, 4.4))
    # Per round 1.1, 0.9, 1.1: the median is 1.1, where the medians' ratio would say 0.9.
    time_ratio, memory_ratio = variant.ratio_to(baseline)
    assert time_ratio == pytest.approx(1.1) and memory_ratio == 0.5
    unpaired = common.Measurement("other", 3.0, 100.0, (3.0,))
    assert unpaired.ratio_to(baseline)[0] == pytest.approx(1.5)
