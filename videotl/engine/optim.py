"""Optimisers (no weight decay on norms and biases) and the warm-up + cosine schedule."""

from __future__ import annotations

import math

import torch
from torch import nn

from videotl.config import SolverConfig, register_choices

OPTIMIZERS = ("sgd", "adamw")
register_choices("solver.optimizer", lambda: OPTIMIZERS)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: weights of conv/linear layers get ``weight_decay``; biases, norm parameters
    and other 1-d parameters (embeddings of size [C] too) get none."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim <= 1 else decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, solver: SolverConfig) -> torch.optim.Optimizer:
    groups = parameter_groups(model, solver.weight_decay)
    if solver.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=solver.base_lr, momentum=solver.momentum, nesterov=solver.nesterov
        )
    if solver.optimizer == "adamw":
        betas = tuple(solver.betas)
        if len(betas) != 2:
            raise ValueError(f"solver.betas needs two values, got {solver.betas}")
        return torch.optim.AdamW(groups, lr=solver.base_lr, betas=betas)
    raise ValueError(f"unknown solver.optimizer {solver.optimizer!r}")


def learning_rate(
    iteration: int,
    total_iters: int,
    warmup_iters: int,
    base_lr: float,
    warmup_start_factor: float = 0.01,
    end_lr: float = 0.0,
) -> float:
    """LR at ``iteration``: linear from ``base_lr * warmup_start_factor`` to ``base_lr`` over
    ``warmup_iters``, then cosine from ``base_lr`` to ``end_lr`` at ``total_iters``."""
    if iteration < warmup_iters:
        start = base_lr * warmup_start_factor
        return start + (base_lr - start) * iteration / warmup_iters
    span = max(total_iters - warmup_iters, 1)
    progress = min((iteration - warmup_iters) / span, 1.0)
    return end_lr + 0.5 * (base_lr - end_lr) * (1.0 + math.cos(math.pi * progress))
