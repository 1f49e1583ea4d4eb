#!/usr/bin/env python3
"""Whole networks: training step (forward, backward, SGD step) and inference clips/s, as ratios
to a baseline measured in the same run.

Pairs: X(2+1)D-M with conv2d+conv1d (baseline) vs conv2d+tokenlearner at 64 x 224^2, and
ViViT-B/16x2 (baseline) vs ViViT-B/16x2 with 8 TokenLearner tokens at layer 6 at 32 x 224^2.

    python benchmarks/networks.py [--device cuda --bf16] [--batch 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# torch and the model builders are imported where they are used, after parsing (--help at once).
from benchmarks.common import (  # noqa: E402
    header,
    measure,
    parser,
    use_steady_malloc,
    probe_peak_memory,
    run_probe,
    table,
)
from videotl.config import load_config  # noqa: E402

if TYPE_CHECKING:
    import torch

CHARADES = "configs/charades/x2plus1d_m_tokenlearner_64f.yaml"
KINETICS = "configs/kinetics400/vivit_b16.yaml"


@dataclass(frozen=True)
class Variant:
    name: str
    config: str
    overrides: tuple[str, ...]
    frames: int
    size: int


GROUPS = {
    "x2plus1d_m": [
        Variant("x2plus1d_m conv2d+conv1d 64x224", CHARADES,
                ("model.space_time_module=conv2d+conv1d",), 64, 224),
        Variant("x2plus1d_m conv2d+tokenlearner 64x224", CHARADES,
                ("model.space_time_module=conv2d+tokenlearner",), 64, 224),
    ],
    "vivit_b16": [
        Variant("vivit_b16 32x224", KINETICS, (), 32, 224),
        Variant("vivit_b16_tl8at6 32x224", "configs/kinetics400/vivit_b16_tl8at6.yaml", (),
                32, 224),
    ],
}


def build(variant: Variant, device: torch.device) -> torch.nn.Module:
    from videotl.models import build_model

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cfg = load_config(os.path.join(root, variant.config), variant.overrides)
    return build_model(cfg).to(device)


def autocast(device: torch.device, bf16: bool):
    import torch

    return (torch.autocast(device.type, dtype=torch.bfloat16) if bf16
            else contextlib.nullcontext())


def train_step(model, clips, bf16):
    import torch

    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    target = torch.zeros(clips.shape[0], dtype=torch.long, device=clips.device)

    def run() -> None:
        model.train()
        with autocast(clips.device, bf16):
            loss = torch.nn.functional.cross_entropy(model(clips).float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return run


def inference(model, clips, bf16):
    import torch

    def run() -> None:
        model.eval()
        with torch.no_grad(), autocast(clips.device, bf16):
            model(clips)
    return run


MODES = {"train": train_step, "inference": inference}


def build_parser() -> argparse.ArgumentParser:
    cli = parser(__doc__)
    cli.add_argument("--batch", type=int, default=1,
                     help="clips per batch, training and inference (default 1)")
    cli.add_argument("--groups", default=",".join(GROUPS),
                     help=f"comma-separated, from {', '.join(GROUPS)} (default: all)")
    return cli


def main() -> None:
    args = build_parser().parse_args()
    use_steady_malloc(args)
    import torch

    device = torch.device(args.device)
    variants = {v.name: v for group in args.groups.split(",") for v in GROUPS[group]}
    if args.probe:
        mode, name = args.probe.split(":", 1)
        variant = variants[name]
        clips = torch.randn(args.batch, 3, variant.frames, variant.size, variant.size,
                            device=device)
        return run_probe(MODES[mode](build(variant, device), clips, args.bf16), device)
    print(header(args) + f", batch {args.batch}")
    extra = ["--device", args.device, "--batch", str(args.batch), "--groups", args.groups]
    extra += ["--bf16"] if args.bf16 else []
    for group in args.groups.split(","):
        for mode, make in MODES.items():
            peaks = ({} if device.type == "cuda" else
                     {v.name: probe_peak_memory(__file__, f"{mode}:{v.name}", extra)
                      for v in GROUPS[group]})
            runs = {}
            for variant in GROUPS[group]:
                clips = torch.randn(args.batch, 3, variant.frames, variant.size, variant.size,
                                    device=device)
                runs[variant.name] = make(build(variant, device), clips, args.bf16)
            rows = measure(runs, device, args.repeats, args.warmup, peaks)
            del runs
            print(f"\n{group}, {mode} (baseline: {rows[0].name})\n")
            print(table(rows, rows[0]))
            for row in rows:
                rounds = " ".join(f"{seconds:.2f}" for seconds in row.rounds)
                print(f"  {row.name}: {args.batch / row.seconds:.3f} clips/s; rounds (s): "
                      f"{rounds}")


if __name__ == "__main__":
    main()
