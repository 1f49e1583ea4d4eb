"""Token reducers of a ViT/ViViT trained and tested at matched GFLOPs (tools/compare_reducers.py).

Every reducer gets the same config, seed and training budget; only ``model.token_reducer`` and
``model.reducer_tokens`` change. Each reducer's token count ``K`` is the one whose GFLOPs come
closest to the reference reducer's at the config's count (ATS counted with ``K' = K`` kept
tokens, its most). Beside them: the model without reduction, and ATS inserted into that trained
model without retraining. Accuracy comes from the engine's multi-view test; clips/s from timing
the trained models' forward passes, in turn, on the same test clips.
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
from videotl.engine.run import evaluate_checkpoint, seed_everything, train
from videotl.experiments.reducer_sweep import count_model
from videotl.models import build_model
from videotl.models.reducers import AdaptiveTokenSampler, ReducerSpec, build_token_reducer
from videotl.utils import checkpoint as ckpt
from videotl.utils.distributed import select_device

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
    timing_rounds: int = 5,
) -> Comparison:
    """Trains and tests ``cfg`` without reduction and with each reducer at matched GFLOPs, tests
    ATS inserted into the model trained without reduction, then times every model on the same
    ``timed_clips`` test clips (see the module docstring)."""
    work_dir = Path(work_dir)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, final_test=True,
                                                             auto_resume=False))
    layer, tokens, grid = reducer_layer_and_tokens(cfg)
    target = count_model(cfg).gflops
    comparison = Comparison(cfg.model.name, layer, cfg.model.token_reducer, target)
    runs = [_run(with_model(cfg, reducer_layers=[]), NO_REDUCTION, None, work_dir)]
    for reducer in reducers:
        count = tokens if reducer == cfg.model.token_reducer else matched_tokens(
            cfg, reducer, target, grid)[0]
        runs.append(_run(with_model(cfg, token_reducer=reducer, reducer_tokens=[count]),
                         reducer, count, work_dir))
    if "ats" in reducers:
        count = next(row.tokens for row, _, _ in runs if row.name == "ats")
        inserted = with_model(cfg, token_reducer="ats", reducer_tokens=[count])
        runs.append(_run(inserted, ATS_INSERTED, count, work_dir, trained=runs[0][2]))
    clips = _test_clips(cfg, timed_clips).to(select_device(cfg.device))
    models = [_trained_model(run_cfg, weights) for _, run_cfg, weights in runs]
    rates = clips_per_second(models, clips, timing_rounds)
    for (row, run_cfg, _), model, rate in zip(runs, models, rates):
        row.clips_per_second = rate
        row.kept_tokens = _mean_kept_tokens(model, clips)
        if row.kept_tokens is not None:
            row.kept_gflops = count_model(run_cfg, max(1, round(row.kept_tokens))).gflops
        comparison.rows.append(row)
    return comparison


def _run(cfg: ExperimentConfig, name: str, tokens: int | None, work_dir: Path,
         trained: Path | None = None) -> tuple[ComparisonRow, ExperimentConfig, Path]:
    """Trains ``cfg`` into ``work_dir/name`` and tests it, or only tests the ``trained``
    weights; returns the row (without speed), the config and the weights."""
    cfg = dataclasses.replace(cfg, output_dir=str(work_dir / name.replace(", ", "_")))
    if trained is None:
        metrics = train(cfg)
        trained = ckpt.last_checkpoint(cfg.output_dir)
        if trained is None:
            raise ConfigError(f"training {name} left no checkpoint in {cfg.output_dir}")
    else:
        metrics = evaluate_checkpoint(cfg, trained)
    return ComparisonRow(name, tokens, count_model(cfg).gflops, metrics), cfg, trained


def _trained_model(cfg: ExperimentConfig, weights: Path) -> nn.Module:
    model = build_model(cfg)
    ckpt.load_model_weights(model, weights)
    return model.to(select_device(cfg.device)).eval()


def clips_per_second(
    models: Sequence[nn.Module], clips: torch.Tensor, rounds: int = 5
) -> list[float]:
    """Inference throughput of each model (eval, no gradients) on ``clips`` ``[B, C, T, H, W]``:
    one warm-up pass each, then ``rounds`` rounds timing every model once in turn (so that a
    change in other work on a shared machine hits all of them alike); the best pass counts."""
    best = [float("inf")] * len(models)
    with torch.no_grad():
        for model in models:
            model(clips)
        for _ in range(rounds):
            for position, model in enumerate(models):
                if clips.is_cuda:
                    torch.cuda.synchronize()
                start = time.perf_counter()
                model(clips)
                if clips.is_cuda:
                    torch.cuda.synchronize()
                best[position] = min(best[position], time.perf_counter() - start)
    return [clips.shape[0] / seconds for seconds in best]


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
        "# Token reducers compared at matched GFLOPs"
        + (" (synthetic data)" if cfg.data.synthetic else ""),
        "",
        data_description(cfg),
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
        "per video. Clips/s: forward passes of each trained model on the same batch of test "
        "clips, the models timed in turn for a few rounds, best pass; "
        f"{machine}, so compare the ratios more than the values. `ats, inserted`: ATS added to "
        "the model trained without reduction, tested without retraining. ATS kept K': its mean "
        "kept tokens per temporal index on the timed clips, with the GFLOPs at that count.",
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


def data_description(cfg: ExperimentConfig) -> str:
    """What the comparison was trained and tested on, read from ``cfg`` (never assumed)."""
    data = cfg.data
    start = (f"started from `{cfg.model.pretrained}`" if cfg.model.pretrained
             else "trained from scratch")
    clips = (f"{cfg.model.num_classes} classes, {data.num_frames} frames at "
             f"{data.test_crop_size}^2 for testing; the model is {start} for "
             f"{cfg.train.max_iters or cfg.train.epochs} "
             f"{'iterations' if cfg.train.max_iters else 'epochs'}")
    if data.synthetic:
        return (f"**Synthetic data: not the real {data.dataset} set.** The clips are the "
                f"synthetic {data.dataset}-like set generated under `{data.root}` "
                f"(`videotl.data.synthetic`: classes that differ only in motion; {clips}), so "
                "the accuracies say little about the reducers on real data; the table shows that "
                "the comparison runs end to end and what each reducer costs.")
    return f"Data: the `{data.dataset}` set under `{data.root}` ({clips})."


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}"
