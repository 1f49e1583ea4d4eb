"""Mixed precision: autocast to bf16 or fp16 on CUDA (fp16 with a gradient scaler); fp32 on CPU."""

from __future__ import annotations

import contextlib
import logging
from typing import Iterable, Iterator

import torch

from videotl.config import register_choices
from videotl.engine.hooks import HookBase

logger = logging.getLogger(__name__)

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
PRECISIONS = ("fp32", *_DTYPES)
register_choices("train.precision", lambda: PRECISIONS)


class MixedPrecision(HookBase):
    """How the trainer runs the forward pass and applies gradients.

    Args:
        precision: "fp32", "bf16" or "fp16". Autocast applies on CUDA only; on other devices the
            run uses fp32 (and says so once).
        device: the training device.
        clip_grad_norm: clip the global gradient norm to this value (None: no clipping).
    """

    def __init__(
        self, precision: str, device: torch.device, clip_grad_norm: float | None = None
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}")
        if precision != "fp32" and device.type != "cuda":
            logger.info("train.precision=%s applies on CUDA only; using fp32 on %s",
                        precision, device.type)
            precision = "fp32"
        self.precision = precision
        self.device = device
        self.clip_grad_norm = clip_grad_norm
        self.scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The dtype the forward pass is autocast to (None: fp32, no autocast)."""
        return _DTYPES.get(self.precision)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        if self.autocast_dtype is None:
            yield
            return
        with torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype):
            yield

    def backward_and_step(
        self, loss: torch.Tensor, optimizer: torch.optim.Optimizer,
        parameters: Iterable[torch.nn.Parameter],
    ) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.clip_grad_norm is not None:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(list(parameters), self.clip_grad_norm)
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict:
        return {"scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
