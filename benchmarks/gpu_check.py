#!/usr/bin/env python3
"""GPU check: the figures BENCHMARKS.md needs from one GPU (an H100/H200), within 8 minutes:
every part has its own timeout and the whole a time budget (--budget, 450 s).

Parts, each run in a process of its own (a crash, an out-of-memory error or a timeout fails that
part only; the others are still measured and written):

  attention    the vector attention (videotl.models.layers.vector_attention, PyTorch's SDPA
               kernel on CUDA) in float32 and bf16 against the float64 formula
               (vector_attention_reference), output and the gradients of q, k, v: the largest
               absolute error, and that error over the reference's largest value
  x2plus1d_m   bf16 training steps (forward, cross-entropy, backward, SGD) of X(2+1)D-M with
               conv2d+conv1d and with conv2d+tokenlearner res5 modules, 64 x 224^2
               (configs/kinetics400/x2plus1d_m_tokenlearner.yaml)
  vivit_b16    the same for ViViT-B/16x2 without and with 8 TokenLearner tokens at layer 6,
               32 x 224^2 (configs/kinetics400/vivit_b16.yaml, vivit_b16_tl8at6.yaml)
  loader       training clips per second of the data loader with 8 workers on the synthetic
               Kinetics-like set (generated under --data-root if absent) at X(2+1)D-M's clip
               shape, against the clips per second the X(2+1)D-M TokenLearner step consumes
  nccl         torchrun --nproc_per_node=1 tools/train_net.py on the synthetic set for a few
               iterations: device cuda, a process group of one with the NCCL backend, bf16

Training steps report clips/s, the peak memory of each network (torch.cuda.max_memory_allocated
above what was allocated before it was built: weights, gradients, optimiser state, the batch and
the step's activations), and the fraction of the GPU's dense bf16 peak that the counted FLOPs
imply: clips/s x GFLOPs per clip (tools/model_stats.py's count, 2 x multiply-adds of the forward
pass) x 3 (forward + backward) / peak. The peak comes from the table PEAK_BF16_TFLOPS by
torch.cuda.get_device_name, or --peak-tflops; unknown GPUs say "unknown". Variants of a pair are
timed in alternating rounds (benchmarks/common.py) and compared in the same rounds.

Writes OUT/gpu_check.md and OUT/gpu_check.json (OUT: --out, default output/gpu_check) and each
part's console output to OUT/logs/<part>.log. Exit status 0 when every part succeeded, 1 when one
failed. Without a CUDA GPU it says so and stops with status 1 before measuring anything;
--dry-run prints the plan. --device cpu --tiny runs every part with tiny shapes on the CPU (a
smoke test of the code paths; its figures mean nothing).

    benchmarks/gpu_check.sh [--out DIR] [--batch 8] [--peak-tflops T] [--parts a,b] [--dry-run]
    python benchmarks/gpu_check.py --device cpu --tiny --out /tmp/gpu_check_smoke
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# torch and the packages using it are imported where they are used, after parsing (--help and
# argument errors at once; the parent process loads torch only to find and name the GPU).
from benchmarks.common import measure  # noqa: E402
from benchmarks.networks import train_step  # noqa: E402
from videotl.config import load_config  # noqa: E402
from videotl.errors import InputError, RunError  # noqa: E402
from videotl.utils.tool_errors import run_tool  # noqa: E402

if TYPE_CHECKING:
    import torch

# Dense (no sparsity) bf16 tensor-core peaks in TFLOPS from NVIDIA's data sheets, matched in order
# against torch.cuda.get_device_name (e.g. "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB").
PEAK_BF16_TFLOPS: tuple[tuple[str, str, float], ...] = (
    (r"GH200", "GH200", 989.0),
    (r"H200", "H200", 989.0),
    (r"H100.*PCIe", "H100 PCIe", 756.0),
    (r"H100.*NVL", "H100 NVL", 835.0),
    (r"H100|H800", "H100 SXM", 989.0),
    (r"B200", "B200", 2250.0),
    (r"A100|A800", "A100", 312.0),
    (r"L40S", "L40S", 362.0),
    (r"L40\b", "L40", 181.0),
    (r"\bL4\b", "L4", 121.0),
    (r"\bA10\b", "A10", 125.0),
)

FLOP_PASSES = 3  # a training step: the forward pass and a backward pass of about twice its cost


def peak_bf16_tflops(device_name: str) -> tuple[float | None, str]:
    """``(peak, where it came from)`` for ``device_name``; ``(None, "unknown")`` if no row
    matches."""
    for pattern, label, peak in PEAK_BF16_TFLOPS:
        if re.search(pattern, device_name):
            return peak, f"table: {label}"
    return None, "unknown"


def peak_fraction(clips_per_second: float, gflops_per_clip: float,
                  peak_tflops: float | None) -> float | None:
    """Fraction of the peak that ``clips_per_second`` training steps of ``gflops_per_clip``
    forward GFLOPs imply: ``clips/s * GFLOPs * 3 / (peak * 1000)``; None without a peak."""
    if peak_tflops is None:
        return None
    return clips_per_second * gflops_per_clip * FLOP_PASSES / (peak_tflops * 1000.0)


# --- what to measure ------------------------------------------------------------------------

@dataclass(frozen=True)
class AttentionCase:
    name: str
    batch: int
    tokens: int
    channels: int
    scale: float  # standard deviation of q and k: the logits' spread


@dataclass(frozen=True)
class Network:
    name: str
    config: str  # relative to the repository
    overrides: tuple[str, ...]
    frames: int
    size: int


@dataclass(frozen=True)
class Plan:
    """Every shape and size of a check; ``make_plan`` builds the full one or the tiny one."""

    device: str
    tiny: bool
    batch: int
    attention: tuple[AttentionCase, ...]
    networks: dict[str, tuple[Network, ...]]
    warmup: int
    repeats: int
    data_root: str
    synthetic: tuple[str, ...]  # overrides that generate the synthetic set (the same for all)
    loader_workers: int
    loader_overrides: tuple[str, ...]
    loader_skip: int  # batches not timed (workers starting)
    loader_batches: int  # batches timed
    nccl_overrides: tuple[str, ...]
    nccl_iterations: int
    timeouts: dict[str, int] = field(default_factory=dict)


PARTS = ("attention", "x2plus1d_m", "vivit_b16", "loader", "nccl")
TIMEOUTS = {"attention": 120, "x2plus1d_m": 180, "vivit_b16": 150, "loader": 180, "nccl": 150}
X2PLUS1D = "configs/kinetics400/x2plus1d_m_tokenlearner.yaml"
VIVIT = "configs/kinetics400/vivit_b16.yaml"
SYNTHETIC = "configs/kinetics400/synthetic.yaml"
DEMO = "configs/demo/synthetic_kinetics.yaml"
TINY_CLIP = ("data.num_frames=4", "data.frame_stride=8", "data.train_jitter_scales=[32, 40]",
             "data.train_crop_size=32", "data.test_crop_size=32")


def make_plan(device: str, tiny: bool, batch: int | None, data_root: str) -> Plan:
    """The full check (the paper's shapes) or, with ``tiny``, the same code paths on shapes a CPU
    runs in seconds."""
    if not tiny:
        batch = batch or 8
        clip = ("data.num_frames=64", "data.frame_stride=1", "data.train_jitter_scales=[256, 320]",
                "data.train_crop_size=224", "data.test_crop_size=224")
        return Plan(
            device=device, tiny=False, batch=batch,
            attention=(
                AttentionCase("X(2+1)D-M res5: 8 tokens x 64 frames, 432 channels", 1, 512, 432,
                              0.5),
                AttentionCase("wide logits", 2, 256, 64, 4.0),
            ),
            networks={
                "x2plus1d_m": (
                    Network("X(2+1)D-M conv2d+conv1d", X2PLUS1D,
                            ("model.space_time_module=conv2d+conv1d", *clip), 64, 224),
                    Network("X(2+1)D-M conv2d+tokenlearner", X2PLUS1D,
                            ("model.space_time_module=conv2d+tokenlearner", *clip), 64, 224),
                ),
                "vivit_b16": (
                    Network("ViViT-B/16x2", VIVIT, (), 32, 224),
                    Network("ViViT-B/16x2, TokenLearner 8 at 6",
                            "configs/kinetics400/vivit_b16_tl8at6.yaml", (), 32, 224),
                ),
            },
            warmup=3, repeats=10, data_root=data_root,
            synthetic=(f"data.root={data_root}", "data.synthetic=true",
                       "data.synthetic_train_videos=200", "data.synthetic_eval_videos=50",
                       "data.synthetic_short_side=128"),
            loader_workers=8, loader_overrides=clip, loader_skip=8, loader_batches=40,
            nccl_overrides=(f"device={device}", "train.precision=bf16", "train.batch_size=8",
                            "data.num_workers=4", "train.max_iters=4"),
            nccl_iterations=4, timeouts=dict(TIMEOUTS))
    batch = batch or 2
    return Plan(
        device=device, tiny=True, batch=batch,
        attention=(AttentionCase("tiny", 2, 24, 12, 1.0),),
        networks={
            "x2plus1d_m": (
                Network("x2plus1d_tiny conv2d+conv1d", DEMO,
                        ("model.space_time_module=conv2d+conv1d", *TINY_CLIP), 4, 32),
                Network("x2plus1d_tiny conv2d+tokenlearner", DEMO,
                        ("model.space_time_module=conv2d+tokenlearner", *TINY_CLIP), 4, 32),
            ),
            "vivit_b16": (
                Network("vivit_tiny", VIVIT, ("model.name=vivit_tiny", *TINY_CLIP), 4, 32),
                Network("vivit_tiny_tl4at2", VIVIT, ("model.name=vivit_tiny_tl4at2", *TINY_CLIP),
                        4, 32),
            ),
        },
        warmup=1, repeats=2, data_root=data_root,
        # The sizes of the test suite's tiny Kinetics-like set, so the tests can lend it theirs.
        synthetic=(f"data.root={data_root}", "data.synthetic=true",
                   "data.synthetic_train_videos=20", "data.synthetic_eval_videos=10",
                   "data.synthetic_short_side=32"),
        loader_workers=2, loader_overrides=TINY_CLIP, loader_skip=1, loader_batches=4,
        nccl_overrides=(f"device={device}", "train.batch_size=2", "data.num_workers=0",
                        "train.max_iters=2", *TINY_CLIP),
        nccl_iterations=2, timeouts={part: 120 for part in PARTS})


# --- the parts, each run in a child process -------------------------------------------------

def part_attention(plan: Plan) -> dict[str, Any]:
    import torch

    device = torch.device(plan.device)
    rows = []
    for case in plan.attention:
        for dtype in (torch.float32, torch.bfloat16):
            rows.append(attention_errors(case, dtype, device))
    return {"cases": rows}


def attention_errors(case: AttentionCase, dtype: torch.dtype,
                     device: torch.device) -> dict[str, Any]:
    """Output and gradients of ``vector_attention`` in ``dtype`` on ``device`` against the
    float64 formula on the same (``dtype``-rounded) inputs and output gradient."""
    import torch

    from videotl.models.layers import vector_attention, vector_attention_reference

    generator = torch.Generator().manual_seed(0)
    shape = (case.batch, case.tokens, case.channels)
    q = (case.scale * torch.randn(shape, generator=generator)).to(dtype)
    k = (case.scale * torch.randn(shape, generator=generator)).to(dtype)
    v = torch.randn(shape, generator=generator).to(dtype)
    grad = torch.randn(shape, generator=generator).to(dtype)

    def run(function: Callable, tensors: list[torch.Tensor], out_grad: torch.Tensor):
        inputs = [t.to(device).requires_grad_() for t in tensors]
        out = function(*inputs)
        return [out, *torch.autograd.grad(out, inputs, out_grad.to(device))]

    got = run(vector_attention, [q, k, v], grad)
    want = run(vector_attention_reference, [t.double() for t in (q, k, v)], grad.double())
    names = ("output", "dq", "dk", "dv")
    max_abs = {name: (a.double() - b).abs().max().item() for name, a, b in zip(names, got, want)}
    largest = {name: b.abs().max().item() for name, b in zip(names, want)}
    return {
        "case": case.name, "shape": list(shape), "scale": case.scale,
        "dtype": str(dtype).removeprefix("torch."),
        "max_abs": max_abs,
        "max_rel": {name: max_abs[name] / max(largest[name], 1e-30) for name in names},
        "finite": all(bool(torch.isfinite(a).all()) for a in got),
    }


def part_networks(plan: Plan, group: str) -> dict[str, Any]:
    import torch

    from videotl.models import build_model
    from videotl.models.complexity import measure_complexity

    device = torch.device(plan.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as training does (videotl.engine.run)
    runs, rows = {}, []
    for network in plan.networks[group]:
        cfg = load_config(REPO / network.config, list(network.overrides))
        shape = [3, network.frames, network.size, network.size]
        gflops = measure_complexity(lambda: build_model(cfg), shape).gflops
        before = _allocated_mb(device)
        model = build_model(cfg).to(device)
        clips = torch.randn(plan.batch, *shape, device=device)
        run = train_step(model, clips, True)
        for _ in range(plan.warmup):
            run()
        peak = None
        if device.type == "cuda":
            # After the warm-up: cuDNN's algorithm search allocates workspaces a step does not.
            # The peak of one step (weights, gradients, optimiser state, batch, activations)
            # above what was allocated before this network.
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            run()
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device) / 2**20 - before
        runs[network.name] = run
        rows.append({"name": network.name, "config": network.config,
                     "overrides": list(network.overrides), "input": shape, "batch": plan.batch,
                     "gflops_per_clip": gflops, "peak_mb": peak})
    timed = measure(runs, device, plan.repeats, warmup=0)
    for row, measured in zip(rows, timed):
        ratio, _ = measured.ratio_to(timed[0])
        row.update(step_s=measured.seconds, x_baseline=ratio,
                   clips_per_s=plan.batch / measured.seconds, rounds_s=list(measured.rounds))
    return {"variants": rows, "precision": "bf16 autocast"}


def _allocated_mb(device: torch.device) -> float:
    import torch

    if device.type != "cuda":
        return 0.0
    torch.cuda.synchronize(device)
    return torch.cuda.memory_allocated(device) / 2**20


def part_loader(plan: Plan) -> dict[str, Any]:
    from videotl.data import build_loader

    overrides = [*plan.synthetic, *plan.loader_overrides, f"train.batch_size={plan.batch}",
                 f"data.num_workers={plan.loader_workers}"]
    cfg = load_config(REPO / SYNTHETIC, overrides)
    loader = build_loader(cfg, "train")  # generates the synthetic set first if absent
    wanted = plan.loader_skip + plan.loader_batches
    seen, clips, start, epoch = 0, 0, 0.0, 0
    while seen < wanted:
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            seen += 1
            if seen == plan.loader_skip:
                start = time.perf_counter()
            elif seen > plan.loader_skip:
                clips += batch["video"].shape[0]
            if seen == wanted:
                break
        epoch += 1
    seconds = time.perf_counter() - start
    return {"workers": plan.loader_workers, "batch": plan.batch,
            "clip": list(batch["video"].shape[1:]), "clips": clips, "seconds": seconds,
            "clips_per_s": clips / seconds, "data_root": plan.data_root,
            "videos": loader.dataset.num_videos}


def part_nccl(plan: Plan, out: Path) -> dict[str, Any]:
    run_dir = out / "nccl_run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
        str(REPO / "tools" / "train_net.py"), "--config", str(REPO / DEMO), *plan.synthetic,
        f"output_dir={run_dir}", "train.auto_resume=false", "train.eval_period=0",
        "train.final_test=false", "train.log_period=1", *plan.nccl_overrides,
    ]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        raise RunError(f"torchrun exited with status {result.returncode}: "
                       f"{_last_line(result.stderr) or _last_line(result.stdout)}")
    log = (run_dir / "log.txt").read_text()
    group = re.search(r"process group of (\d+) processes, (\w+) backend", log)
    if group is None:
        raise RunError(f"{run_dir / 'log.txt'} does not say that a process group was joined")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [row for row in rows if row.get("type") == "iteration"]
    expected = "nccl" if plan.device == "cuda" else "gloo"
    if group.group(2) != expected or len(steps) != plan.nccl_iterations:
        raise RunError(f"expected {plan.nccl_iterations} iterations on the {expected} backend; "
                       f"the run did {len(steps)} on {group.group(2)}")
    return {"command": command, "backend": group.group(2), "world_size": int(group.group(1)),
            "iterations": len(steps), "last_loss": steps[-1]["loss"], "seconds": seconds}


def run_child_part(name: str, plan: Plan, out: Path) -> dict[str, Any]:
    if name == "attention":
        return part_attention(plan)
    if name in ("x2plus1d_m", "vivit_b16"):
        return part_networks(plan, name)
    if name == "loader":
        return part_loader(plan)
    return part_nccl(plan, out)


# --- running the parts in isolation ---------------------------------------------------------

@dataclass
class PartResult:
    status: str  # "ok", "failed", "not run"
    seconds: float = 0.0
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)


def _last_line(text: str) -> str:
    """The last ``error: ...`` line of ``text`` without its prefix, else its last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line.removeprefix("error:").strip() for line in lines if line.startswith("error:")]
    return (errors or lines or [""])[-1]


def run_isolated(command: list[str], timeout: float, result_file: Path,
                 log_file: Path) -> PartResult:
    """Runs ``command`` in a session of its own with its output in ``log_file``; reads its
    result from ``result_file``. A timeout kills the whole session (torchrun's workers, loader
    workers); a non-zero exit is a failure with the output's last line (its ``error:`` line if
    it has one)."""
    result_file.unlink(missing_ok=True)
    start = time.perf_counter()
    with log_file.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _end_session(process)
            return PartResult("failed", time.perf_counter() - start,
                              f"timed out after {timeout:.0f} s")
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        reason = _last_line(log_file.read_text(errors="replace"))
        return PartResult("failed", seconds, reason or f"exit status {process.returncode}")
    return PartResult("ok", seconds, None, json.loads(result_file.read_text()))


def _end_session(process: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM to the part's session first (torchrun's agent then ends its workers, which run in
    sessions of their own), then SIGKILL to whatever is left of the session after ``grace``."""
    for sent, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sent)
            process.wait(timeout=wait)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass


def child_command(args: argparse.Namespace, part: str, result_file: Path) -> list[str]:
    command = [sys.executable, str(Path(__file__).resolve()), "--part", part,
               "--result", str(result_file), "--device", args.device, "--out", str(args.out),
               "--data-root", str(args.data_root)]
    command += ["--batch", str(args.batch)] if args.batch else []
    return command + (["--tiny"] if args.tiny else [])


# --- the report -----------------------------------------------------------------------------

def combine(parts: dict[str, PartResult], machine: dict[str, Any]) -> dict[str, Any]:
    """The JSON document: the machine, every part, the peak fractions and the loader ratio."""
    peak = machine.get("peak_bf16_tflops")
    for group in ("x2plus1d_m", "vivit_b16"):
        part = parts.get(group)
        for row in (part.result.get("variants", []) if part else []):
            row["achieved_tflops"] = row["clips_per_s"] * row["gflops_per_clip"] * FLOP_PASSES / 1e3
            row["peak_fraction"] = peak_fraction(row["clips_per_s"], row["gflops_per_clip"], peak)
    document = {**machine, "parts": {name: asdict(part) for name, part in parts.items()}}
    document["loader_vs_gpu"] = None
    loader, steps = parts.get("loader"), parts.get("x2plus1d_m")
    if loader and steps and loader.status == "ok" and steps.status == "ok":
        consumer = steps.result["variants"][-1]
        document["loader_vs_gpu"] = {
            "loader_clips_per_s": loader.result["clips_per_s"],
            "gpu_network": consumer["name"], "gpu_clips_per_s": consumer["clips_per_s"],
            "ratio": loader.result["clips_per_s"] / consumer["clips_per_s"],
        }
    return document


def to_markdown(document: dict[str, Any]) -> str:
    parts = document["parts"]
    peak = document.get("peak_bf16_tflops")
    lines = [
        "# GPU check (`benchmarks/gpu_check.sh`)", "",
        f"- Date: {document['date']}",
        f"- Device: {document['device_name']} ({document['device']}); torch "
        f"{document['torch']}, CUDA {document['cuda'] or '-'}; host {document['host']}",
        f"- Dense bf16 peak: {f'{peak:g} TFLOPS' if peak else 'unknown'} "
        f"({document['peak_source']})",
        f"- Batch {document['batch']} clips per training step"
        + ("; **tiny shapes on the CPU: a smoke test, the figures mean nothing**"
           if document["tiny"] else ""),
        "", "| part | status | seconds | error |", "|---|---|---|---|",
    ]
    for name, part in parts.items():
        lines.append(f"| {name} | {part['status']} | {part['seconds']:.1f} | "
                     f"{part['error'] or ''} |")
    lines += _attention_section(parts.get("attention"))
    lines += _networks_section(parts)
    lines += _loader_section(parts.get("loader"), document.get("loader_vs_gpu"))
    lines += _nccl_section(parts.get("nccl"))
    return "\n".join(lines) + "\n"


def _failed(part: dict[str, Any] | None) -> list[str]:
    if part is None:
        return ["", "Not requested."]
    if part["status"] != "ok":
        return ["", f"**{part['status']}**: {part['error']}"]
    return []


def _attention_section(part: dict[str, Any] | None) -> list[str]:
    lines = ["", "## Vector attention against the float64 formula", ""]
    failed = _failed(part)
    if failed:
        return lines + failed[1:]
    lines += ["Largest absolute error, and that error over the float64 result's largest "
              "value, for the output and the gradients of q, k, v.", "",
              "| case | [B, N, C] | q, k scale | dtype | max abs: out / dq / dk / dv "
              "| relative: out / dq / dk / dv | finite |", "|---|---|---|---|---|---|---|"]
    for row in part["result"]["cases"]:
        names = ("output", "dq", "dk", "dv")
        lines.append(
            f"| {row['case']} | {row['shape']} | {row['scale']:g} | {row['dtype']} | "
            + " / ".join(f"{row['max_abs'][n]:.2e}" for n in names) + " | "
            + " / ".join(f"{row['max_rel'][n]:.2e}" for n in names)
            + f" | {'yes' if row['finite'] else 'NO'} |")
    return lines


def _networks_section(parts: dict[str, Any]) -> list[str]:
    lines = ["", "## bf16 training steps", "",
             "Forward, cross-entropy, backward and SGD step under bf16 autocast; \"x baseline\": "
             "median over rounds of the step time over the first row's in the same round; "
             "TFLOPS = clips/s x GFLOPs per clip x 3; peak memory: the network's weights, "
             "gradients, optimiser state, batch and activations.", ""]
    header = ["| network | input | GFLOPs/clip | step s | x baseline | clips/s | peak MB | "
              "TFLOPS | of bf16 peak |", "|---|---|---|---|---|---|---|---|---|"]
    for group in ("x2plus1d_m", "vivit_b16"):
        part = parts.get(group)
        failed = _failed(part)
        if failed:
            lines += [f"{group}: {failed[1]}", ""]
            continue
        lines += header
        for row in part["result"]["variants"]:
            fraction = row.get("peak_fraction")
            peak_mb = "-" if row["peak_mb"] is None else f"{row['peak_mb']:.0f}"
            lines.append(
                f"| {row['name']} | {row['batch']} x {row['input']} | "
                f"{row['gflops_per_clip']:.1f} | {row['step_s']:.4f} | {row['x_baseline']:.2f} | "
                f"{row['clips_per_s']:.2f} | "
                f"{peak_mb} | "
                f"{row['achieved_tflops']:.1f} | "
                f"{'unknown' if fraction is None else f'{100 * fraction:.1f}%'} |")
        lines.append("")
    return lines


def _loader_section(part: dict[str, Any] | None, ratio: dict[str, Any] | None) -> list[str]:
    lines = ["## Data loader against the GPU", ""]
    failed = _failed(part)
    if failed:
        return lines + failed[1:]
    result = part["result"]
    lines += [f"Synthetic Kinetics-like set under `{result['data_root']}` ({result['videos']} "
              f"training videos), clips {result['clip']}, {result['workers']} workers, batch "
              f"{result['batch']}: **{result['clips_per_s']:.1f} clips/s** ({result['clips']} "
              f"clips in {result['seconds']:.2f} s after the first batches)."]
    if ratio is None:
        lines.append("No GPU figure to compare with (the training-step part did not succeed).")
    else:
        lines.append(f"{ratio['gpu_network']} consumes {ratio['gpu_clips_per_s']:.1f} clips/s: "
                     f"loader / GPU = **{ratio['ratio']:.2f}** (above 1: the loader keeps up).")
    return lines


def _nccl_section(part: dict[str, Any] | None) -> list[str]:
    lines = ["", "## torchrun, one process", ""]
    failed = _failed(part)
    if failed:
        return lines + failed[1:]
    result = part["result"]
    return lines + [f"`torchrun --standalone --nproc_per_node=1 tools/train_net.py` on the "
                    f"synthetic set: a process group of {result['world_size']} on the "
                    f"**{result['backend']}** backend, {result['iterations']} iterations, last "
                    f"loss {result['last_loss']:.4f}, {result['seconds']:.1f} s in all."]


def machine_facts(args: argparse.Namespace, plan: Plan) -> dict[str, Any]:
    import torch

    device = torch.device(args.device)
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else platform.processor() or platform.machine())
    if args.peak_tflops is not None:
        peak, source = args.peak_tflops, "--peak-tflops"
    else:
        peak, source = peak_bf16_tflops(name) if device.type == "cuda" else (None, "unknown")
    return {"date": str(date.today()), "device": device.type, "device_name": name,
            "torch": torch.__version__, "cuda": torch.version.cuda, "host": platform.node(),
            "tiny": args.tiny, "batch": plan.batch,
            "peak_bf16_tflops": peak, "peak_source": source}


# --- command line ---------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("output/gpu_check"),
                        help="folder for gpu_check.md, gpu_check.json and logs/")
    parser.add_argument("--device", default="cuda", help="cuda (the check) or cpu (with --tiny)")
    parser.add_argument("--tiny", action="store_true",
                        help="tiny shapes: a smoke test of the code paths (on the CPU)")
    parser.add_argument("--batch", type=int, default=None,
                        help="clips per training step and loader batch (default 8; tiny: 2)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the GPU's dense bf16 peak, instead of the table's")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated, from {', '.join(PARTS)}")
    parser.add_argument("--budget", type=float, default=450.0,
                        help="seconds for all parts together (each also has its own timeout)")
    parser.add_argument("--data-root", type=Path, default=Path("data/synthetic/kinetics"),
                        help="the synthetic Kinetics-like set (generated there if absent)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    parser.add_argument("--part", choices=PARTS, default=None,
                        help="internal: run this one part in this process, its result to "
                             "--result (the check runs itself so for each part)")
    parser.add_argument("--result", type=Path, default=None,
                        help="internal: the JSON file for --part's result")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    args.parts = [name.strip() for name in args.parts.split(",") if name.strip()]
    unknown = [name for name in args.parts if name not in PARTS]
    if unknown:
        raise InputError(f"--parts: unknown part {unknown[0]!r} (known: {', '.join(PARTS)})")
    if args.device not in ("cuda", "cpu"):
        raise InputError(f"--device {args.device!r}: cuda or cpu")
    if args.device == "cpu" and not args.tiny:
        raise InputError("--device cpu measures nothing worth recording: add --tiny for a smoke "
                         "test of the code paths")
    if args.batch is not None and args.batch < 1:
        raise InputError(f"--batch {args.batch}: must be positive")
    args.out = args.out.resolve()
    args.data_root = args.data_root.resolve()
    return args


def describe_plan(plan: Plan, parts: list[str], machine: dict[str, Any], out: Path,
                  budget: float) -> str:
    peak = machine["peak_bf16_tflops"]
    lines = [f"gpu_check on {machine['device_name']} ({machine['device']}), dense bf16 peak "
             f"{f'{peak:g} TFLOPS' if peak else 'unknown'} ({machine['peak_source']}); "
             f"batch {plan.batch}; time budget {budget:.0f} s"]
    for name in parts:
        if name == "attention":
            what = "; ".join(f"{c.name} [{c.batch}, {c.tokens}, {c.channels}] scale {c.scale:g}"
                             for c in plan.attention) + "; float32 and bf16"
        elif name in plan.networks:
            what = "; ".join(f"{n.name} {plan.batch} x [3, {n.frames}, {n.size}, {n.size}]"
                             for n in plan.networks[name])
            what += f"; {plan.warmup} warm-up steps, {plan.repeats} rounds"
        elif name == "loader":
            what = (f"{plan.loader_workers} workers, {plan.loader_batches} batches of "
                    f"{plan.batch} timed after {plan.loader_skip}; data {plan.data_root}")
        else:
            what = f"torchrun, 1 process, {plan.nccl_iterations} iterations: " + \
                " ".join(plan.nccl_overrides)
        lines.append(f"  {name:<11} timeout {plan.timeouts[name]:>3} s: {what}")
    lines.append(f"writes {out / 'gpu_check.md'}, {out / 'gpu_check.json'}, {out / 'logs'}/")
    return "\n".join(lines)


def main() -> int:
    args = parse_args()
    import torch

    plan = make_plan(args.device, args.tiny, args.batch, str(args.data_root))
    if args.part is not None:  # a child: one part, its result to --result
        result = run_child_part(args.part, plan, args.out)
        args.result.write_text(json.dumps(result, indent=1))
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        raise RunError(
            f"no CUDA GPU is present (torch {torch.__version__}, built for CUDA "
            f"{torch.version.cuda or 'none'}): nothing was measured and nothing written. "
            "Run it on a GPU machine; --device cpu --tiny is a smoke test of the code paths")
    machine = machine_facts(args, plan)
    print(describe_plan(plan, args.parts, machine, args.out, args.budget), flush=True)
    if args.dry_run:
        return 0
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.budget
    parts: dict[str, PartResult] = {}
    for name in args.parts:
        left = deadline - time.monotonic()
        if left < 10:
            parts[name] = PartResult("not run", 0.0, "the time budget (--budget) was spent")
        else:
            result_file = logs / f"{name}.json"
            parts[name] = run_isolated(child_command(args, name, result_file),
                                       min(plan.timeouts[name], left), result_file,
                                       logs / f"{name}.log")
            result_file.unlink(missing_ok=True)
        part = parts[name]
        print(f"{name}: {part.status} in {part.seconds:.1f} s"
              + (f": {part.error}" if part.error else ""), flush=True)
    document = combine(parts, machine)
    (args.out / "gpu_check.json").write_text(json.dumps(document, indent=1) + "\n")
    (args.out / "gpu_check.md").write_text(to_markdown(document))
    print(f"wrote {args.out / 'gpu_check.md'} and {args.out / 'gpu_check.json'}")
    return 0 if all(part.status == "ok" for part in parts.values()) else 1


if __name__ == "__main__":
    run_tool(main)
