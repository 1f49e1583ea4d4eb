"""The training loop: forward, loss, backward, step; everything else is a hook."""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Iterable, Sized

import torch
from torch import nn

from videotl.engine.hooks import HookBase
from videotl.engine.precision import MixedPrecision
from videotl.errors import RunError
from videotl.utils.checkpoint import rng_state, set_rng_state
from videotl.utils.distributed import unwrap_model

logger = logging.getLogger(__name__)


class NonFiniteLossError(RunError, FloatingPointError):
    """The loss became NaN or infinite; the message names the iteration and the last finite
    loss."""


class Trainer:
    """Trains ``model`` for ``epochs`` epochs (or until ``max_iters`` iterations) on ``loader``.

    Args:
        model: the (possibly DistributedDataParallel-wrapped) model.
        optimizer: its optimiser.
        loader: yields dicts with ``"video"`` ``[B, C, T, H, W]`` and ``"target"``.
        loss_fn: ``(logits, targets) -> loss``.
        precision: autocast, backward and optimiser step (a hook: its state is checkpointed).
        device: where batches go.
        epochs: epochs to train.
        max_iters: stop after this many iterations in all (None: full epochs).
        hooks: called in order around training, epochs and steps.
        world_size: processes training together (for clips/s).
        clock: seconds for every timing of the loop and its hooks (``time.perf_counter``;
            tests give a fake one).

    The loop puts into ``storage["data_seconds"]`` the seconds each iteration waited for its
    batch: the time inside the loader's ``next``, where the batch is read and decoded when the
    loader's workers have not prepared it yet (the first batch of an epoch also starts them).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loader: Iterable,
        loss_fn: nn.Module,
        precision: MixedPrecision,
        device: torch.device,
        epochs: int,
        max_iters: int | None = None,
        hooks: Iterable[HookBase] = (),
        world_size: int = 1,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.loader = loader
        self.loss_fn = loss_fn
        self.precision = precision
        self.device = device
        self.epochs = epochs
        self.max_iters = max_iters
        self.world_size = world_size
        self.clock = clock
        self.epoch = 0
        self.iteration = 0
        self.start_epoch = 0
        self.last_finite_loss: tuple[int, float] | None = None
        self.storage: dict[str, Any] = {}
        self.hooks: list[HookBase] = []
        for hook in (precision, *hooks):
            hook.trainer = self
            self.hooks.append(hook)

    def is_last_epoch(self) -> bool:
        """True during the epoch that ends training (by ``epochs`` or ``max_iters``)."""
        reached = self.max_iters is not None and self.iteration >= self.max_iters
        return self.epoch + 1 >= self.epochs or reached

    def iterations_in_epoch(self) -> int:
        remaining = (self.max_iters - self.iteration) if self.max_iters else math.inf
        return int(min(len(self.loader) if isinstance(self.loader, Sized) else math.inf,
                       remaining))

    def total_iterations(self) -> int | None:
        """Iterations of the whole training (all epochs, at most ``max_iters``); None when the
        loader has no length and ``max_iters`` is not set."""
        per_epoch = len(self.loader) if isinstance(self.loader, Sized) else None
        if per_epoch is None:
            return self.max_iters
        total = per_epoch * self.epochs
        return total if self.max_iters is None else min(total, self.max_iters)

    def train(self) -> None:
        self._call("before_train")
        for epoch in range(self.start_epoch, self.epochs):
            if self.max_iters is not None and self.iteration >= self.max_iters:
                break
            self.epoch = epoch
            for part in (getattr(self.loader, "sampler", None),
                         getattr(self.loader, "dataset", None)):
                if hasattr(part, "set_epoch"):
                    part.set_epoch(self.epoch)  # the epoch's order, clips and augmentation
            self._call("before_epoch")
            waiting = self.clock()
            for batch in self.loader:
                self.storage["data_seconds"] = self.clock() - waiting
                self._call("before_step")
                self.run_step(batch)
                self._call("after_step")
                self.iteration += 1
                if self.max_iters is not None and self.iteration >= self.max_iters:
                    break
                waiting = self.clock()
            self._call("after_epoch")
        self._call("after_train")

    def run_step(self, batch: dict[str, Any]) -> None:
        self.model.train()
        clips = batch["video"].to(self.device, non_blocking=True)
        targets = batch["target"].to(self.device, non_blocking=True)
        with self.precision.autocast():
            logits = self.model(clips)
        loss = self.loss_fn(logits.float(), targets)
        value = loss.item()
        if not math.isfinite(value):
            last = (f"the last finite loss was {self.last_finite_loss[1]:.6g} at iteration "
                    f"{self.last_finite_loss[0]}" if self.last_finite_loss else
                    "no finite loss was seen")
            raise NonFiniteLossError(
                f"loss is {value} at iteration {self.iteration} (epoch {self.epoch + 1}); {last}. "
                "Lower solver.base_lr, add warm-up (solver.warmup_epochs) or clipping "
                "(solver.clip_grad_norm)."
            )
        self.last_finite_loss = (self.iteration, value)
        self.precision.backward_and_step(loss, self.optimizer, self.model.parameters())
        self.storage["loss"] = value
        self.storage["batch_size"] = clips.shape[0]

    def _call(self, name: str) -> None:
        for hook in self.hooks:
            getattr(hook, name)()

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue after this epoch (call at an epoch's end)."""
        return {
            "model": unwrap_model(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch + 1,
            "iteration": self.iteration,
            "hooks": {type(h).__name__: h.state_dict() for h in self.hooks},
            "rng": rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        unwrap_model(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.start_epoch = state["epoch"]
        self.iteration = state["iteration"]
        for hook in self.hooks:
            hook.load_state_dict(state["hooks"].get(type(hook).__name__, {}))
        set_rng_state(state["rng"])
