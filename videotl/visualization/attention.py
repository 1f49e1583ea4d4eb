"""TokenLearner attention maps of a whole video, aligned to its sampled frames.

``video_attention(model, path, cfg.data)`` decodes the video with ``VideoReader``, samples and
normalises clips exactly as testing does (``data.num_frames`` frames every ``data.frame_stride``
native frames or at ``data.sampling_fps``; short side resized to ``data.test_crop_size``; the
config's mean and std), runs the model on each clip with ``AttentionMapCapture`` and returns the
maps of every shown frame upsampled to that frame, with the scores of each clip.

Spatially the model sees either the whole resized frame (``crop="full"``, any aspect ratio) or
the centre ``test_crop_size`` square of one-crop testing (``crop="centre"``); the returned frames
are exactly what it saw. Temporally, a map computed for a tubelet of several frames (ViViT) is
shown on each of its frames. The grid maps are stretched bilinearly over the frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from videotl.data.sampling import ClipSampling
from videotl.data.transforms import frames_to_cthw, normalize, short_side_resize, spatial_crop
from videotl.data.video_reader import VideoReader
from videotl.visualization.capture import AttentionMapCapture, LearnerInfo
from videotl.visualization.clips import ClipPlan, plan_clips

CROPS = ("full", "centre")


@dataclass
class VideoAttention:
    """Attention maps and predictions over the shown frames of one video.

    Attributes:
        maps: ``[S, N, H, W]`` float32, map of token ``tokens[s]`` on shown frame ``n``,
            upsampled to the frame (sigmoid maps in (0, 1); softmax maps keep their grid cell's
            weight).
        grid_maps: ``[S, N, h, w]`` the maps on the TokenLearner's own grid (softmax maps sum
            to 1 over it).
        tokens: the TokenLearner's token numbers the rows of ``maps`` hold.
        frames: uint8 ``[N, H, W, 3]`` the shown frames as the model saw them (before
            normalisation).
        plan: the shown frames' native indices and the clips (``ClipPlan``).
        clip_scores: ``[K, num_classes]`` softmax (or sigmoid, multi-label) scores per clip.
        fps: native frame rate; shown frames are ``plan.step`` native frames apart.
        learner: which TokenLearner the maps come from.
        multilabel: whether scores are sigmoids (merged by maximum) instead of softmaxes (mean).
    """

    maps: torch.Tensor
    grid_maps: torch.Tensor
    tokens: list[int]
    frames: torch.Tensor
    plan: ClipPlan
    clip_scores: torch.Tensor
    fps: float
    learner: LearnerInfo
    multilabel: bool = False

    @property
    def frame_indices(self) -> list[int]:
        return self.plan.frame_indices

    @property
    def shown_fps(self) -> float:
        """Frame rate at which the shown frames play in real time."""
        return self.fps / self.plan.step

    def video_scores(self) -> torch.Tensor:
        """``[num_classes]`` scores of the whole video: mean over clips (max if multi-label)."""
        if self.multilabel:
            return self.clip_scores.max(dim=0).values
        return self.clip_scores.mean(dim=0)

    def frame_scores(self, position: int) -> torch.Tensor:
        """Scores of the clip that shown frame ``position`` belongs to."""
        return self.clip_scores[self.plan.frame_clip[position]]


@torch.no_grad()
def video_attention(
    model: nn.Module,
    video: str | Path,
    data: Any,
    layer: int = 0,
    tokens: Sequence[int] | None = None,
    crop: str = "full",
    clips: str = "all",
    start_s: float = 0.0,
    duration_s: float | None = None,
    multilabel: bool = False,
    device: torch.device | str | None = None,
) -> VideoAttention:
    """Runs ``model`` over ``video`` and returns the maps of TokenLearner number ``layer``.

    Args:
        model: a video model holding a TokenLearner; switched to eval mode.
        video: the video file.
        data: the ``data`` section of an ``ExperimentConfig`` (sampling, resizing,
            normalisation and decoding keys).
        layer: which TokenLearner (``videotl.visualization.token_learners`` lists them).
        tokens: which of its tokens to keep (default: all ``S``); the maps take
            ``4 * len(tokens) * N * H * W`` bytes.
        crop: ``"full"`` (whole frame) or ``"centre"`` (one-crop testing's square).
        clips: ``"all"`` (sliding clips over the span) or ``"centre"`` (one centred clip).
        start_s, duration_s: the span of the video to cover with ``clips="all"``.
        multilabel: sigmoid scores instead of softmax.
        device: where to run (default: the model's device).

    Raises:
        VideoDecodeError: the file cannot be read.
        ValueError: no TokenLearner number ``layer``, a token it does not have, bad
            ``crop``/``clips``/span, or maps whose frame count does not divide the clip's.
    """
    if crop not in CROPS:
        raise ValueError(f"unknown crop {crop!r}; expected one of {CROPS}")
    capture = AttentionMapCapture(model, layer)
    tokens = check_tokens(tokens, capture.module.num_tokens)
    model.eval()
    device = torch.device(device) if device is not None else _model_device(model)
    sampling = ClipSampling(data.num_frames, data.sampling_fps, data.frame_stride)
    reader = VideoReader(video, backend=data.decoder, num_threads=data.decoder_threads,
                         short_side=data.test_crop_size if data.resize_at_decode else None)
    plan = plan_clips(reader.num_frames, reader.fps, sampling, clips, start_s, duration_s)
    clip_frames, clip_maps, scores = [], [], []
    with capture:
        for indices in plan.clips:
            frames = _resized(reader.get_frames(indices), data.test_crop_size, crop)
            clip = normalize(frames, data.mean, data.std).unsqueeze(0).to(device)
            logits = model(clip).float()
            scores.append(torch.sigmoid(logits) if multilabel else logits.softmax(dim=-1))
            maps = capture.maps_for_batch(1)[0, :, tokens]  # [T', S, h, w]
            clip_maps.append(_per_frame(maps, len(indices)).cpu())
            clip_frames.append(frames.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 3, 0))
            capture.maps.clear()
    positions = list(zip(plan.frame_clip, plan.frame_offset))
    grid = torch.stack([clip_maps[k][:, t] for k, t in positions], dim=1)  # [S, N, h, w]
    shown = torch.stack([clip_frames[k][t] for k, t in positions])  # [N, H, W, 3]
    return VideoAttention(
        maps=upsample_maps(grid, tuple(shown.shape[1:3])),
        grid_maps=grid,
        tokens=tokens,
        frames=shown,
        plan=plan,
        clip_scores=torch.cat(scores).cpu(),
        fps=reader.fps,
        learner=capture.info,
        multilabel=multilabel,
    )


def check_tokens(tokens: Sequence[int] | None, num_tokens: int) -> list[int]:
    """``tokens`` checked against a TokenLearner of ``num_tokens`` tokens (None: all)."""
    if tokens is None:
        return list(range(num_tokens))
    bad = [t for t in tokens if not 0 <= t < num_tokens]
    if bad or not tokens:
        raise ValueError(f"tokens {','.join(map(str, tokens)) or '(none)'}: the TokenLearner has "
                         f"{num_tokens} tokens (0 to {num_tokens - 1})")
    return [int(t) for t in tokens]


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _resized(frames: torch.Tensor, short_side: int, crop: str) -> torch.Tensor:
    """Decoded ``[T, H, W, 3]`` uint8 -> float ``[3, T, H', W']`` as testing resizes (and crops)."""
    video = short_side_resize(frames_to_cthw(frames), short_side).float()
    if crop == "centre":
        video = spatial_crop(video, short_side, 0, 1)
    return video


def _per_frame(maps: torch.Tensor, frames: int) -> torch.Tensor:
    """``[T', S, h, w]`` maps of a clip of ``frames`` frames -> ``[S, frames, h, w]``: each map
    repeated over the ``frames / T'`` frames of its tubelet."""
    temporal = maps.shape[0]
    if frames % temporal:
        raise ValueError(f"the TokenLearner gave maps for {temporal} temporal positions, which do "
                         f"not divide the clip's {frames} frames")
    return maps.repeat_interleave(frames // temporal, dim=0).transpose(0, 1)


def upsample_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``[S, N, h, w] -> [S, N, H, W]`` bilinear (values stay within each map's range)."""
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


def mass_centre(maps: torch.Tensor) -> torch.Tensor:
    """Centre of mass of non-negative maps ``[..., H, W]`` -> ``[..., 2]`` as ``(x, y)`` in
    ``[0, 1]`` of the width and height (pixel centres at ``(i + 0.5) / size``)."""
    height, width = maps.shape[-2:]
    ys = (torch.arange(height, dtype=maps.dtype) + 0.5) / height
    xs = (torch.arange(width, dtype=maps.dtype) + 0.5) / width
    total = maps.sum(dim=(-2, -1))
    x = (maps.sum(dim=-2) * xs).sum(dim=-1) / total
    y = (maps.sum(dim=-1) * ys).sum(dim=-1) / total
    return torch.stack([x, y], dim=-1)
