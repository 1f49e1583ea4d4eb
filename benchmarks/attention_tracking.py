#!/usr/bin/env python
"""Do TokenLearner's attention maps follow the moving objects? Measured on the synthetic sets.

The synthetic videos (``videotl.data.synthetic``) show bright shapes (every colour channel of
an actor is at least 140) over a dark background (at most about 70), so the object in a frame is
where a pixel's brightest channel exceeds ``--threshold``; its centre is that mask's centroid.
For every video of the split, the maps come from ``video_attention`` (sliding clips, whole frame)
and each token's map is summarised per frame by its mass centre (``mass_centre``). Printed:

- per motion class with a displacement (moving up / down: the y coordinate; sliding sideways:
  x), the Pearson correlation over a video's frames between a token's mass centre and the
  object's centre: the mean over tokens and videos, the best token of each video (mean), and
  the share of (video, token) pairs above 0.7;
  and ``gain``, the mean slope of the token's coordinate regressed on the object's (1: the mass
  centre moves as far as the object; sigmoid maps, positive everywhere, move less);
- over all frames showing an object, the mean distance (fraction of the frame diagonal) from the
  object to each token's mass centre, against two baselines: the frame's centre, and the token's
  own mean mass centre over the video (a map that never moves).

The same figures for the same architecture with freshly initialised weights (seed 0) tell
what the training added.

    python benchmarks/attention_tracking.py --config configs/demo/synthetic_kinetics.yaml \\
        --checkpoint output/demo/synthetic_kinetics/checkpoints/epoch_0050.pth
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# torch and the packages using it are imported where they are used, after parsing (--help at
# once).
from videotl.config import load_config  # noqa: E402

if TYPE_CHECKING:
    import torch

MOVING = {"moving up": 1, "moving down": 1, "sliding sideways": 0}  # class -> axis (x=0, y=1)


def object_centres(frames: torch.Tensor, threshold: int, min_pixels: int):
    """``[N, H, W, 3]`` uint8 -> centroids ``[N, 2]`` (x, y fractions) and visibility ``[N]``."""
    import torch

    mask = (frames.amax(dim=-1) > threshold).float()  # [N, H, W]
    height, width = mask.shape[1:]
    area = mask.sum(dim=(1, 2))
    ys = (torch.arange(height) + 0.5) / height
    xs = (torch.arange(width) + 0.5) / width
    x = (mask.sum(dim=1) * xs).sum(dim=1) / area.clamp_min(1)
    y = (mask.sum(dim=2) * ys).sum(dim=1) / area.clamp_min(1)
    return torch.stack([x, y], dim=1), area >= min_pixels


def correlation_and_gain(token: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    """Pearson r between a token's coordinate and the object's over frames, and the slope of
    the token's coordinate regressed on the object's (1: it moves as far as the object)."""
    import torch

    if len(token) < 3 or token.std() == 0 or target.std() == 0:
        return float("nan"), float("nan")
    r = float(torch.corrcoef(torch.stack([token, target]))[0, 1])
    return r, r * float(token.std() / target.std())


def measure(model, videos, cfg, args) -> dict:
    import torch

    from videotl.visualization import mass_centre, video_attention

    per_class = defaultdict(list)  # class -> [per-token correlations of one video]
    distances = defaultdict(list)
    for path, label in videos:
        attention = video_attention(model, path, cfg.data, layer=args.layer)
        centres, visible = object_centres(attention.frames, args.threshold, args.min_pixels)
        tokens = mass_centre(attention.maps)  # [S, N, 2]
        if visible.sum() < 3:
            continue
        aspect = torch.tensor(attention.frames.shape[1:3][::-1], dtype=torch.float32)
        diagonal = float(aspect.norm())

        def distance(points: torch.Tensor) -> torch.Tensor:
            return ((points - centres[visible]) * aspect).norm(dim=-1) / diagonal

        distances["mass centre"].append(distance(tokens[:, visible]).mean())
        distances["frame centre"].append(distance(torch.full((2,), 0.5)).mean())
        still = tokens[:, visible].mean(dim=1, keepdim=True).expand(-1, int(visible.sum()), -1)
        distances["token's mean mass centre"].append(distance(still).mean())
        if label in MOVING:
            axis = MOVING[label]
            per_class[label].append([
                correlation_and_gain(tokens[s, visible, axis], centres[visible, axis])
                for s in range(tokens.shape[0])])
    return {"correlations": per_class,
            "distances": {k: float(torch.stack(v).mean()) for k, v in distances.items()}}


def report(title: str, result: dict) -> None:
    import torch

    print(f"\n{title}")
    print(f"  {'class':18s} {'videos':>6s} {'mean r':>8s} {'best r':>8s} {'r > 0.7':>8s} "
          f"{'gain':>6s}")
    for label, rows in result["correlations"].items():
        values = torch.tensor(rows)  # [videos, S, (r, gain)]
        r, gain = values[..., 0], values[..., 1]
        finite = torch.isfinite(r)
        best = torch.nan_to_num(r, nan=-1.0).amax(dim=1)
        print(f"  {label:18s} {len(rows):6d} {float(r[finite].mean()):8.2f} "
              f"{float(best.mean()):8.2f} {float((r[finite] > 0.7).float().mean()):8.0%} "
              f"{float(gain[finite].mean()):6.2f}")
    base = result["distances"]["frame centre"]
    print("  mean distance to the object (fraction of the diagonal; ratio to frame centre):")
    for name, value in result["distances"].items():
        print(f"    {name:24s} {value:.3f}  ({value / base:.2f})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True,
                        help="experiment YAML file of the trained model (its dataset: a "
                             "synthetic set)")
    parser.add_argument("--checkpoint", required=True, help="the trained model's checkpoint")
    parser.add_argument("--split", default="val", help="the videos measured (default val)")
    parser.add_argument("--layer", type=int, default=0,
                        help="index of the TokenLearner whose maps are measured (default 0)")
    parser.add_argument("--threshold", type=int, default=100,
                        help="a pixel whose brightest channel exceeds this (0-255) belongs to "
                             "the object (default 100)")
    parser.add_argument("--min-pixels", type=int, default=20,
                        help="object pixels a frame needs for the object to count as visible "
                             "(default 20)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides with dotted keys, e.g. data.root=DIR")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    import torch

    from videotl.data import build_dataset
    from videotl.models import build_model
    from videotl.visualization import load_trained_model

    torch.set_num_threads(2)
    cfg = load_config(args.config, args.overrides)
    dataset = build_dataset(cfg, args.split)
    videos = [(entry.path, dataset.class_names[entry.label]) for entry in dataset.videos]
    device = torch.device("cpu")
    print(f"{len(videos)} {args.split} videos, TokenLearner {args.layer}, input short side "
          f"{cfg.data.test_crop_size}")
    report("trained (" + args.checkpoint + ")",
           measure(load_trained_model(cfg, args.checkpoint, device), videos, cfg, args))
    torch.manual_seed(0)
    report("untrained (same architecture, seed 0)", measure(build_model(cfg), videos, cfg, args))


if __name__ == "__main__":
    main()
