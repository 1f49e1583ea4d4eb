#!/usr/bin/env python3
"""Parameters and GFLOPs of a model and of each of its reported modules (X(2+1)D: space-time
modules; ViT/ViViT: encoder blocks, token reducers, token fusers), for the config's test input
``[3, data.num_frames, data.test_crop_size, data.test_crop_size]``.

GMACs count multiply-adds (conv, linear, matmul, attention); GFLOPs = 2 x GMACs. A module's input
is its first input's shape without the batch: ``[C, T, H, W]`` for space-time modules, ``[N, C]``
for encoder blocks and ATS, ``[T', P, C]`` for other token reducers, ``[T', S, C]`` for token
fusers.

``--variant NAME`` selects one of the paper's ablations (``videotl.experiments.ablation_variants``,
docs/ABLATIONS.md): its overrides are applied before the trailing ones.

``--tokens K1,K2,...`` prints GFLOPs against the tokens per temporal index ``K`` that the
model's reducer layers leave, for each reducer (``--reducers``, default all registered), beside
the model without reduction (docs/TOKEN_REDUCERS.md).

ATS keeps a data-dependent number of tokens: it is counted as if every ATS layer kept
``--ats-kept N`` tokens per temporal index (each at most its K; default: K), and says so.

Example:
    python tools/model_stats.py --config configs/charades/x2plus1d_m_tokenlearner_64f.yaml
    python tools/model_stats.py --config CFG model.space_time_module=conv2d+conv1d --json
    python tools/model_stats.py --config CFG --variant fixed_grid_tokens --json
    python tools/model_stats.py --config configs/kinetics400/vivit_l16_tl16at12.yaml
    python tools/model_stats.py --config configs/kinetics400/vivit_b16_tl8at6.yaml \\
        --tokens 4,16,49 --reducers tokenlearner_v11,ats,grid_pool --ats-kept 8
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from videotl.errors import InputError
from videotl.experiments.ablation_variants import ABLATION_VARIANTS
from videotl.registry import RegistryError
from videotl.utils.cli import ToolParser, config_parser, registry_names
from videotl.utils.tool_errors import run_tool

if TYPE_CHECKING:
    from videotl.experiments.reducer_sweep import TokenSweep
    from videotl.models.complexity import ModelComplexity


def format_table(stats: ModelComplexity, title: str) -> str:
    lines = [
        title,
        f"input [C, T, H, W]: {stats.input}",
        f"params: {stats.params:,} ({stats.params / 1e6:.2f}M)   "
        f"GMACs: {stats.gmacs:.2f}   GFLOPs: {stats.gflops:.2f}   (GFLOPs = 2 x multiply-adds)",
        "",
        f"{'module':<28}{'kind':<22}{'input (no batch)':<22}"
        f"{'params':>12}{'GMACs':>10}{'GFLOPs':>10}",
    ]
    for module in stats.modules:
        lines.append(
            f"{module.name:<28}{module.kind:<22}{str(module.input):<22}"
            f"{module.params:>12,}{module.gmacs:>10.3f}{module.gflops:>10.3f}"
        )
    return "\n".join(lines)


def format_sweep(sweep: TokenSweep, title: str) -> str:
    width = max(14, *(len(name) + 2 for name in sweep.gflops))
    lines = [
        title,
        f"input [C, T, H, W]: {sweep.input}   reducers at layers {sweep.reducer_layers}",
        f"GFLOPs without reduction: {sweep.baseline_gflops:.2f}",
        "GFLOPs with K tokens per temporal index left at each reducer layer:",
        f"{'K':>6}" + "".join(f"{name:>{width}}" for name in sweep.gflops),
    ]
    for row, count in enumerate(sweep.tokens):
        cells = [sweep.gflops[name][row] for name in sweep.gflops]
        lines.append(f"{count:>6}" + "".join(
            f"{'-' if cell is None else f'{cell:.2f}':>{width}}" for cell in cells))
    if "ats" in sweep.gflops:
        kept = "K" if sweep.ats_kept is None else f"min({sweep.ats_kept}, K)"
        lines.append(f"ats: K is its maximum; counted with {kept} kept tokens per temporal index "
                     "(the count depends on the input: --ats-kept)")
    for name, reasons in sweep.errors.items():
        lines.extend(f"{name}, {reason}" for reason in reasons)
    return "\n".join(lines)


def ats_note(kept: list[int], given: int | None) -> str:
    source = "--ats-kept" if given is not None else "K, the most ATS keeps; set --ats-kept"
    return (f"ATS keeps a data-dependent number of tokens: counted with {kept} kept tokens per "
            f"temporal index at its layers ({source})")


def build_parser() -> ToolParser:
    parser = config_parser(__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--variant", help="an ablation variant of docs/ABLATIONS.md")
    parser.add_argument("--tokens", type=_counts, help="GFLOPs vs K: comma-separated counts")
    parser.add_argument("--reducers", help="comma-separated reducers for --tokens (default: all "
                                           "registered; docs/TOKEN_REDUCERS.md)")
    parser.add_argument("--ats-kept", type=int, help="kept tokens per temporal index for ATS")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    overrides = args.overrides
    if args.variant is not None:
        try:
            overrides = [*ABLATION_VARIANTS.get(args.variant).overrides, *overrides]
        except RegistryError as error:
            raise InputError(f"--variant: {error}") from None
    if args.ats_kept is not None and args.ats_kept < 1:
        raise InputError(f"--ats-kept must be >= 1, got {args.ats_kept}")
    # Imported after parsing: --help and argument errors answer without loading torch.
    from videotl.config import load_config
    from videotl.experiments.reducer_sweep import ats_kept_tokens, count_model, sweep_tokens
    from videotl.models.reducers import TOKEN_REDUCERS

    reducers = (TOKEN_REDUCERS.names() if args.reducers is None
                else registry_names(TOKEN_REDUCERS, args.reducers, "--reducers"))
    cfg = load_config(args.config, overrides)
    title = f"model {cfg.model.name} ({args.config}"
    title += f", variant {args.variant})" if args.variant is not None else ")"
    if args.tokens is not None:
        sweep = sweep_tokens(cfg, reducers, args.tokens, args.ats_kept)
        print(json.dumps(sweep.to_dict()) if args.json else format_sweep(sweep, title))
        return
    stats = count_model(cfg, args.ats_kept)
    kept = ats_kept_tokens(cfg, args.ats_kept)
    if args.json:
        out = stats.to_dict()
        if kept:
            out["ats_kept_tokens"] = kept
        print(json.dumps(out))
    else:
        print(format_table(stats, title) + (f"\n{ats_note(kept, args.ats_kept)}" if kept else ""))


def _counts(text: str) -> list[int]:
    try:
        counts = [int(item) for item in text.split(",")]
    except ValueError:
        message = f"expected comma-separated integers, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    if any(count < 1 for count in counts):
        raise argparse.ArgumentTypeError(f"counts must be >= 1, got {text!r}")
    return counts


if __name__ == "__main__":
    run_tool(main)
