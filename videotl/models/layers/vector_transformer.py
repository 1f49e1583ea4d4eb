"""Vector Transformer (Ryoo et al. 2021, eq. 2): one attention map per channel.

``y_i = sum_j softmax_j(f_q(z_i) * f_k(z_j)) * f_v(z_j)``, the softmax taken over ``j`` separately
for every channel. Two kernels evaluate it without ever holding the ``[B, N, N, C]`` tensor,
recomputing the attention weights in the backward pass: a C kernel for float32 on the CPU
(``videotl.kernels``), and PyTorch's scaled-dot-product attention with one head per channel, head
size 1 and scale 1, for everything else.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from videotl.kernels import vector_attention as native


def vector_attention_reference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, gamma: torch.Tensor | None = None
) -> torch.Tensor:
    """Straightforward eq. 2, materialising the whole attention tensor (test oracle).

    Args:
        q: ``[B, N, D]``; k: ``[B, M, D]``; v: ``[B, M, C]``.
        gamma: optional ``[C, D]`` projection of ``q_i * k_j`` (required when ``D != C``).

    Returns:
        ``[B, N, C]``.
    """
    logits = q[:, :, None, :] * k[:, None, :, :]  # [B, N, M, D]
    if gamma is not None:
        logits = logits @ gamma.t()  # [B, N, M, C]
    return (logits.softmax(dim=2) * v[:, None, :, :]).sum(dim=2)


def _as_heads(x: torch.Tensor, head_dim: int) -> torch.Tensor:
    """``[B, N, C] -> [B, C, N, head_dim]``, zero-padding the one real feature to ``head_dim``.

    The result is contiguous: the fused CPU kernel runs about 10% faster forward and backward on
    contiguous heads than on the strided view (``benchmarks/space_time_modules.py``).
    """
    heads = x.transpose(1, 2).unsqueeze(-1)
    return F.pad(heads, (0, head_dim - 1)) if head_dim > 1 else heads.contiguous()


VectorAttentionKernel = Literal["auto", "native", "sdpa"]


def vector_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    head_dim: int | None = None,
    kernel: VectorAttentionKernel = "auto",
) -> torch.Tensor:
    """Per-channel attention ``y_i[c] = sum_j softmax_j(q_i[c] k_j[c]) v_j[c]``.

    Args:
        q: ``[B, N, C]``; k, v: ``[B, M, C]``.
        head_dim: size each one-feature head is zero-padded to before PyTorch's fused attention
            kernel (``sdpa``). Padding leaves the result unchanged; CUDA's fused kernels need 8,
            the CPU kernel 1. Default: 8 on CUDA, 1 elsewhere.
        kernel: ``native``: the C kernel of ``videotl.kernels`` (float32 on the CPU, built at
            first use; 2-3x faster there, see BENCHMARKS.md); ``sdpa``: PyTorch's
            ``scaled_dot_product_attention`` with one head per channel; ``auto`` (default):
            ``native`` where it applies and could be built, else ``sdpa``.

    Returns:
        ``[B, N, C]``.
    """
    if q.shape[-1] != k.shape[-1] or k.shape != v.shape or q.shape[0] != k.shape[0]:
        raise ValueError(
            f"vector_attention needs q [B, N, C] and k, v [B, M, C]; got {tuple(q.shape)}, "
            f"{tuple(k.shape)}, {tuple(v.shape)}"
        )
    if kernel not in get_args(VectorAttentionKernel):
        raise ValueError(f"unknown vector_attention kernel {kernel!r} "
                         f"(known: {', '.join(get_args(VectorAttentionKernel))})")
    if kernel == "native" or (
        kernel == "auto" and native.supports(q, k, v) and native.native_vector_attention_available()
    ):
        return native.native_vector_attention(q, k, v)
    if head_dim is None:
        head_dim = 8 if q.is_cuda else 1
    out = F.scaled_dot_product_attention(
        _as_heads(q, head_dim), _as_heads(k, head_dim), _as_heads(v, head_dim), scale=1.0
    )
    return out[..., 0].transpose(1, 2)


def projected_vector_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, gamma: torch.Tensor, chunk_size: int = 64
) -> torch.Tensor:
    """Eq. 2 with a projection ``gamma`` of ``q_i * k_j`` from ``D`` to ``C`` channels.

    Queries are processed ``chunk_size`` at a time; each chunk is recomputed in the backward pass,
    so at most ``[B, chunk_size, M, max(C, D)]`` elements are alive at once.

    Args:
        q: ``[B, N, D]``; k: ``[B, M, D]``; v: ``[B, M, C]``; gamma: ``[C, D]``.

    Returns:
        ``[B, N, C]``.
    """
    chunks = []
    for start in range(0, q.shape[1], chunk_size):
        q_chunk = q[:, start : start + chunk_size]
        if torch.is_grad_enabled():
            chunks.append(
                checkpoint(vector_attention_reference, q_chunk, k, v, gamma, use_reentrant=False)
            )
        else:
            chunks.append(vector_attention_reference(q_chunk, k, v, gamma))
    return torch.cat(chunks, dim=1)


class VectorTransformer(nn.Module):
    """Vector attention between tokens (eq. 2) with query/key/value and output projections.

    Args:
        dim: channels ``C`` of the tokens.
        qk_dim: channels ``d`` of the query/key projections (default ``C``). When ``d != C`` an
            extra projection ``gamma`` maps each ``f_q(z_i) * f_k(z_j)`` to ``C`` channels before
            the softmax, as the paper describes.
        norm: apply LayerNorm to the tokens before the projections.
        chunk_size: queries per chunk on the ``d != C`` path.
        fused: evaluate the attention with the fused kernels (default); False uses the
            straightforward formula that holds the whole ``[B, N, N, C]`` tensor (a baseline).
        kernel: which fused kernel evaluates it (see ``vector_attention``).

    Shapes:
        input ``z``: ``[B, N, C]``; output ``[B, N, C]``.
    """

    def __init__(
        self,
        dim: int,
        qk_dim: int | None = None,
        norm: bool = True,
        chunk_size: int = 64,
        fused: bool = True,
        kernel: VectorAttentionKernel = "auto",
    ) -> None:
        super().__init__()
        qk_dim = dim if qk_dim is None else qk_dim
        self.norm = nn.LayerNorm(dim) if norm else nn.Identity()
        self.query = nn.Linear(dim, qk_dim)
        self.key = nn.Linear(dim, qk_dim)
        self.value = nn.Linear(dim, dim)
        self.gamma = nn.Linear(qk_dim, dim, bias=False) if qk_dim != dim else None
        self.proj = nn.Linear(dim, dim)
        self.chunk_size = chunk_size
        self.fused = fused
        self.kernel = kernel

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = self.norm(z)
        q, k, v = self.query(z), self.key(z), self.value(z)
        gamma = None if self.gamma is None else self.gamma.weight
        if not self.fused:
            y = vector_attention_reference(q, k, v, gamma)
        elif gamma is None:
            y = vector_attention(q, k, v, kernel=self.kernel)
        else:
            y = projected_vector_attention(q, k, v, gamma, self.chunk_size)
        return self.proj(y)
