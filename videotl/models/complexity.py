"""Parameter and multiply-add counts of a model and of each of its reported modules.

Models are built on PyTorch's ``meta`` device and run once under ``FlopCounterMode``: shapes
propagate, nothing is computed, so full-size networks are counted in well under a second.

Reported modules are those with a string ``kind`` attribute: X(2+1)D's space-time modules, and in
ViT/ViViT the encoder blocks, token reducers and token fusers. The ``input`` of an entry is the
shape of the module's first input without the batch dimension: ``[C, T, H, W]`` for space-time
modules, ``[N, C]`` (tokens, channels) for encoder blocks, ``[T', P, C]`` (temporal indices,
tokens per index, channels) for token reducers acting on a block's input, ``[N, C]`` for those
acting on its attention queries (ATS; their entry counts their scores, the block's entry the
rest) and ``[T', S, C]`` for token fusers. Counts are for one network input; in ViViT's
factorised encoder one spatial block runs on ``T'`` sequences. ATS keeps a data-dependent number
of tokens; on the meta device it keeps ``tokens_when_counting`` (see
``videotl.experiments.reducer_sweep``).

Convention: ``gmacs`` counts multiply-adds of convolutions, linear layers, matrix products and
attention (``Q K^T`` and ``A V``, also for the per-channel vector attention); normalisation,
activations, softmax, pooling and additions are not counted. ``gflops = 2 * gmacs``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass
class ModuleComplexity:
    """Counts for one reported module; ``input`` is its first input's shape without the batch."""

    name: str
    kind: str
    input: list[int]
    params: int
    gmacs: float
    gflops: float = field(init=False)

    def __post_init__(self) -> None:
        self.gflops = 2 * self.gmacs


@dataclass
class ModelComplexity:
    """Counts for a whole network at one input ``[C, T, H, W]`` (batch 1)."""

    params: int
    gmacs: float
    input: list[int]
    modules: list[ModuleComplexity]
    gflops: float = field(init=False)

    def __post_init__(self) -> None:
        self.gflops = 2 * self.gmacs

    def to_dict(self) -> dict:
        """The ``model_stats.py --json`` object."""
        out = asdict(self)
        return {key: out[key] for key in ("params", "gmacs", "gflops", "input", "modules")}


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def has_kind(module: nn.Module) -> bool:
    """The default choice of reported modules: those with a string ``kind`` attribute."""
    return isinstance(getattr(module, "kind", None), str)


def measure_complexity(
    build: Callable[[], nn.Module],
    input_shape: Sequence[int],
    is_reported: Callable[[nn.Module], bool] = has_kind,
) -> ModelComplexity:
    """Counts ``build()``'s parameters and multiply-adds for one input of ``input_shape``.

    Args:
        build: returns the model; it is called under ``torch.device("meta")``.
        input_shape: ``[C, T, H, W]`` (batch 1 is added).
        is_reported: which submodules get their own entry (default: those with a ``kind``),
            listed in the order they first run.
    """
    with torch.device("meta"):
        model = build()
    model.eval()
    inputs: dict[str, list[int]] = {}
    reported = [(name, module) for name, module in model.named_modules() if is_reported(module)]
    hooks = [
        module.register_forward_pre_hook(_record_input(name, inputs)) for name, module in reported
    ]
    counter = FlopCounterMode(display=False)
    try:
        with counter, torch.no_grad():
            model(torch.empty(1, *input_shape, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    counts = counter.get_flop_counts()
    called = list(inputs)  # first-call order; modules never called come last
    reported.sort(key=lambda item: called.index(item[0]) if item[0] in called else len(called))
    root = type(model).__name__
    modules = [
        ModuleComplexity(
            name=name,
            kind=getattr(module, "kind", type(module).__name__),
            input=inputs.get(name, []),
            params=count_parameters(module),
            gmacs=_flops(counts, f"{root}.{name}") / 2e9,
        )
        for name, module in reported
    ]
    return ModelComplexity(
        params=count_parameters(model),
        gmacs=counter.get_total_flops() / 2e9,
        input=list(input_shape),
        modules=modules,
    )


def _record_input(name: str, inputs: dict[str, list[int]]) -> Callable:
    def hook(module: nn.Module, args: tuple) -> None:
        inputs.setdefault(name, list(args[0].shape[1:]))

    return hook


def _flops(counts: dict, key: str) -> int:
    return int(sum(counts.get(key, {}).values()))
