"""Token reducers of a ViT/ViViT trained and tested at matched GFLOPs (tools/compare_reducers.py).

Every reducer gets the same config, seed and training budget; only ``model.token_reducer`` and
``model.reducer_tokens`` change. Each reducer's token count ``K`` is the one whose GFLOPs come
closest to the reference reducer's at the config's count (ATS counted with ``K' = K`` kept
tokens, its most). Beside them: the model without reduction, and ATS inserted into that trained
model without retraining. Accuracy comes from the engine's multi-view test; clips/s from timing
the trained model's forward pass on the same test clips.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from videotl.config import ConfigError, ExperimentConfig
from videotl.data import build_loader
from videotl.engine import checkpoint as ckpt
from videotl.engine.distributed import select_device
from videotl.engine.run import seed_everything, test, train
from videotl.models import build_model
from videotl.models.layers import AdaptiveTokenSampler
from videotl.models.reducer_complexity import count_model
from videotl.models.token_reducers import ReducerSpec, build_token_reducer

NO_REDUCTION = "none"
ATS_INSERTED = "ats, inserted"


@dataclass
class ComparisonRow:
    """One trained (or, for ``ats, inserted``, only tested) model.

    ``tokens``: K per temporal index at the reducer layer (None without reduction);
    ``gflops``: per clip at the test input (ATS: with K' = K); ``kept_tokens``: ATS's mean kept
    tokens per temporal index on the timed clips, ``kept_gflops`` the GFLOPs at that count.
    """

    name: str
    tokens: int | None
    gflops: float
    metrics: dict[str, Any]
    clips_per_second: float = 0.0
    kept_tokens: float | None = None
    kept_gflops: float | None = None


@dataclass
class Comparison:
    """All rows, with what they share."""

    model: str
    reducer_layer: int
    reference: str
    target_gflops: float
    rows: list[ComparisonRow] = field(default_factory=list)


def with_model(cfg: ExperimentConfig, **model_changes: Any) -> ExperimentConfig:
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **model_changes))


def reducer_layer_and_tokens(cfg: ExperimentConfig) -> tuple[int, int, tuple[int, int]]:
    """The config model's one reducer layer, its tokens and the grid it sees at the test input."""
    with torch.device("meta"):
        model = build_model(cfg)
    layers = getattr(getattr(model, "encoder", None), "reducer_layers", ())
    if len(layers) != 1 or model.encoder.token_fuser:
        raise ConfigError(f"model {cfg.model.name!r} with model.reducer_layers={list(layers)}: "
                          "the comparison needs a ViT/ViViT with one reducer layer, no fuser")
    patch = model.patch_embed.proj.kernel_size[-1]
    side = cfg.data.test_crop_size // patch
    tokens = model.encoder.reducers[0]
    count = getattr(tokens, "num_tokens", None) or getattr(tokens, "max_tokens")
    return layers[0], count, (side, side)


def fitting_tokens(reducer: str, dim: int, grid: tuple[int, int]) -> list[int]:
    """The counts 1..P a reducer can leave from a ``grid`` of P tokens."""
    counts = []
    for count in range(1, grid[0] * grid[1] + 1):
        instance = build_token_reducer(reducer, ReducerSpec(dim, count))
        try:
            if instance.keeps_grid:
                instance.output_grid(grid)
        except ValueError:
            continue
        counts.append(count)
    return counts


def matched_tokens(
    cfg: ExperimentConfig, reducer: str, target: float, grid: tuple[int, int]
) -> tuple[int, float]:
    """The count whose GFLOPs with ``reducer`` are closest to ``target`` (binary search: GFLOPs
    grow with the count); returns ``(count, gflops)``."""
    counts = fitting_tokens(reducer, _width(cfg), grid)
    cost = {}

    def gflops(position: int) -> float:
        count = counts[position]
        if count not in cost:
            cost[count] = count_model(with_model(cfg, token_reducer=reducer,
                                                 reducer_tokens=[count])).gflops
        return cost[count]

    low, high = 0, len(counts) - 1
    while low < high:
        middle = (low + high) // 2
        if gflops(middle) < target:
            low = middle + 1
        else:
            high = middle
    best = min({max(low - 1, 0), low}, key=lambda p: abs(gflops(p) - target))
    return counts[best], gflops(best)


def compare_reducers(
    cfg: ExperimentConfig,
    reducers: Sequence[str],
    work_dir: str | Path,
    timed_clips: int = 8,
    timing_repeats: int = 3,
) -> Comparison:
    """Trains and tests ``cfg`` without reduction and with each reducer at matched GFLOPs, and
    tests ATS inserted into the model trained without reduction (see the module docstring)."""
    work_dir = Path(work_dir)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, final_test=True,
                                                             auto_resume=False))
    layer, tokens, grid = reducer_layer_and_tokens(cfg)
    target = count_model(cfg).gflops
    comparison = Comparison(cfg.model.name, layer, cfg.model.token_reducer, target)
    clips = _test_clips(cfg, timed_clips)
    plain = dataclasses.replace(with_model(cfg, reducer_layers=[]),
                                output_dir=str(work_dir / NO_REDUCTION))
    comparison.rows.append(_train_row(plain, NO_REDUCTION, None, clips, timing_repeats))
    for reducer in reducers:
        count = tokens if reducer == cfg.model.token_reducer else matched_tokens(
            cfg, reducer, target, grid)[0]
        run = with_model(cfg, token_reducer=reducer, reducer_tokens=[count])
        run = dataclasses.replace(run, output_dir=str(work_dir / reducer))
        comparison.rows.append(_train_row(run, reducer, count, clips, timing_repeats))
    if "ats" in reducers:
        count = next(row.tokens for row in comparison.rows if row.name == "ats")
        inserted = with_model(cfg, token_reducer="ats", reducer_tokens=[count])
        inserted = dataclasses.replace(inserted, output_dir=str(work_dir / "ats_inserted"))
        comparison.rows.append(_test_row(inserted, ckpt.last_checkpoint(plain.output_dir),
                                         count, clips, timing_repeats))
    return comparison


def _train_row(cfg: ExperimentConfig, name: str, tokens: int | None, clips: torch.Tensor,
               repeats: int) -> ComparisonRow:
    metrics = train(cfg)
    return _row(cfg, name, tokens, metrics, ckpt.last_checkpoint(cfg.output_dir), clips, repeats)


def _test_row(cfg: ExperimentConfig, weights: Path | None, tokens: int, clips: torch.Tensor,
              repeats: int) -> ComparisonRow:
    if weights is None:
        raise ConfigError(f"no checkpoint of the model without reduction in {cfg.output_dir}")
    return _row(cfg, ATS_INSERTED, tokens, test(cfg, weights), weights, clips, repeats)


def _row(cfg: ExperimentConfig, name: str, tokens: int | None, metrics: dict[str, Any],
         weights: Path | None, clips: torch.Tensor, repeats: int) -> ComparisonRow:
    device = select_device(cfg.device)
    model = build_model(cfg)
    if weights is not None:
        ckpt.load_model_weights(model, weights)
    model.to(device).eval()
    kept = _mean_kept_tokens(model, clips.to(device))
    row = ComparisonRow(name, tokens, count_model(cfg).gflops, metrics,
                        clips_per_second(model, clips.to(device), repeats))
    if kept is not None:
        row.kept_tokens = kept
        row.kept_gflops = count_model(cfg, max(1, round(kept))).gflops
    return row


def clips_per_second(model: nn.Module, clips: torch.Tensor, repeats: int = 3) -> float:
    """Inference throughput of ``model`` (eval, no gradients) on ``clips`` ``[B, C, T, H, W]``:
    one warm-up pass, then the best of ``repeats`` timed passes (the least disturbed by other
    work on a shared machine)."""
    with torch.no_grad():
        model(clips)
        best = float("inf")
        for _ in range(repeats):
            if clips.is_cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(clips)
            if clips.is_cuda:
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
    return clips.shape[0] / best


def _mean_kept_tokens(model: nn.Module, clips: torch.Tensor) -> float | None:
    """ATS: the real kept tokens per temporal index, averaged over its layers and the clips."""
    samplers = [m for m in model.modules() if isinstance(m, AdaptiveTokenSampler)]
    if not samplers:
        return None
    counts: list[float] = []

    def record(module: nn.Module, args: tuple, kwargs: dict, selection: Any) -> None:
        batch, width = selection.index.shape
        real = torch.full((batch,), width) if selection.mask is None else selection.mask.sum(1)
        counts.append(float((real - kwargs["num_prefix"]).float().mean()) / kwargs["frames"])

    hooks = [sampler.register_forward_hook(record, with_kwargs=True) for sampler in samplers]
    with torch.no_grad():
        model(clips)
    for hook in hooks:
        hook.remove()
    return sum(counts) / len(counts)


def _test_clips(cfg: ExperimentConfig, count: int) -> torch.Tensor:
    """The first ``count`` test clips (one view each), the same for every model."""
    seed_everything(cfg.seed)
    loader = build_loader(dataclasses.replace(cfg, test=dataclasses.replace(
        cfg.test, batch_size=count)), "test")
    return next(iter(loader))["video"]


def _width(cfg: ExperimentConfig) -> int:
    with torch.device("meta"):
        return build_model(cfg).dim


def markdown_report(comparison: Comparison, cfg: ExperimentConfig, command: str,
                    machine: str) -> str:
    """The comparison as a Markdown page: setup, caveat, the exact command, the table."""
    baseline = comparison.rows[0].clips_per_second
    lines = [
        "# Token reducers compared at matched GFLOPs (synthetic data)",
        "",
        "**Synthetic data, CPU budget: not Kinetics or ImageNet.** The clips are the synthetic "
        "Kinetics-like set (`videotl.data.synthetic`: 10 classes that differ only in motion, "
        f"{cfg.data.num_frames} frames at {cfg.data.test_crop_size}^2), the model is tiny and "
        "trained from scratch for a few epochs, so the accuracies are noisy and say little about "
        "the reducers on real data; the table shows that the comparison runs end to end and what "
        "each reducer costs.",
        "",
        "```",
        command,
        "```",
        "",
        f"Model `{comparison.model}`, reducer before/in block {comparison.reducer_layer}; the "
        f"reference `{comparison.reference}` sets the budget of {comparison.target_gflops:.4f} "
        "GFLOPs per clip, and every other reducer leaves the K tokens per temporal index whose "
        "GFLOPs come closest (ATS counted with K' = K, its most). Same seed "
        f"({cfg.seed}) and budget for all: {cfg.train.epochs} epochs, batch "
        f"{cfg.train.batch_size}, {cfg.solver.optimizer} at {cfg.solver.base_lr}. Top-1/top-5: "
        f"the engine's test, {cfg.test.num_temporal_views} x {cfg.test.num_spatial_crops} views "
        "per video. Clips/s: forward passes of the trained model on the same test clips, best "
        f"of a few; {machine}, so compare the ratios more than the values. `ats, inserted`: ATS "
        "added to the model trained without reduction, tested without retraining.",
        "",
        "| model | K | GFLOPs | top-1 (%) | top-5 (%) | clips/s | vs none | ATS kept K' (GFLOPs) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in comparison.rows:
        kept = "" if row.kept_tokens is None else (
            f"{row.kept_tokens:.1f} ({row.kept_gflops:.4f})")
        lines.append(
            f"| `{row.name}` | {'' if row.tokens is None else row.tokens} | {row.gflops:.4f} | "
            f"{_percent(row.metrics.get('top1'))} | {_percent(row.metrics.get('top5'))} | "
            f"{row.clips_per_second:.1f} | {row.clips_per_second / baseline:.2f} | {kept} |"
        )
    return "\n".join(lines) + "\n"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}"
