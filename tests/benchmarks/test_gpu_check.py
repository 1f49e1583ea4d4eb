"""benchmarks/gpu_check.py without a GPU: the peak table and the FLOPs fraction, its arguments,
the report it writes, parts isolated in processes of their own (failures, timeouts), the refusal
to run without CUDA, and every part's code path on tiny shapes on the CPU."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from videotl.errors import InputError

SCRIPT = REPO / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    """``benchmarks/gpu_check.py`` as a module (the benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules["gpu_check"]


@pytest.mark.parametrize("name,peak,source", [
    ("NVIDIA H100 80GB HBM3", 989.0, "table: H100 SXM"),
    ("NVIDIA H100 PCIe", 756.0, "table: H100 PCIe"),
    ("NVIDIA H100 NVL", 835.0, "table: H100 NVL"),
    ("NVIDIA H200", 989.0, "table: H200"),
    ("NVIDIA GH200 480GB", 989.0, "table: GH200"),
    ("NVIDIA A100-SXM4-80GB", 312.0, "table: A100"),
    ("NVIDIA L40S", 362.0, "table: L40S"),
    ("NVIDIA L40", 181.0, "table: L40"),
    ("NVIDIA L4", 121.0, "table: L4"),
    ("NVIDIA A10", 125.0, "table: A10"),
    ("NVIDIA A10G", None, "unknown"),
    ("Tesla V100-SXM2-16GB", None, "unknown"),
])
def test_peak_table(gpu_check, name, peak, source):
    assert gpu_check.peak_bf16_tflops(name) == (peak, source)


def test_peak_fraction_counts_forward_and_backward(gpu_check):
    # 10 clips/s x 100 GFLOPs x 3 passes = 3 TFLOPS of a 1000 TFLOPS GPU.
    assert gpu_check.peak_fraction(10.0, 100.0, 1000.0) == 0.003
    assert gpu_check.peak_fraction(10.0, 100.0, None) is None


def test_arguments(gpu_check, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = gpu_check.parse_args([])
    assert (args.out, args.device, args.tiny, args.batch, args.budget) == (
        tmp_path / "output" / "gpu_check", "cuda", False, None, 450.0)
    assert args.parts == ["attention", "x2plus1d_m", "vivit_b16", "loader", "nccl"]
    assert args.data_root == tmp_path / "data" / "synthetic" / "kinetics"
    assert gpu_check.parse_args(["--parts", "nccl, attention"]).parts == ["nccl", "attention"]
    for argv, message in [
        (["--parts", "attention,atention"], "--parts: unknown part 'atention' (known: attention, "
                                            "x2plus1d_m, vivit_b16, loader, nccl)"),
        (["--device", "cpu"], "--device cpu measures nothing worth recording: add --tiny for a "
                              "smoke test of the code paths"),
        (["--device", "mps"], "--device 'mps': cuda or cpu"),
        (["--batch", "0"], "--batch 0: must be positive"),
    ]:
        with pytest.raises(InputError) as error:
            gpu_check.parse_args(argv)
        assert str(error.value) == message


def test_full_plan_uses_the_papers_shapes(gpu_check):
    plan = gpu_check.make_plan("cuda", False, None, "/data/k")
    assert plan.batch == 8 and plan.loader_workers == 8
    assert [(n.name, n.frames, n.size) for group in plan.networks.values() for n in group] == [
        ("X(2+1)D-M conv2d+conv1d", 64, 224), ("X(2+1)D-M conv2d+tokenlearner", 64, 224),
        ("ViViT-B/16x2", 32, 224), ("ViViT-B/16x2, TokenLearner 8 at 6", 32, 224)]
    assert (plan.attention[0].batch, plan.attention[0].tokens, plan.attention[0].channels) == (
        1, 512, 432)
    assert "device=cuda" in plan.nccl_overrides and "train.precision=bf16" in plan.nccl_overrides
    assert sum(plan.timeouts.values()) == 780


def report_parts(gpu_check):
    part = gpu_check.PartResult
    variant = {"name": "base", "input": [3, 8, 32, 32], "batch": 4, "gflops_per_clip": 50.0,
               "peak_mb": 1234.4, "step_s": 0.5, "x_baseline": 1.0, "clips_per_s": 8.0}
    return {
        "attention": part("failed", 3.25, "CUDA error: out of memory"),
        "x2plus1d_m": part("ok", 20.0, None, {"variants": [
            variant, {**variant, "name": "tl", "step_s": 0.25, "x_baseline": 0.5,
                      "clips_per_s": 16.0, "peak_mb": None}]}),
        "vivit_b16": part("not run", 0.0, "the time budget (--budget) was spent"),
        "loader": part("ok", 9.0, None, {
            "data_root": "/d", "videos": 200, "clip": [3, 8, 32, 32], "workers": 8, "batch": 4,
            "clips_per_s": 40.0, "clips": 160, "seconds": 4.0}),
        "nccl": part("ok", 30.0, None, {"world_size": 1, "backend": "nccl", "iterations": 4,
                                        "last_loss": 2.3, "seconds": 29.5}),
    }


MACHINE = {"date": "2026-12-01", "device": "cuda", "device_name": "NVIDIA H200",
           "torch": "2.14.1", "cuda": "13.0", "host": "gpu7", "tiny": False, "batch": 4,
           "peak_bf16_tflops": 1.2, "peak_source": "--peak-tflops"}


def test_report_keeps_every_part_and_marks_failures(gpu_check):
    document = gpu_check.combine(report_parts(gpu_check), dict(MACHINE))
    rows = document["parts"]["x2plus1d_m"]["result"]["variants"]
    # 8 clips/s x 50 GFLOPs x 3 = 1.2 TFLOPS: the whole (overridden) peak.
    assert [(row["achieved_tflops"], row["peak_fraction"]) for row in rows] == [
        (1.2, 1.0), (2.4, 2.0)]
    assert document["loader_vs_gpu"] == {"loader_clips_per_s": 40.0, "gpu_network": "tl",
                                         "gpu_clips_per_s": 16.0, "ratio": 2.5}
    assert document["parts"]["attention"] == {"status": "failed", "seconds": 3.25,
                                              "error": "CUDA error: out of memory", "result": {}}
    assert json.loads(json.dumps(document)) == document
    assert gpu_check.to_markdown(document) == """\
# GPU check (`benchmarks/gpu_check.sh`)

- Date: 2026-12-01
- Device: NVIDIA H200 (cuda); torch 2.14.1, CUDA 13.0; host gpu7
- Dense bf16 peak: 1.2 TFLOPS (--peak-tflops)
- Batch 4 clips per training step

| part | status | seconds | error |
|---|---|---|---|
| attention | failed | 3.2 | CUDA error: out of memory |
| x2plus1d_m | ok | 20.0 |  |
| vivit_b16 | not run | 0.0 | the time budget (--budget) was spent |
| loader | ok | 9.0 |  |
| nccl | ok | 30.0 |  |

## Vector attention against the float64 formula

**failed**: CUDA error: out of memory

## bf16 training steps

Forward, cross-entropy, backward and SGD step under bf16 autocast; "x baseline": median over \
rounds of the step time over the first row's in the same round; TFLOPS = clips/s x GFLOPs per \
clip x 3; peak memory: the network's weights, gradients, optimiser state, batch and activations.

| network | input | GFLOPs/clip | step s | x baseline | clips/s | peak MB | TFLOPS | of bf16 peak |
|---|---|---|---|---|---|---|---|---|
| base | 4 x [3, 8, 32, 32] | 50.0 | 0.5000 | 1.00 | 8.00 | 1234 | 1.2 | 100.0% |
| tl | 4 x [3, 8, 32, 32] | 50.0 | 0.2500 | 0.50 | 16.00 | - | 2.4 | 200.0% |

vivit_b16: **not run**: the time budget (--budget) was spent

## Data loader against the GPU

Synthetic Kinetics-like set under `/d` (200 training videos), clips [3, 8, 32, 32], 8 workers, \
batch 4: **40.0 clips/s** (160 clips in 4.00 s after the first batches).
tl consumes 16.0 clips/s: loader / GPU = **2.50** (above 1: the loader keeps up).

## torchrun, one process

`torchrun --standalone --nproc_per_node=1 tools/train_net.py` on the synthetic set: a process \
group of 1 on the **nccl** backend, 4 iterations, last loss 2.3000, 29.5 s in all.
"""


def test_unknown_peak_and_missing_parts(gpu_check):
    parts = report_parts(gpu_check)
    del parts["loader"]
    document = gpu_check.combine(parts, {**MACHINE, "peak_bf16_tflops": None,
                                         "peak_source": "unknown"})
    text = gpu_check.to_markdown(document)
    assert "- Dense bf16 peak: unknown (unknown)" in text
    assert "| base | 4 x [3, 8, 32, 32] | 50.0 | 0.5000 | 1.00 | 8.00 | 1234 | 1.2 | unknown |" \
        in text
    assert "## Data loader against the GPU\n\nNot requested.\n" in text
    assert document["loader_vs_gpu"] is None


@pytest.mark.parametrize("code,status,error", [
    ("import json,sys; open(sys.argv[1], 'w').write(json.dumps({'x': 1}))", "ok", None),
    ("print('working'); print('error: the GPU fell off'); raise SystemExit(1)", "failed",
     "the GPU fell off"),
    ("raise RuntimeError('CUDA error: an illegal memory access')", "failed",
     "RuntimeError: CUDA error: an illegal memory access"),
    ("import time; time.sleep(60)", "failed", "timed out after 2 s"),
])
def test_parts_run_in_processes_of_their_own(gpu_check, tmp_path, code, status, error):
    result_file = tmp_path / "result.json"
    part = gpu_check.run_isolated([sys.executable, "-c", code, str(result_file)], 2,
                                  result_file, tmp_path / "part.log")
    assert (part.status, part.error) == (status, error)
    assert part.result == ({"x": 1} if status == "ok" else {})
    assert part.seconds < 30


def no_gpu_environment():
    return {**os.environ, "CUDA_VISIBLE_DEVICES": ""}


@pytest.mark.parametrize("extra", [[], ["--dry-run"]])
def test_without_a_gpu_it_says_so_and_writes_nothing(tmp_path, extra):
    result = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "out"), *extra],
                            capture_output=True, text=True, env=no_gpu_environment(), timeout=120)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: no CUDA GPU is present (torch ")
    assert result.stderr.endswith("): nothing was measured and nothing written. Run it on a GPU "
                                  "machine; --device cpu --tiny is a smoke test of the code "
                                  "paths\n")
    assert not (tmp_path / "out").exists()


def test_tiny_parts_run_on_the_cpu(gpu_check, synthetic_kinetics):
    plan = gpu_check.make_plan("cpu", True, None, str(synthetic_kinetics))
    cases = gpu_check.part_attention(plan)["cases"]
    assert [(case["case"], case["dtype"], case["finite"]) for case in cases] == [
        ("tiny", "float32", True), ("tiny", "bfloat16", True)]
    # float32: the C kernel, within the tests' 1e-5 of the float64 formula; bf16 rounds (2^-8).
    assert max(cases[0]["max_rel"].values()) <= 1e-5
    assert 1e-4 < max(cases[1]["max_rel"].values()) < 3e-2

    rows = gpu_check.part_networks(plan, "x2plus1d_m")["variants"]
    assert [row["name"] for row in rows] == ["x2plus1d_tiny conv2d+conv1d",
                                             "x2plus1d_tiny conv2d+tokenlearner"]
    assert rows[0]["x_baseline"] == 1.0 and all(row["peak_mb"] is None for row in rows)
    for row in rows:
        assert row["clips_per_s"] == 2 / row["step_s"] and len(row["rounds_s"]) == 2
        assert row["gflops_per_clip"] > 0 and row["input"] == [3, 4, 32, 32]

    loader = gpu_check.part_loader(plan)
    assert (loader["clips"], loader["clip"], loader["workers"], loader["videos"]) == (
        8, [3, 4, 32, 32], 2, 20)
    assert loader["clips_per_s"] == 8 / loader["seconds"]


def test_a_failing_part_leaves_the_others_written(tmp_path, synthetic_kinetics):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--out", str(out),
         "--data-root", str(not_a_folder / "data"), "--parts", "loader,attention"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    document = json.loads((out / "gpu_check.json").read_text())
    assert list(document["parts"]) == ["loader", "attention"]
    assert document["parts"]["loader"]["status"] == "failed"
    assert document["parts"]["loader"]["error"] == f"{not_a_folder}: File exists"
    assert document["parts"]["attention"]["status"] == "ok"
    text = (out / "gpu_check.md").read_text()
    assert "| loader | failed | " in text and f"**failed**: {not_a_folder}: File exists" in text
    assert sorted(p.name for p in (out / "logs").iterdir()) == ["attention.log", "loader.log"]


@pytest.mark.slow  # every part in a process of its own, torchrun included: minutes on 2 cores
def test_the_whole_tiny_check_on_the_cpu(tmp_path, synthetic_kinetics):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--out", str(out),
         "--data-root", str(synthetic_kinetics), "--peak-tflops", "2"],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads((out / "gpu_check.json").read_text())
    assert {name: part["status"] for name, part in document["parts"].items()} == {
        name: "ok" for name in ("attention", "x2plus1d_m", "vivit_b16", "loader", "nccl")}
    nccl = document["parts"]["nccl"]["result"]
    assert (nccl["backend"], nccl["world_size"], nccl["iterations"]) == ("gloo", 1, 2)
    for row in document["parts"]["vivit_b16"]["result"]["variants"]:
        assert row["peak_fraction"] == row["clips_per_s"] * row["gflops_per_clip"] * 3 / 2000
    ratio = document["loader_vs_gpu"]
    assert ratio["ratio"] == ratio["loader_clips_per_s"] / ratio["gpu_clips_per_s"]
    assert Path(out / "gpu_check.md").read_text().startswith("# GPU check")
