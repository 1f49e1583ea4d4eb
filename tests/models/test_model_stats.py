import json
import subprocess
import sys

import pytest

from videotl.models.complexity import count_parameters, measure_complexity
from videotl.models.layers import TokenLearnerModule

CONFIG = "configs/charades/x2plus1d_m_tokenlearner_64f.yaml"


def run_tool(*args, cwd):
    return subprocess.run(
        [sys.executable, "tools/model_stats.py", *args], cwd=cwd, capture_output=True, text=True
    )


def test_json_output(repo):
    result = run_tool("--config", CONFIG, "--json", cwd=repo)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert set(stats) == {"params", "gmacs", "gflops", "input", "modules"}
    assert stats["input"] == [3, 64, 256, 256]
    assert stats["gflops"] == pytest.approx(2 * stats["gmacs"])
    assert len(stats["modules"]) == 3 + 5 + 11 + 7
    for module in stats["modules"]:
        assert set(module) == {"name", "kind", "input", "params", "gmacs", "gflops"}
        assert module["gflops"] == pytest.approx(2 * module["gmacs"])
    res5 = stats["modules"][-1]
    assert res5["kind"] == "conv2d+tokenlearner" and res5["input"] == [432, 64, 8, 8]
    assert sum(m["params"] for m in stats["modules"]) < stats["params"]
    assert sum(m["gmacs"] for m in stats["modules"]) < stats["gmacs"]


def test_overrides_and_table_output(repo):
    result = run_tool("--config", CONFIG, "model.space_time_module=conv2d+conv1d",
                      "data.test_crop_size=224", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert "[3, 64, 224, 224]" in result.stdout and "conv2d+conv1d" in result.stdout
    assert "conv2d+tokenlearner" not in result.stdout


def test_bad_override_exits_with_a_message(repo):
    result = run_tool("--config", CONFIG, "model.space_time_modul=x", cwd=repo)
    assert result.returncode == 2
    assert "unknown config key 'model.space_time_modul'" in result.stderr
    assert "model.space_time_module" in result.stderr and "Traceback" not in result.stderr


def test_standalone_module_counts():
    stats = measure_complexity(
        lambda: TokenLearnerModule(channels=16, num_frames=4, num_tokens=2),
        [16, 4, 6, 6],
        is_reported=lambda m: isinstance(m, TokenLearnerModule),
    )
    assert stats.params == count_parameters(TokenLearnerModule(16, 4, 2))
    assert stats.modules[0].name == "" and stats.modules[0].gmacs == 0  # root is not a child


def test_multiply_adds_agree_with_fvcore_on_convolutions_and_linear_layers():
    fvcore = pytest.importorskip("fvcore.nn")
    import torch

    from videotl.models.backbones.x2plus1d import x2plus1d_tiny

    model = x2plus1d_tiny(num_classes=7, num_frames=4).eval()  # conv2d+conv1d: no attention
    ours = measure_complexity(lambda: x2plus1d_tiny(num_classes=7, num_frames=4), [3, 4, 32, 32])
    counted = fvcore.FlopCountAnalysis(model, torch.randn(1, 3, 4, 32, 32))
    counted.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    by_operator = counted.by_operator()
    macs = by_operator["conv"] + by_operator["linear"]  # fvcore counts one per multiply-add
    assert ours.gmacs * 1e9 == pytest.approx(macs, rel=1e-9)
