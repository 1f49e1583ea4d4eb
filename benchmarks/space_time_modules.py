#!/usr/bin/env python3
"""Forward + backward of every X(2+1)D space-time module at the paper's shape
(batch 1, C = 432, T = 64, 8 x 8; Table 4), as ratios to the joint space-time MHSA module.

Also checks the TokenLearner module's targets: time <= 0.5 x the joint MHSA module, peak memory
<= 1/4 of the same module with the straightforward vector attention (which holds the
[N, N, C] tensor), outputs and gradients equal to it within 1e-5; and compares the module with
its vector attention on the C kernel (the CPU default) and on PyTorch's fused attention.

    python benchmarks/space_time_modules.py [--device cuda] [--bf16] [--repeats 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import TYPE_CHECKING

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# torch and the modules measured are imported where they are used, after parsing (--help at once).
from benchmarks.common import (  # noqa: E402
    header,
    measure,
    parser,
    use_steady_malloc,
    probe_peak_memory,
    run_probe,
    table,
)

if TYPE_CHECKING:
    import torch

    from videotl.models.space_time import SpaceTimeSpec

SHAPE = (1, 432, 64, 8, 8)
BASELINE = "joint_mhsa"


def step(module: torch.nn.Module, x: torch.Tensor, bf16: bool) -> callable:
    import torch

    def run() -> None:
        inputs = x.detach().requires_grad_()
        context = (torch.autocast(x.device.type, dtype=torch.bfloat16) if bf16
                   else contextlib.nullcontext())
        with context:
            out = module(inputs)
        out.float().square().mean().backward()
    return run


def straightforward(module: torch.nn.Module) -> torch.nn.Module:
    from videotl.models.layers import VectorTransformer

    for layer in module.modules():
        if isinstance(layer, VectorTransformer):
            layer.fused = False
    return module


def on_sdpa(module: torch.nn.Module) -> torch.nn.Module:
    """The module with its vector attention on PyTorch's fused attention kernel."""
    from videotl.models.layers import VectorTransformer

    for layer in module.modules():
        if isinstance(layer, VectorTransformer):
            layer.kernel = "sdpa"
    return module


def equality(device: torch.device) -> float:
    """Largest difference in output and gradients between fused and straightforward."""
    import torch

    from videotl.models.space_time import SpaceTimeSpec, build_space_time_module

    torch.manual_seed(0)
    spec = SpaceTimeSpec(SHAPE[1], SHAPE[2])
    fused = build_space_time_module("tokenlearner", spec).to(device)
    reference = straightforward(build_space_time_module("tokenlearner", spec).to(device))
    reference.load_state_dict(fused.state_dict())
    x = torch.randn(SHAPE, device=device)
    results = []
    for module in (fused, reference):
        inputs = x.clone().requires_grad_()
        out = module(inputs)
        out.square().mean().backward()
        results.append([out, inputs.grad, *(p.grad for p in module.parameters())])
    return max((a - b).abs().max().item() for a, b in zip(*results))


def variants(spec: SpaceTimeSpec) -> dict[str, callable]:
    """Name -> builder of every module measured."""
    from videotl.models.space_time import SPACE_TIME_MODULES, build_space_time_module

    builders = {name: (lambda name=name: build_space_time_module(name, spec))
                for name in SPACE_TIME_MODULES.names()}
    builders[STRAIGHTFORWARD] = lambda: straightforward(
        build_space_time_module("tokenlearner", spec))
    builders[ON_SDPA] = lambda: on_sdpa(build_space_time_module("tokenlearner", spec))
    return builders


STRAIGHTFORWARD = "tokenlearner (straightforward attention)"
ON_SDPA = "tokenlearner (attention on torch SDPA)"


def build_parser() -> argparse.ArgumentParser:
    return parser(__doc__)


def main() -> None:
    args = build_parser().parse_args()
    use_steady_malloc(args)
    import torch

    from videotl.models.space_time import SpaceTimeSpec

    device = torch.device(args.device)
    torch.manual_seed(0)
    x = torch.randn(SHAPE, device=device)
    spec = SpaceTimeSpec(SHAPE[1], SHAPE[2])
    builders = variants(spec)
    if args.probe:
        return run_probe(step(builders[args.probe]().to(device), x, args.bf16), device)
    print(header(args))
    extra = ["--device", args.device] + (["--bf16"] if args.bf16 else [])
    peaks = ({} if device.type == "cuda" else
             {name: probe_peak_memory(__file__, name, extra) for name in builders})
    runs = {name: step(build().to(device), x, args.bf16) for name, build in builders.items()}
    rows = {row.name: row for row in
            measure(runs, device, args.repeats, args.warmup, peaks)}
    print(f"\nforward + backward at [B, C, T, H, W] = {list(SHAPE)}; baseline: {BASELINE}\n")
    print(table(list(rows.values()), rows[BASELINE]))
    tl = rows["tokenlearner"]
    ratios = {name: tl.ratio_to(rows[name]) for name in (BASELINE, STRAIGHTFORWARD, ON_SDPA)}
    print(f"\ntokenlearner time / joint_mhsa time: {ratios[BASELINE][0]:.3f} (target <= 0.5)")
    print(f"tokenlearner peak / straightforward peak: {ratios[STRAIGHTFORWARD][1]:.3f}"
          " (target <= 0.25)")
    print(f"tokenlearner time / straightforward time: {ratios[STRAIGHTFORWARD][0]:.3f}")
    print(f"tokenlearner time / same module on torch SDPA: {ratios[ON_SDPA][0]:.3f}")
    print(f"largest difference fused vs straightforward (output, gradients, fp32): "
          f"{equality(device):.2e}")


if __name__ == "__main__":
    main()
