"""Spatial transforms on video tensors, channels first: ``[C, T, H, W]``.

Functions accept uint8 or float tensors; resizing returns float32. Training:
``random_short_side_scale`` (scale jitter) -> ``random_crop`` -> ``random_horizontal_flip``
-> ``normalize``. Testing: ``short_side_resize`` -> ``spatial_crop`` (1 = centre; 3 = left,
centre, right for landscape frames or top, centre, bottom for portrait ones) -> ``normalize``.
``TrainTransform`` and ``EvalTransform`` compose them; a video already at the target short side
(resized by the decoder) is not resized again.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def frames_to_cthw(frames: torch.Tensor) -> torch.Tensor:
    """``[T, H, W, C]`` (as decoded) -> ``[C, T, H, W]`` (a view, no copy)."""
    if frames.dim() != 4:
        raise ValueError(f"expected frames [T, H, W, C], got shape {tuple(frames.shape)}")
    return frames.permute(3, 0, 1, 2)


def short_side_resize(video: torch.Tensor, size: int) -> torch.Tensor:
    """Resizes ``[C, T, H, W]`` so that ``min(H, W) == size``, keeping the aspect ratio.

    Bilinear with antialiasing; returns float32 (values keep their range). A video whose short
    side is already ``size`` is returned unchanged.
    """
    _check_video(video)
    height, width = video.shape[-2:]
    if min(height, width) == size:
        return video
    if height <= width:
        new_size = (size, max(1, int(round(width * size / height))))
    else:
        new_size = (max(1, int(round(height * size / width))), size)
    frames = video.permute(1, 0, 2, 3).float()  # [T, C, H, W]: frames as a batch of images
    resized = F.interpolate(frames, size=new_size, mode="bilinear", align_corners=False,
                            antialias=True)
    return resized.permute(1, 0, 2, 3)


def random_short_side_scale(
    video: torch.Tensor, min_size: int, max_size: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Scale jitter: ``short_side_resize`` to a size drawn uniformly in ``[min_size, max_size]``."""
    return short_side_resize(video, draw_scale(min_size, max_size, generator))


def draw_scale(min_size: int, max_size: int, generator: torch.Generator | None = None) -> int:
    """An integer uniformly in ``[min_size, max_size]``."""
    if not 0 < min_size <= max_size:
        raise ValueError(f"scale range must satisfy 0 < min <= max, got [{min_size}, {max_size}]")
    return int(torch.randint(min_size, max_size + 1, (1,), generator=generator))


def crop(video: torch.Tensor, top: int, left: int, size: int) -> torch.Tensor:
    """The ``size x size`` square at ``(top, left)`` of ``[C, T, H, W]``."""
    _check_video(video)
    height, width = video.shape[-2:]
    if size > height or size > width:
        raise ValueError(f"crop size {size} larger than the frames ({height}x{width})")
    return video[..., top:top + size, left:left + size]


def random_crop(
    video: torch.Tensor, size: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A ``size x size`` crop at a uniformly random position."""
    height, width = video.shape[-2:]
    top = int(torch.randint(max(height - size, 0) + 1, (1,), generator=generator))
    left = int(torch.randint(max(width - size, 0) + 1, (1,), generator=generator))
    return crop(video, top, left, size)


def spatial_crop(video: torch.Tensor, size: int, index: int, num_crops: int) -> torch.Tensor:
    """Crop ``index`` of ``num_crops`` (1: centre; 3: start, centre, end of the long side)."""
    height, width = video.shape[-2:]
    top, left = spatial_crop_offset(height, width, size, index, num_crops)
    return crop(video, top, left, size)


def spatial_crop_offset(
    height: int, width: int, size: int, index: int, num_crops: int
) -> tuple[int, int]:
    """``(top, left)`` of spatial crop ``index``; see ``spatial_crop``."""
    if num_crops not in (1, 3) or not 0 <= index < num_crops:
        raise ValueError(f"spatial crop {index} of {num_crops}: expected 1 or 3 crops")
    top, left = (height - size) // 2, (width - size) // 2
    if num_crops == 3 and index != 1:
        if width >= height:
            left = 0 if index == 0 else width - size
        else:
            top = 0 if index == 0 else height - size
    return top, left


def horizontal_flip(video: torch.Tensor) -> torch.Tensor:
    """Mirrors the frames left-right."""
    return video.flip(-1)


def random_horizontal_flip(
    video: torch.Tensor, probability: float = 0.5, generator: torch.Generator | None = None
) -> torch.Tensor:
    if float(torch.rand((), generator=generator)) < probability:
        return horizontal_flip(video)
    return video


def normalize(video: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(video / 255 - mean) / std`` per channel; pixel values on the 0-255 scale (uint8, or
    float after resizing), ``mean`` and ``std`` on the 0-1 scale. Returns float32."""
    _check_video(video)
    channels = video.shape[0]
    if len(mean) != channels or len(std) != channels:
        raise ValueError(f"mean and std need {channels} values, got {len(mean)} and {len(std)}")
    mean_t = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1, 1) * 255.0
    std_t = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1, 1) * 255.0
    return (video.float() - mean_t) / std_t


def _check_video(video: torch.Tensor) -> None:
    if video.dim() != 4:
        raise ValueError(f"expected a video [C, T, H, W], got shape {tuple(video.shape)}")


class TrainTransform:
    """Scale jitter, random crop, optional horizontal flip, normalisation.

    ``__call__(video, scale=None)``: ``video`` ``[C, T, H, W]`` uint8; ``scale`` is the short
    side drawn beforehand (``draw_scale``) when the decoder already resized to it.
    Returns float32 ``[C, T, crop_size, crop_size]``.
    """

    def __init__(
        self,
        jitter_scales: Sequence[int],
        crop_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        flip: bool = True,
    ) -> None:
        if len(jitter_scales) != 2:
            raise ValueError(f"jitter_scales must be [min, max], got {list(jitter_scales)}")
        if jitter_scales[0] < crop_size:
            raise ValueError(
                f"the smallest jitter scale {jitter_scales[0]} is below the crop size {crop_size}"
            )
        self.jitter_scales = (int(jitter_scales[0]), int(jitter_scales[1]))
        self.crop_size = crop_size
        self.mean, self.std, self.flip = list(mean), list(std), flip

    def draw_scale(self, generator: torch.Generator | None = None) -> int:
        return draw_scale(*self.jitter_scales, generator=generator)

    def __call__(
        self, video: torch.Tensor, scale: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        scale = self.draw_scale(generator) if scale is None else scale
        video = short_side_resize(video, scale)
        video = random_crop(video, self.crop_size, generator)
        if self.flip:
            video = random_horizontal_flip(video, 0.5, generator)
        return normalize(video, self.mean, self.std)


class EvalTransform:
    """Short-side resize to ``crop_size``, spatial crop ``index`` of ``num_crops``, normalise.

    ``__call__(video, crop_index)``: ``[C, T, H, W]`` -> float32 ``[C, T, crop, crop]``.
    """

    def __init__(
        self, crop_size: int, num_crops: int, mean: Sequence[float], std: Sequence[float]
    ) -> None:
        self.crop_size, self.num_crops = crop_size, num_crops
        self.mean, self.std = list(mean), list(std)

    def __call__(self, video: torch.Tensor, crop_index: int = 0) -> torch.Tensor:
        video = short_side_resize(video, self.crop_size)
        video = spatial_crop(video, self.crop_size, crop_index, self.num_crops)
        return normalize(video, self.mean, self.std)
