"""Hooks: everything the training loop does besides forward, backward and step.

A hook overrides any of ``before_train``, ``before_epoch``, ``before_step``, ``after_step``,
``after_epoch``, ``after_train``; the trainer calls them in registration order. Hooks with state
to resume (``state_dict`` / ``load_state_dict``) are saved in checkpoints by their class name.
Values hooks share for one step or epoch go through ``trainer.storage``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from videotl.engine.optim import learning_rate
from videotl.utils import checkpoint as ckpt

if TYPE_CHECKING:
    from videotl.engine.trainer import Trainer

logger = logging.getLogger(__name__)


class HookBase:
    trainer: "Trainer"

    def before_train(self) -> None: ...

    def before_epoch(self) -> None: ...

    def before_step(self) -> None: ...

    def after_step(self) -> None: ...

    def after_epoch(self) -> None: ...

    def after_train(self) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class LRScheduleHook(HookBase):
    """Sets every parameter group's LR before each step: linear warm-up, then cosine decay."""

    def __init__(self, base_lr: float, warmup_iters: int, total_iters: int,
                 warmup_start_factor: float, end_lr: float) -> None:
        self.base_lr = base_lr
        self.warmup_iters = warmup_iters
        self.total_iters = total_iters
        self.warmup_start_factor = warmup_start_factor
        self.end_lr = end_lr

    def before_step(self) -> None:
        lr = learning_rate(self.trainer.iteration, self.total_iters, self.warmup_iters,
                           self.base_lr, self.warmup_start_factor, self.end_lr)
        for group in self.trainer.optimizer.param_groups:
            group["lr"] = lr
        self.trainer.storage["lr"] = lr


class StepTimerHook(HookBase):
    """Measures each step (forward, backward, optimiser step and the hooks between this one's
    ``before_step`` and ``after_step``) with the trainer's clock, into the storage:
    ``step_seconds``; ``iteration_seconds``, the step plus the wait for its batch
    (``data_seconds``, measured by the loop); ``clips_per_second`` of the step, all processes
    together."""

    def __init__(self, world_size: int) -> None:
        self.world_size = world_size
        self._start = 0.0

    def before_step(self) -> None:
        self._start = self.trainer.clock()

    def after_step(self) -> None:
        seconds = self.trainer.clock() - self._start
        storage = self.trainer.storage
        storage["step_seconds"] = seconds
        storage["iteration_seconds"] = storage.get("data_seconds", 0.0) + seconds
        storage["clips_per_second"] = storage["batch_size"] * self.world_size / max(seconds, 1e-9)


class EvalHook(HookBase):
    """Runs ``evaluate()`` (returning a dict of metrics) every ``period`` epochs and at the last
    epoch; the result goes to ``trainer.storage["eval"]`` for the loggers."""

    def __init__(self, period: int, evaluate: Callable[[], dict[str, Any]]) -> None:
        self.period = period
        self.evaluate = evaluate

    def after_epoch(self) -> None:
        if (self.trainer.epoch + 1) % self.period == 0 or self.trainer.is_last_epoch():
            self.trainer.storage["eval"] = self.evaluate()


class CheckpointHook(HookBase):
    """Saves the trainer's state every ``period`` epochs and at the end (main process only),
    keeping the newest ``keep`` checkpoints; ``extra`` is stored alongside (e.g. the config)."""

    def __init__(self, output_dir: str, period: int, keep: int, is_main: bool,
                 extra: dict[str, Any] | None = None) -> None:
        self.output_dir = output_dir
        self.period = period
        self.keep = keep
        self.is_main = is_main
        self.extra = extra or {}

    def after_epoch(self) -> None:
        epoch = self.trainer.epoch + 1
        if not self.is_main or (epoch % self.period and not self.trainer.is_last_epoch()):
            return
        path = ckpt.checkpoint_path(self.output_dir, epoch)
        ckpt.save_checkpoint({**self.trainer.state_dict(), **self.extra}, path)
        ckpt.prune_checkpoints(self.output_dir, self.keep)
        self.trainer.storage["checkpoint"] = str(path)
