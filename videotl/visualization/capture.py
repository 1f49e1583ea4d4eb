"""Capturing TokenLearner's attention maps ``alpha_i(x)`` from a model without changing its output.

The TokenLearners of a model are its ``TokenLearner`` (v1: sigmoid maps, in X(2+1)D's res5 blocks
and the ``tokenlearner_v1`` reducer of ViT/ViViT) and ``TokenLearnerV11`` (v1.1: softmax over
positions, the ``tokenlearner_v11`` reducer) modules, numbered in the order of
``model.named_modules()``, which is the order they run in for the models of this toolkit.

``AttentionMapCapture`` puts a forward hook on one of them. The hook leaves the module's output
untouched; it calls the module's own ``forward(..., return_maps=True)`` again on the same input
(a second run of that one small module) and keeps the maps, laid out on their spatial grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from videotl.models.layers import TokenLearner, TokenLearnerV11

MAP_KINDS = {TokenLearner: "sigmoid", TokenLearnerV11: "softmax"}


@dataclass(frozen=True)
class LearnerInfo:
    """One TokenLearner of a model: its number (``--layer``), module name and map kind
    (``"sigmoid"``: each value in (0, 1); ``"softmax"``: each map sums to 1 over its grid)."""

    index: int
    name: str
    kind: str


def token_learners(model: nn.Module) -> list[tuple[LearnerInfo, nn.Module]]:
    """The TokenLearners of ``model`` in ``named_modules()`` order, with their descriptions."""
    found = []
    for name, module in model.named_modules():
        for cls, kind in MAP_KINDS.items():
            if isinstance(module, cls):
                found.append((LearnerInfo(len(found), name, kind), module))
                break
    return found


def select_learner(model: nn.Module, layer: int) -> tuple[LearnerInfo, nn.Module]:
    """TokenLearner number ``layer`` of ``model`` (negative numbers count from the last).

    Raises:
        ValueError: the model has no TokenLearner, or ``layer`` is out of range (the message
            lists the TokenLearners there are).
    """
    learners = token_learners(model)
    if not learners:
        raise ValueError(
            f"{type(model).__name__} has no TokenLearner (TokenLearner or TokenLearnerV11 "
            "module) whose attention maps could be shown; choose a model with one, e.g. "
            "model.space_time_module=conv2d+tokenlearner or a *_tl* ViT/ViViT"
        )
    if not -len(learners) <= layer < len(learners):
        listing = "\n".join(f"  {info.index}: {info.name} ({info.kind} maps)"
                            for info, _ in learners)
        raise ValueError(f"--layer {layer} is out of range; the model has {len(learners)} "
                         f"TokenLearner(s):\n{listing}")
    return learners[layer]


class AttentionMapCapture:
    """Records the attention maps of TokenLearner number ``layer`` during forward passes.

    >>> with AttentionMapCapture(model, layer=0) as capture:
    ...     logits = model(clip)
    >>> maps = capture.maps[-1]             # [B', T', S, h, w], one entry per call

    ``B'`` is the batch the TokenLearner saw: the model's batch, or batch x temporal indices for a
    factorised ViViT encoder (then ``T' = 1``); ``maps_for_batch`` folds that back. Maps are
    detached float32 tensors on the model's device.

    Args:
        model: any module holding the TokenLearner.
        layer: which TokenLearner (see ``select_learner``).
    """

    def __init__(self, model: nn.Module, layer: int = 0) -> None:
        self.info, self.module = select_learner(model, layer)
        self.maps: list[torch.Tensor] = []
        self._handle: Any = None

    def __enter__(self) -> "AttentionMapCapture":
        self._handle = self.module.register_forward_hook(self._record, with_kwargs=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()
        self._handle = None

    def _record(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        self.maps.append(grid_maps(module, args, kwargs, self.info.name).detach().float())

    def maps_for_batch(self, batch: int) -> torch.Tensor:
        """The last call's maps as ``[batch, T', S, h, w]``."""
        if not self.maps:
            raise RuntimeError(f"TokenLearner {self.info.name} did not run in the forward pass")
        maps = self.maps[-1]
        return maps.reshape(batch, -1, *maps.shape[2:])


def grid_maps(module: nn.Module, args: tuple, kwargs: dict, name: str) -> torch.Tensor:
    """The maps a TokenLearner computes for the input of one call: ``[B, T, S, h, w]``."""
    x = args[0] if args else next(iter(kwargs.values()))
    with torch.no_grad():
        if isinstance(module, TokenLearner):
            return TokenLearner.forward(module, x, return_maps=True)[1]
        maps = TokenLearnerV11.forward(module, x, return_maps=True)[1]  # [B, T, S, P]
    grid = args[1] if len(args) > 1 else kwargs.get("grid")
    if grid is None or grid[0] * grid[1] != maps.shape[-1]:
        raise ValueError(
            f"TokenLearner {name} got {maps.shape[-1]} tokens per frame without their grid "
            f"(got {grid}); its maps cannot be laid out on the frame. An earlier token reducer "
            "may have left the grid: choose the first TokenLearner (--layer 0)"
        )
    return maps.unflatten(-1, tuple(grid))
