"""Timing and memory measurement shared by the benchmark scripts.

Times are medians over repetitions after warm-up. Peak memory on a GPU is CUDA's peak
allocation during one repetition. On the CPU it is measured in a fresh process that builds the
variant, runs it once and reports its resident-set high-water mark above its level just before
the run: memory a process already freed to its allocator is invisible to the kernel, so only a
fresh process gives an honest peak.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable

import torch


@dataclass
class Measurement:
    name: str
    seconds: float  # median
    peak_mb: float

    def ratio_to(self, baseline: "Measurement") -> tuple[float, float]:
        return self.seconds / baseline.seconds, self.peak_mb / max(baseline.peak_mb, 1e-9)


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_memory(device: torch.device) -> float:
    """Resets the peak counter; returns the current level in MB."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / 2**20
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kb("VmRSS") / 1024


def peak_memory(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / 2**20
    return _status_kb("VmHWM") / 1024


def measure(name: str, run: Callable[[], None], device: torch.device, repeats: int = 5,
            warmup: int = 2, peak_mb: float | None = None) -> Measurement:
    """Median wall time of ``run()`` over ``repeats`` after ``warmup`` calls. On CUDA the peak
    memory of the last repetition is measured here; on CPU pass ``peak_mb`` (from
    ``probe_peak_memory``)."""
    for _ in range(warmup):
        run()
    times = []
    for index in range(repeats):
        if index == repeats - 1 and device.type == "cuda":
            base = reset_peak_memory(device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    if device.type == "cuda":
        peak_mb = peak_memory(device) - base
    return Measurement(name, statistics.median(times), float("nan") if peak_mb is None
                       else peak_mb)


def run_probe(run: Callable[[], None], device: torch.device) -> None:
    """In a probe process: runs once and prints the peak memory above the level before it."""
    base = reset_peak_memory(device)
    run()
    print(json.dumps({"peak_mb": peak_memory(device) - base}))


def probe_peak_memory(script: str, variant: str, extra: list[str]) -> float:
    """Runs ``script --probe VARIANT *extra`` in a fresh process; returns its peak MB."""
    result = subprocess.run([sys.executable, script, "--probe", variant, *extra],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_mb"]


def parser(description: str) -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(description=description)
    result.add_argument("--device", default="cpu", help="cpu or cuda")
    result.add_argument("--repeats", type=int, default=5)
    result.add_argument("--warmup", type=int, default=2)
    result.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: PyTorch's choice)")
    result.add_argument("--bf16", action="store_true", help="autocast to bf16 (CUDA)")
    result.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    return result


def header(args: argparse.Namespace) -> str:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"{platform.processor() or platform.machine()}, "
                  f"{torch.get_num_threads()} threads")
    return (f"# {date.today()} torch {torch.__version__} on {device.type} ({where}), "
            f"median of {args.repeats} after {args.warmup} warm-up"
            f"{', bf16 autocast' if args.bf16 else ', fp32'}")


def table(rows: list[Measurement], baseline: Measurement, unit: str = "s") -> str:
    lines = [f"| {'variant':<40} | {'time ' + unit:>10} | {'x baseline':>10} | "
             f"{'peak MB':>9} | {'x baseline':>10} |",
             f"|{'-' * 42}|{'-' * 12}|{'-' * 12}|{'-' * 11}|{'-' * 12}|"]
    for row in rows:
        time_ratio, memory_ratio = row.ratio_to(baseline)
        lines.append(f"| {row.name:<40} | {row.seconds:>10.4f} | {time_ratio:>10.2f} | "
                     f"{row.peak_mb:>9.1f} | {memory_ratio:>10.2f} |")
    return "\n".join(lines)
