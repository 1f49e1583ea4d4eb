"""Per-channel (vector) attention on the CPU with the C kernel of ``vector_attention.c``.

``y_i[c] = sum_j softmax_j(q_i[c] k_j[c]) v_j[c]``. The forward pass keeps each row's
log-normaliser, relative to the row's largest logit (which the backward pass recomputes from
``q`` and the extremes of ``k``); the backward pass evaluates the attention weights again from
it. Nothing of size ``N x M`` is stored, and each pass evaluates one exponential per logit.
"""

from __future__ import annotations

import ctypes
import warnings

import torch

from videotl.kernels.build import load_kernel

_POINTER = ctypes.c_void_p
_SIZE = ctypes.c_long
_warned = False


def _library() -> ctypes.CDLL | None:
    global _warned
    kernel = load_kernel("vector_attention")
    if kernel.library is None:
        if not _warned:
            warnings.warn(f"videotl: the native vector-attention kernel is unavailable "
                          f"({kernel.reason}); using PyTorch's fused attention instead, about "
                          f"2x slower on the CPU", RuntimeWarning, stacklevel=3)
            _warned = True
        return None
    library = kernel.library
    if not getattr(library, "videotl_signatures_set", False):
        forward, backward = (library.videotl_vector_attention_forward,
                             library.videotl_vector_attention_backward)
        forward.argtypes = [_POINTER] * 5 + [_SIZE] * 3 + [ctypes.c_int]
        backward.argtypes = [_POINTER] * 9 + [_SIZE] * 3 + [ctypes.c_int]
        forward.restype = backward.restype = None
        library.videotl_signatures_set = True
    return library


def native_vector_attention_available() -> bool:
    """Whether the C kernel is built and loaded (building it on first call)."""
    return _library() is not None


# torch.compile must not trace the build (a lock, ctypes): the answer is a constant of the graph.
# This is all torch.compiler.assume_constant_result does; calling it would import torch._dynamo
# (about 2 s) with every model. The torch.compile test (fullgraph) fails if the mark stops working.
native_vector_attention_available._dynamo_marked_constant = True  # type: ignore[attr-defined]


def supports(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> bool:
    """Whether the kernel handles these inputs (float32 CPU tensors, at least one query and one
    key). Does not build the kernel."""
    return (all(t.device.type == "cpu" and t.dtype == torch.float32 for t in (q, k, v))
            and k.shape[1] > 0 and q.shape[1] > 0)


def native_vector_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Vector attention with the C kernel, through the custom op ``videotl::vector_attention``.

    Args:
        q: ``[B, N, C]``; k, v: ``[B, M, C]``; float32 on the CPU.

    Returns:
        ``[B, N, C]``. Differentiable once (the backward pass is not itself differentiable).

    Raises:
        RuntimeError: the kernel could not be built (the message says why).
    """
    if not supports(q, k, v):
        raise ValueError(f"native_vector_attention needs float32 CPU tensors with N, M >= 1; got "
                         f"{q.dtype} {tuple(q.shape)} on {q.device}, {tuple(k.shape)}")
    if not native_vector_attention_available():
        raise RuntimeError(f"the native vector-attention kernel is unavailable: "
                           f"{load_kernel('vector_attention').reason}")
    return torch.ops.videotl.vector_attention(q, k, v)[0]


def _channel_major(x: torch.Tensor) -> torch.Tensor:
    """``[B, L, C] -> [B, C, L]``, contiguous (no copy for a transposed channel-major tensor)."""
    return x.transpose(1, 2).contiguous()


def _threads(channels: int) -> int:
    return max(1, min(torch.get_num_threads(), channels))


# The kernel as torch.library custom ops, so that torch.compile, torch.export and TorchScript
# (tracing) see one opaque operator with known output shapes instead of ctypes calls on raw
# pointers. The forward op also returns the per-row log-normaliser that the backward op needs
# (as aten's flash attention returns its logsumexp); it is an auxiliary output, not
# differentiable. Outputs are transposed views of channel-major buffers, and the fake
# implementations give the same strides.


@torch.library.custom_op("videotl::vector_attention", mutates_args=(), device_types="cpu")
def vector_attention_op(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``videotl::vector_attention``: q ``[B, N, C]``, k, v ``[B, M, C]`` (float32, CPU) ->
    (y ``[B, N, C]``, log-normaliser ``[B, C, N]``)."""
    batch, n, channels = q.shape
    m = k.shape[1]
    q_c, k_c, v_c = (_channel_major(t) for t in (q, k, v))
    y = torch.empty_like(q_c)
    lognorm = torch.empty_like(q_c)
    rows = batch * channels
    _library().videotl_vector_attention_forward(
        q_c.data_ptr(), k_c.data_ptr(), v_c.data_ptr(), y.data_ptr(), lognorm.data_ptr(),
        rows, n, m, _threads(rows))
    return y.transpose(1, 2), lognorm


@vector_attention_op.register_fake
def _vector_attention_fake(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    batch, n, channels = q.shape
    channel_major = q.new_empty((batch, channels, n))
    return channel_major.transpose(1, 2), q.new_empty((batch, channels, n))


@torch.library.custom_op("videotl::vector_attention_backward", mutates_args=(),
                         device_types="cpu")
def vector_attention_backward_op(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, y: torch.Tensor, lognorm: torch.Tensor,
    grad: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``videotl::vector_attention_backward``: the gradients ``(dq [B, N, C], dk [B, M, C],
    dv [B, M, C])`` of ``videotl::vector_attention`` for ``grad`` ``[B, N, C]`` of its ``y``."""
    batch, n, channels = q.shape
    m = k.shape[1]
    q_c, k_c, v_c, y_c, g = (_channel_major(t) for t in (q, k, v, y, grad.float()))
    lognorm = lognorm.contiguous()
    dq, dk, dv = torch.empty_like(q_c), torch.empty_like(k_c), torch.empty_like(v_c)
    rows = batch * channels
    _library().videotl_vector_attention_backward(
        q_c.data_ptr(), k_c.data_ptr(), v_c.data_ptr(), y_c.data_ptr(), lognorm.data_ptr(),
        g.data_ptr(), dq.data_ptr(), dk.data_ptr(), dv.data_ptr(), rows, n, m, _threads(rows))
    return dq.transpose(1, 2), dk.transpose(1, 2), dv.transpose(1, 2)


@vector_attention_backward_op.register_fake
def _vector_attention_backward_fake(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, y: torch.Tensor, lognorm: torch.Tensor,
    grad: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    def like(x: torch.Tensor) -> torch.Tensor:
        return x.new_empty((x.shape[0], x.shape[2], x.shape[1])).transpose(1, 2)

    return like(q), like(k), like(v)


def _setup_context(ctx, inputs: tuple[torch.Tensor, ...], output: tuple[torch.Tensor, ...]):
    ctx.save_for_backward(*inputs, *output)


def _backward(ctx, grad_y: torch.Tensor | None, grad_lognorm: torch.Tensor | None):
    q, k, v, y, lognorm = ctx.saved_tensors
    if grad_y is None:
        grad_y = torch.zeros_like(y)
    return torch.ops.videotl.vector_attention_backward(q, k, v, y, lognorm, grad_y)


vector_attention_op.register_autograd(_backward, setup_context=_setup_context)
