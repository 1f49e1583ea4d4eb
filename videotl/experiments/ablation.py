"""Train several variants of one experiment with the same seed, data and budget, and tabulate
their test metric, parameters, GFLOPs and training speed (``tools/run_ablation.py``)."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from videotl.config import ExperimentConfig, load_config
from videotl.engine.log_hooks import read_metrics
from videotl.engine.run import train
from videotl.models import build_model
from videotl.models.complexity import measure_complexity


@dataclass
class VariantResult:
    """One trained variant. ``train_clips_per_second``: mean over epochs of the clips per second
    of the training steps (forward, backward, update; data loading excluded)."""

    name: str
    overrides: tuple[str, ...]
    metrics: dict[str, Any]
    params: int
    gflops: float
    train_clips_per_second: float
    output_dir: str

    @property
    def metric(self) -> tuple[str, float]:
        """The headline metric: mAP for multi-label data, top-1 otherwise."""
        key = "map" if "map" in self.metrics else "top1"
        return key, float(self.metrics.get(key, float("nan")))


def variant_directory(name: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "_", name.lower().replace("+", "_plus_"))


def run_variants(
    config: str | Path,
    variants: Sequence[tuple[str, Sequence[str]]],
    overrides: Sequence[str] = (),
    output_root: str | Path = "output/ablations",
) -> list[VariantResult]:
    """Trains and tests ``config`` once per ``(name, variant_overrides)``; each run writes to
    ``output_root/<name>`` (and resumes there if interrupted)."""
    results = []
    for name, variant_overrides in variants:
        output_dir = Path(output_root) / variant_directory(name)
        cfg = load_config(config, [*overrides, *variant_overrides, f"output_dir={output_dir}",
                                   "train.final_test=true"])
        metrics = train(cfg)
        results.append(_result(name, tuple(variant_overrides), cfg, metrics))
    return results


def _result(name: str, overrides: tuple[str, ...], cfg: ExperimentConfig,
            metrics: dict[str, Any]) -> VariantResult:
    size = cfg.data.test_crop_size
    stats = measure_complexity(lambda: build_model(cfg), [3, cfg.data.num_frames, size, size])
    _, epochs = read_metrics(Path(cfg.output_dir) / "metrics.jsonl")
    speeds = [r["clips_per_second"] for r in epochs if r.get("clips_per_second")]
    return VariantResult(name, overrides, metrics, stats.params, stats.gflops,
                         sum(speeds) / len(speeds) if speeds else float("nan"), cfg.output_dir)


def write_tables(results: Sequence[VariantResult], markdown: str | Path, csv_path: str | Path,
                 heading: str = "") -> None:
    """The results as a Markdown table (with ``heading`` above it) and as CSV."""
    metric = results[0].metric[0] if results else "top1"
    rows = [(r.name, f"{100 * r.metric[1]:.1f}", f"{r.params / 1e6:.3f}", f"{r.gflops:.3f}",
             f"{r.train_clips_per_second:.1f}", " ".join(r.overrides)) for r in results]
    header = ("variant", f"{metric} (%)", "params (M)", "GFLOPs", "train clips/s", "overrides")
    lines = [heading, ""] if heading else []
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(f"`{c}`" if i in (0, 5) else c for i, c in enumerate(row)) + " |"
              for row in rows]
    Path(markdown).parent.mkdir(parents=True, exist_ok=True)
    Path(markdown).write_text("\n".join(lines) + "\n", encoding="utf-8")
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["variant", metric, "params", "gflops", "train_clips_per_second",
                         "overrides", "output_dir"])
        for result in results:
            writer.writerow([result.name, result.metric[1], result.params, result.gflops,
                             result.train_clips_per_second, " ".join(result.overrides),
                             result.output_dir])
