"""Exporting a trained model to TorchScript or ONNX (``tools/export.py``).

The model takes clips ``[B, 3, T, S, S]`` and returns logits ``[B, num_classes]``.

- **TorchScript** (``torch.jit.trace``): the graph keeps the C vector attention as the custom op
  ``videotl::vector_attention`` (``videotl.kernels.vector_attention``), so the reloaded model
  gives exactly the same results; loading it needs ``import videotl`` first, which registers the
  op. ``portable=True`` traces PyTorch's scaled-dot-product attention instead (standard
  operators only; loads anywhere, e.g. libtorch in C++, with float rounding differences).
- **ONNX** (``torch.onnx.export(dynamo=True)``, opset 18): ``torch.export`` sees the custom op
  through its fake implementation, and the exporter lowers it with ``_onnx_vector_attention``
  (Transpose, Mul, Softmax, MatMul: the straightforward formula, which holds ``[B, C, N, M]``
  weights). The batch axis is dynamic.

Not exportable (``NOT_EXPORTABLE``): token reducers whose number of tokens depends on the
data. A trace or an ONNX graph has fixed shapes between operators that are shape-dependent in
these reducers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import torch
from torch import nn

from videotl.config import ExperimentConfig
from videotl.errors import InputError, RunError
from videotl.kernels import vector_attention as native
from videotl.models import build_model
from videotl.models.layers import VectorTransformer
from videotl.utils.checkpoint import load_model_weights

logger = logging.getLogger(__name__)

ExportFormat = Literal["torchscript", "onnx"]
EXPORT_FORMATS: tuple[str, ...] = ("torchscript", "onnx")
ONNX_OPSET = 18

# model.token_reducer values that cannot be exported, with the reason.
NOT_EXPORTABLE: dict[str, str] = {
    "ats": "ATS keeps a data-dependent number of tokens (inverse-transform sampling, then "
           "unique), which a traced or ONNX graph cannot express",
}


@dataclass
class ExportResult:
    """Where the model went and for which input ``[B, 3, frames, size, size]``."""

    path: Path
    format: str
    frames: int
    size: int
    max_abs_difference: float


def check_exportable(cfg: ExperimentConfig) -> None:
    """Raises ``InputError`` naming the key when the config's model cannot be exported."""
    reducer = getattr(cfg.model, "token_reducer", None)
    if reducer in NOT_EXPORTABLE:
        raise InputError(f"model.token_reducer={reducer} cannot be exported: "
                         f"{NOT_EXPORTABLE[reducer]}")


def example_clip(frames: int, size: int, batch: int = 1, seed: int = 0) -> torch.Tensor:
    """A random clip ``[batch, 3, frames, size, size]`` to trace with and compare on."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, frames, size, size, generator=generator)


def set_vector_attention_kernel(model: nn.Module, kernel: str) -> None:
    """Sets the kernel of every ``VectorTransformer`` of ``model`` (see ``vector_attention``)."""
    for module in model.modules():
        if isinstance(module, VectorTransformer):
            module.kernel = kernel


def export_torchscript(
    model: nn.Module, clip: torch.Tensor, path: Path, portable: bool = False
) -> nn.Module:
    """Traces ``model`` (eval mode) on ``clip`` ``[B, 3, T, S, S]`` and saves it to ``path``.

    ``portable``: trace the vector attention with PyTorch's fused attention (standard operators)
    instead of the ``videotl::vector_attention`` custom op. Returns the traced module.
    """
    model.eval()
    if portable:
        set_vector_attention_kernel(model, "sdpa")
    with torch.no_grad():
        traced = torch.jit.trace(model, (clip,), check_trace=False)
    torch.jit.save(traced, str(path))
    return traced


def export_onnx(model: nn.Module, clip: torch.Tensor, path: Path) -> None:
    """Exports ``model`` (eval mode) for inputs shaped like ``clip`` ``[B, 3, T, S, S]``, the
    batch axis dynamic, to the ONNX file ``path`` (opset ``ONNX_OPSET``).

    ``B`` must be at least 2: ``torch.export`` specialises axes of size 1 to that size.
    """
    model.eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    try:
        program = torch.onnx.export(
            model, (clip,), dynamo=True, opset_version=ONNX_OPSET,
            input_names=["clip"], output_names=["logits"],
            dynamic_shapes=({0: batch},), custom_translation_table=onnx_translations(),
        )
    except ImportError as error:
        raise InputError(f"ONNX export needs onnx and onnxscript ({error}); "
                         f"pip install videotl[export]") from None
    program.save(str(path))


def onnx_translations() -> dict[Callable, Callable]:
    """The ONNX lowering of videotl's custom ops, for ``torch.onnx.export``'s
    ``custom_translation_table``."""
    return {torch.ops.videotl.vector_attention.default: _onnx_vector_attention()}


def _onnx_vector_attention() -> Callable:
    """``videotl::vector_attention`` in ONNX operators: q ``[B, N, C]``, k, v ``[B, M, C]`` ->
    (y ``[B, N, C]``, log-normaliser ``[B, C, N]``), the softmax over keys per channel."""
    # onnxscript is an optional dependency (the export extra): imported only when exporting.
    from onnxscript import opset18 as op

    def vector_attention(q, k, v):
        q_heads = op.Unsqueeze(op.Transpose(q, perm=[0, 2, 1]), [3])  # [B, C, N, 1]
        k_heads = op.Unsqueeze(op.Transpose(k, perm=[0, 2, 1]), [2])  # [B, C, 1, M]
        v_heads = op.Unsqueeze(op.Transpose(v, perm=[0, 2, 1]), [3])  # [B, C, M, 1]
        logits = op.Mul(q_heads, k_heads)  # [B, C, N, M]
        weights = op.Softmax(logits, axis=3)
        y = op.Transpose(op.Squeeze(op.MatMul(weights, v_heads), [3]), perm=[0, 2, 1])
        largest = op.ReduceMax(logits, [3], keepdims=1)
        lognorm = op.ReduceLogSumExp(op.Sub(logits, largest), [3], keepdims=0)  # [B, C, N]
        return y, lognorm

    return vector_attention


def max_difference(model: nn.Module, exported: Callable, clip: torch.Tensor) -> float:
    """Largest absolute difference of the logits of ``model`` and ``exported`` on ``clip``."""
    with torch.no_grad():
        return (model(clip) - exported(clip)).abs().max().item()


def onnx_runner(path: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """The ONNX model at ``path`` run by onnxruntime on the CPU, as a function of a clip."""
    import onnxruntime  # optional dependency (the export extra)

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda clip: torch.from_numpy(session.run(None, {name: clip.numpy()})[0])


def export_from_config(
    cfg: ExperimentConfig,
    checkpoint: Path | None,
    export_format: str,
    out: Path,
    frames: int | None = None,
    size: int | None = None,
    portable: bool = False,
) -> ExportResult:
    """Builds ``cfg``'s model, loads ``checkpoint`` (strictly), exports it for clips
    ``[B, 3, frames, size, size]`` (default: ``data.num_frames``, ``data.test_crop_size``) and
    checks the exported model against PyTorch on a random clip."""
    if export_format not in EXPORT_FORMATS:
        raise InputError(f"--format {export_format!r}: expected one of {', '.join(EXPORT_FORMATS)}")
    check_exportable(cfg)
    model = build_model(cfg)
    if checkpoint is not None:
        load_model_weights(model, checkpoint, strict=True, model_name=cfg.model.name)
    model.eval()
    frames = frames or cfg.data.num_frames
    size = size or cfg.data.test_crop_size
    clip = example_clip(frames, size, batch=2)  # size-1 axes would not stay dynamic in ONNX
    out.parent.mkdir(parents=True, exist_ok=True)
    if native.native_vector_attention_available():
        logger.info("vector attention: the videotl::vector_attention custom op")
    if export_format == "torchscript":
        export_torchscript(model, clip, out, portable)
        difference = max_difference(model, torch.jit.load(str(out)), clip)
    else:
        export_onnx(model, clip, out)
        difference = max_difference(model, onnx_runner(out), clip)
    if not difference < 1e-3:
        raise RunError(f"{out}: the exported model differs from PyTorch by {difference:.3g}")
    logger.info("wrote %s (%s, input [B, 3, %d, %d, %d]); largest difference to PyTorch %.3g",
                out, export_format, frames, size, size, difference)
    return ExportResult(out, export_format, frames, size, difference)
