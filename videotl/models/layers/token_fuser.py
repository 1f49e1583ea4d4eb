"""TokenFuser (Ryoo et al. 2021, §3.2) and its v1.1 variant used with ViT/ViViT."""

from __future__ import annotations

import torch
from torch import nn

from videotl.models.layers.mlp import Mlp


class TokenFuser(nn.Module):
    """Fuses ``S*T`` tokens into one vector per frame and adds it to every location of the frame.

    ``o_t[c] = sum_i w_{t,i} y_i[c] + b_t``: a linear map ``R^{S*T} -> R^T`` over the tokens,
    shared by all channels. ``o_t`` is broadcast over ``H x W`` and added to the residual.

    Args:
        num_tokens: tokens ``S`` per frame.
        num_frames: frames ``T`` (the map's size depends on it).

    Shapes:
        tokens ``y``: ``[B, T*S, C]``; residual ``x``: ``[B, C, T, H, W]``; output like ``x``.
    """

    def __init__(self, num_tokens: int, num_frames: int) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.num_frames = num_frames
        self.mix = nn.Linear(num_tokens * num_frames, num_frames)

    def forward(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        expected = self.num_tokens * self.num_frames
        if y.shape[1] != expected or x.shape[2] != self.num_frames:
            raise ValueError(
                f"TokenFuser was built for num_frames={self.num_frames} x num_tokens="
                f"{self.num_tokens} ({expected} tokens); got {y.shape[1]} tokens for an input of "
                f"{x.shape[2]} frames. Build it with num_frames={x.shape[2]}."
            )
        fused = self.mix(y.transpose(1, 2))  # [B, C, T]
        return x + fused[..., None, None]


class TokenFuserV11(nn.Module):
    """TokenFuser v1.1: re-mixes tokens back to every position with learned sigmoid weights
    (Scenic's ``TokenFuser`` in ``scenic/projects/token_learner/model.py``).

    The tokens are mixed among themselves by a linear map over the token axis; each position ``p``
    of the original (pre-TokenLearner) tensor gets ``sum_s sigmoid(m(x_p))_s * y_s`` where ``m``
    is an MLP on the normalised original features. The result is added to the original.

    With ``zero_init_mix`` the token-mixing weight starts at zero (its bias is always zero at
    initialisation), as released: the mixed tokens are then 0, their LayerNorm gives 0, and a
    freshly inserted fuser is a pure residual (output = ``x``).

    Args:
        dim: channels ``C``.
        num_tokens: tokens ``S`` per frame.
        hidden_dim: hidden width of the MLP computing the mixing weights.
        dropout: dropout on the MLP and on the fused output.
        gelu: the MLP's GELU form, ``"exact"`` (erf) or ``"tanh"`` (the release).
        norm_eps: epsilon of the three LayerNorms (1e-6 as released).
        zero_init_mix: zero-initialise the token-mixing weight (as released); otherwise truncated
            normal (std 0.02).

    Shapes:
        tokens ``y``: ``[B, T, S, C]``; original ``x``: ``[B, T, P, C]``; output like ``x``.
    """

    def __init__(
        self,
        dim: int,
        num_tokens: int,
        hidden_dim: int = 64,
        dropout: float = 0.0,
        gelu: str = "exact",
        norm_eps: float = 1e-6,
        zero_init_mix: bool = True,
    ) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.zero_init_mix = zero_init_mix
        self.token_norm = nn.LayerNorm(dim, eps=norm_eps)
        self.token_mix = nn.Linear(num_tokens, num_tokens)
        self.mixed_norm = nn.LayerNorm(dim, eps=norm_eps)
        self.original_norm = nn.LayerNorm(dim, eps=norm_eps)
        self.weights = Mlp(dim, hidden_dim, num_tokens, dropout, gelu)
        self.drop = nn.Dropout(dropout)
        self.reset_token_mix()

    def reset_token_mix(self) -> None:
        """Initialises the token-mixing layer: weight zero (``zero_init_mix``) or truncated
        normal (std 0.02), bias zero. Models that re-initialise every linear layer call this
        afterwards."""
        if self.zero_init_mix:
            nn.init.zeros_(self.token_mix.weight)
        else:
            nn.init.trunc_normal_(self.token_mix.weight, std=0.02)
        nn.init.zeros_(self.token_mix.bias)

    def forward(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if y.shape[-2] != self.num_tokens:
            raise ValueError(f"TokenFuserV11 expects {self.num_tokens} tokens, got {y.shape[-2]}")
        y = self.token_mix(self.token_norm(y).transpose(-1, -2)).transpose(-1, -2)
        y = self.mixed_norm(y)  # [B, T, S, C]
        weights = torch.sigmoid(self.weights(self.original_norm(x)))  # [B, T, P, S]
        return x + self.drop(weights @ y)


class TokenBroadcast(nn.Module):
    """Fusion by broadcasting: the average of each frame's ``S`` tokens is added to every location
    of that frame, ``o_t = (1/S) sum_i y_{t,i}`` (the paper's Table 6 "broadcasting"). No
    parameters; unlike TokenFuser, frame ``t`` only receives its own tokens.

    Args:
        num_tokens: tokens ``S`` per frame.

    Shapes:
        tokens ``y``: ``[B, T*S, C]``; residual ``x``: ``[B, C, T, H, W]``; output like ``x``.
    """

    def __init__(self, num_tokens: int) -> None:
        super().__init__()
        self.num_tokens = num_tokens

    def forward(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        batch, channels, frames = x.shape[:3]
        if y.shape[1] != self.num_tokens * frames:
            raise ValueError(
                f"TokenBroadcast expects S={self.num_tokens} tokens for each of the input's "
                f"{frames} frames ({self.num_tokens * frames} tokens); got {y.shape[1]}"
            )
        averaged = y.reshape(batch, frames, self.num_tokens, channels).mean(dim=2)  # [B, T, C]
        return x + averaged.transpose(1, 2)[..., None, None]
