"""Timing and memory measurement shared by the benchmark scripts.

Times are medians over repetitions after warm-up, the variants of one comparison measured in
alternating rounds. Peak memory on a GPU is CUDA's peak
allocation during one repetition. On the CPU it is measured in a fresh process that builds the
variant, runs it once and reports its resident-set high-water mark above its level just before
the run: memory a process already freed to its allocator is invisible to the kernel, so only a
fresh process gives an honest peak.

The module loads torch only inside the functions that measure, so that a script importing its
command-line helpers (``parser``, ``use_steady_malloc``) answers ``--help`` at once; a script
imports torch itself after parsing (tests/test_tool_parsers.py holds the scripts to it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import torch


@dataclass
class Measurement:
    name: str
    seconds: float  # median
    peak_mb: float
    rounds: tuple[float, ...] = ()  # the time of each round

    def ratio_to(self, baseline: "Measurement") -> tuple[float, float]:
        """Time and peak-memory ratios to ``baseline``. The time ratio is the median over rounds
        of this variant's time over the baseline's in the same round when both were measured in
        the same rounds (drift between rounds cancels), else the ratio of the medians."""
        if self.rounds and len(self.rounds) == len(baseline.rounds):
            time_ratio = statistics.median(a / b for a, b in zip(self.rounds, baseline.rounds))
        else:
            time_ratio = self.seconds / baseline.seconds
        return time_ratio, self.peak_mb / max(baseline.peak_mb, 1e-9)


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_memory(device: torch.device) -> float:
    """Resets the peak counter; returns the current level in MB."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / 2**20
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kb("VmRSS") / 1024


def peak_memory(device: torch.device) -> float:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / 2**20
    return _status_kb("VmHWM") / 1024


def measure(runs: dict[str, Callable[[], None]], device: torch.device, repeats: int = 5,
            warmup: int = 2, peaks_mb: dict[str, float] | None = None) -> list[Measurement]:
    """Median wall time of each ``run()`` over ``repeats`` rounds after ``warmup`` calls each.

    Every round runs every variant once, starting one variant later each round, so load from
    other processes and drifting clock speeds hit all variants alike. On CUDA the peak memory of
    each variant's last run is measured here; on CPU pass ``peaks_mb`` (from
    ``probe_peak_memory``).
    """
    for run in runs.values():
        for _ in range(warmup):
            run()
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in names}
    peaks = dict(peaks_mb or {})
    for index in range(repeats):
        last = index == repeats - 1 and device.type == "cuda"
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            base = reset_peak_memory(device) if last else 0.0
            times[name].append(_timed(runs[name], device))
            if last:
                peaks[name] = peak_memory(device) - base
    return [Measurement(name, statistics.median(times[name]), peaks.get(name, float("nan")),
                        tuple(times[name])) for name in names]


def _timed(run: Callable[[], None], device: torch.device) -> float:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


# glibc's malloc returns large freed blocks to the kernel and takes them back zeroed, page by page:
# a training step of a video network re-faults its ~4 GB of activations, which costs seconds of
# system time per step on 2 cores and varies from step to step. Keeping freed memory in the
# process removes that noise (and cost) for every variant alike.
STEADY_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(2**34), "MALLOC_TRIM_THRESHOLD_": str(2**34),
                 "MALLOC_TOP_PAD_": str(2**30)}


def use_steady_malloc(args: argparse.Namespace) -> None:
    """Restarts this script with ``STEADY_MALLOC`` in its environment (Linux, CPU runs), unless
    ``--system-malloc`` is given or the settings are already there."""
    if (args.system_malloc or args.device != "cpu" or not sys.platform.startswith("linux")
            or all(os.environ.get(key) == value for key, value in STEADY_MALLOC.items())):
        return
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **STEADY_MALLOC})


def run_probe(run: Callable[[], None], device: torch.device) -> None:
    """In a probe process: runs once and prints the peak memory above the level before it."""
    base = reset_peak_memory(device)
    run()
    print(json.dumps({"peak_mb": peak_memory(device) - base}))


def probe_peak_memory(script: str, variant: str, extra: list[str]) -> float:
    """Runs ``script --probe VARIANT *extra`` in a fresh process with the system's malloc
    settings (``STEADY_MALLOC`` keeps freed memory and would inflate the peak); returns its peak
    MB."""
    environment = {key: value for key, value in os.environ.items() if key not in STEADY_MALLOC}
    result = subprocess.run([sys.executable, script, "--probe", variant, *extra, "--system-malloc"],
                            capture_output=True, text=True, check=True, env=environment)
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_mb"]


def parser(description: str) -> argparse.ArgumentParser:
    """The options every timing benchmark shares (``measure``, ``use_steady_malloc``,
    ``probe_peak_memory``); the script adds its own."""
    result = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    result.add_argument("--device", default="cpu", help="cpu or cuda")
    result.add_argument("--repeats", type=int, default=5,
                        help="timed rounds, each running every variant once; the median is "
                             "reported (default 5)")
    result.add_argument("--warmup", type=int, default=2,
                        help="untimed runs of each variant before the rounds (default 2)")
    result.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: PyTorch's choice)")
    result.add_argument("--bf16", action="store_true", help="autocast to bf16 (CUDA)")
    result.add_argument("--system-malloc", action="store_true",
                        help="keep glibc's default malloc settings (see STEADY_MALLOC)")
    result.add_argument("--probe", default=None, metavar="VARIANT",
                        help="internal: run VARIANT once and print its peak memory as JSON (the "
                             "script calls itself so for each variant on the CPU)")
    return result


def header(args: argparse.Namespace) -> str:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"{platform.processor() or platform.machine()}, "
                  f"{torch.get_num_threads()} threads")
    steady = all(os.environ.get(key) == value for key, value in STEADY_MALLOC.items())
    return (f"# {date.today()} torch {torch.__version__} on {device.type} ({where}), "
            f"median of {args.repeats} after {args.warmup} warm-up"
            f"{', bf16 autocast' if args.bf16 else ', fp32'}"
            f"{', steady malloc' if steady else ''}")


def table(rows: list[Measurement], baseline: Measurement, unit: str = "s") -> str:
    lines = [f"| {'variant':<40} | {'time ' + unit:>10} | {'x baseline':>10} | "
             f"{'peak MB':>9} | {'x baseline':>10} |",
             f"|{'-' * 42}|{'-' * 12}|{'-' * 12}|{'-' * 11}|{'-' * 12}|"]
    for row in rows:
        time_ratio, memory_ratio = row.ratio_to(baseline)
        lines.append(f"| {row.name:<40} | {row.seconds:>10.4f} | {time_ratio:>10.2f} | "
                     f"{row.peak_mb:>9.1f} | {memory_ratio:>10.2f} |")
    return "\n".join(lines)
