"""In-memory datasets following videotl's dataset interface, and a tiny network for them, for
engine and checkpoint tests."""

from __future__ import annotations

import torch


class PatternClips(torch.utils.data.Dataset):
    """Clips ``[3, T, S, S]`` whose class sets which frames are bright: learnable in a few steps.

    ``views`` > 1 gives a test-style dataset (items are (video, view) pairs); ``broken`` lists
    video indices whose views come back with ``ok`` False.
    """

    def __init__(self, num_videos: int = 24, num_classes: int = 3, frames: int = 4,
                 size: int = 16, views: int = 1, multilabel: bool = False,
                 broken: tuple[int, ...] = (), seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.num_classes = num_classes
        self.multilabel = multilabel
        self.num_videos = num_videos
        self.views_per_video = views
        self.frames, self.size = frames, size
        self.video_ids = [f"video_{i:03d}.mp4" for i in range(num_videos)]
        self.class_names = [f"class_{k}" for k in range(num_classes)]
        self.labels = torch.randint(0, num_classes, (num_videos,), generator=generator)
        self.noise_seed = seed
        self.broken = set(broken)

    def __len__(self) -> int:
        return self.num_videos * self.views_per_video

    def video_target(self, index: int) -> torch.Tensor:
        label = self.labels[index]
        if self.multilabel:
            return torch.nn.functional.one_hot(label, self.num_classes).float()
        return label

    def __getitem__(self, index: int) -> dict:
        video, view = divmod(index, self.views_per_video)
        generator = torch.Generator().manual_seed(self.noise_seed * 100003 + index)
        clip = 0.3 * torch.randn(3, self.frames, self.size, self.size, generator=generator)
        clip[:, int(self.labels[video]) % self.frames] += 1.0
        ok = video not in self.broken
        return {
            "video": clip if ok else torch.zeros_like(clip),
            "target": self.video_target(video),
            "video_index": video,
            "view_index": view,
            "ok": ok,
        }


class TinyNet(torch.nn.Module):
    """Conv3d, BatchNorm and a linear head over ``PatternClips`` clips ``[B, 3, 4, S, S]``."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 4, 1)
        self.norm = torch.nn.BatchNorm3d(4)
        self.fc = torch.nn.Linear(4 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x)).mean(dim=(3, 4))  # [B, 4, T]
        return self.fc(x.flatten(1))
