"""GFLOPs of a ViT/ViViT config with each token reducer, against the tokens it leaves.

ATS keeps a data-dependent number of tokens (at most ``K`` per temporal index). On the meta
device there is no data, so it is counted for a given kept count ``K'``: the FLOPs of an input on
which every ATS layer keeps ``K'`` tokens per temporal index (``K' = K``, its most, unless
given). Averaging such counts over the kept counts seen on real data gives the expected FLOPs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from videotl.config import ConfigError, ExperimentConfig
from videotl.models.build import build_model
from videotl.models.complexity import ModelComplexity, measure_complexity
from videotl.models.reducers import set_counted_tokens


def count_model(cfg: ExperimentConfig, ats_kept: int | None = None) -> ModelComplexity:
    """Counts ``cfg``'s model at its test input ``[3, T, S, S]`` (``S = data.test_crop_size``),
    ATS layers keeping ``ats_kept`` tokens per temporal index (None: their ``K``)."""

    def build() -> nn.Module:
        model = build_model(cfg)
        set_counted_tokens(model, ats_kept)
        return model

    size = cfg.data.test_crop_size
    return measure_complexity(build, [3, cfg.data.num_frames, size, size])


def ats_kept_tokens(cfg: ExperimentConfig, ats_kept: int | None = None) -> list[int]:
    """The kept count each ATS layer of ``cfg``'s model is counted with (empty without ATS)."""
    with torch.device("meta"):
        model = build_model(cfg)
    samplers = set_counted_tokens(model, ats_kept)
    return [sampler.tokens_when_counting or sampler.max_tokens for sampler in samplers]


@dataclass
class TokenSweep:
    """GFLOPs of one config for every reducer and token count ``K`` (None: not possible, with the
    reason in ``errors``), and without reduction."""

    input: list[int]
    reducer_layers: list[int]
    baseline_gflops: float
    tokens: list[int]
    gflops: dict[str, list[float | None]]
    ats_kept: int | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def sweep_tokens(
    cfg: ExperimentConfig,
    reducers: Sequence[str],
    tokens: Sequence[int],
    ats_kept: int | None = None,
) -> TokenSweep:
    """GFLOPs of ``cfg``'s model with each reducer in ``reducers`` leaving each of ``tokens`` per
    temporal index at every reducer layer (ATS: ``K``, counted with ``min(ats_kept, K)`` kept)."""
    layers = list(_reducer_layers(cfg))
    baseline = count_model(_with(cfg, reducer_layers=[]))
    gflops: dict[str, list[float | None]] = {}
    errors: dict[str, list[str]] = {}
    for reducer in reducers:
        gflops[reducer] = []
        for count in tokens:
            try:
                stats = count_model(_with(cfg, token_reducer=reducer, reducer_tokens=[count]),
                                    ats_kept)
            except ValueError as error:  # e.g. a count spatial pooling cannot lay out
                if isinstance(error, ConfigError):
                    raise
                gflops[reducer].append(None)
                errors.setdefault(reducer, []).append(f"K={count}: {error}")
                continue
            gflops[reducer].append(stats.gflops)
    return TokenSweep(baseline.input, layers, baseline.gflops, list(tokens), gflops, ats_kept,
                      errors)


def _with(cfg: ExperimentConfig, **model_changes) -> ExperimentConfig:
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **model_changes))


def _reducer_layers(cfg: ExperimentConfig) -> Sequence[int]:
    with torch.device("meta"):
        model = build_model(cfg)
    encoder = getattr(model, "encoder", None)
    if encoder is None or not getattr(encoder, "reducer_layers", ()):
        raise ConfigError(f"model {cfg.model.name!r} has no token reducer to sweep; choose a model "
                          "with one (e.g. vivit_b16_tl8at6, vit_b16_tl8at6)")
    return encoder.reducer_layers
