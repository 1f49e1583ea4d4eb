#!/usr/bin/env python3
"""Parameters and GFLOPs of a model and of each of its reported modules (X(2+1)D: space-time
modules; ViT/ViViT: encoder blocks, token reducers, token fusers), for the config's test input
``[3, data.num_frames, data.test_crop_size, data.test_crop_size]``.

GMACs count multiply-adds (conv, linear, matmul, attention); GFLOPs = 2 x GMACs. A module's input
is its first input's shape without the batch: ``[C, T, H, W]`` for space-time modules, ``[N, C]``
for encoder blocks, ``[T', P, C]`` for token reducers, ``[T', S, C]`` for token fusers.

``--variant NAME`` selects one of the paper's ablations (``videotl.models.ablations``,
docs/ABLATIONS.md): its overrides are applied before the trailing ones.

Example:
    python tools/model_stats.py --config configs/charades/x2plus1d_m_tokenlearner_64f.yaml
    python tools/model_stats.py --config CFG model.space_time_module=conv2d+conv1d --json
    python tools/model_stats.py --config CFG --variant fixed_grid_tokens --json
    python tools/model_stats.py --config configs/kinetics400/vivit_l16_tl16at12.yaml
"""

from __future__ import annotations

import json

from videotl.config import ConfigError
from videotl.models import build_model
from videotl.models.ablations import ABLATION_VARIANTS
from videotl.models.complexity import ModelComplexity, measure_complexity
from videotl.registry import RegistryError
from videotl.utils.cli import config_parser, exit_with_error, load_or_exit


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


def main() -> None:
    parser = config_parser(__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--variant", help="an ablation variant of docs/ABLATIONS.md")
    args = parser.parse_args()
    overrides = args.overrides
    if args.variant is not None:
        try:
            overrides = [*ABLATION_VARIANTS.get(args.variant).overrides, *overrides]
        except RegistryError as error:
            exit_with_error(ConfigError(f"--variant: {error}"))
    cfg = load_or_exit(args.config, overrides)
    size = cfg.data.test_crop_size
    try:
        stats = measure_complexity(lambda: build_model(cfg), [3, cfg.data.num_frames, size, size])
    except ConfigError as error:
        exit_with_error(error)
    if args.json:
        print(json.dumps(stats.to_dict()))
    else:
        title = f"model {cfg.model.name} ({args.config}"
        title += f", variant {args.variant})" if args.variant is not None else ")"
        print(format_table(stats, title))


if __name__ == "__main__":
    main()
