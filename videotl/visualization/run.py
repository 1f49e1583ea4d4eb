"""``visualize(cfg, checkpoint, video, out_dir, ...)``: what ``tools/visualize_attention.py`` runs.

Writes, for ``<stem>`` the video's file name without extension:

- ``<stem>_attention.mp4``: H.264 video of the shown frames (input + one overlay per token, the
  frame's clip's top-5 predictions above), playing in real time;
- ``<stem>_attention.gif``: the same frames as a looping GIF;
- ``<stem>_attention_sheet.png``: contact sheet, tokens x a few frames;
- ``<stem>_attention.json``: what was shown (TokenLearner, tokens, native frame indices, frame
  rate, each token's map range) and the top-5 predictions per clip and for the video.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

from videotl.models import load_trained_model
from videotl.utils.distributed import select_device
from videotl.visualization.attention import VideoAttention, video_attention
from videotl.visualization.capture import select_learner
from videotl.visualization.labels import class_labels
from videotl.visualization.render import (
    RenderOptions,
    contact_sheet,
    scaled_maps,
    top_predictions,
    video_frames,
    write_gif,
    write_mp4,
    write_png,
)

logger = logging.getLogger(__name__)

DEFAULT_TOKENS = (0, 1, 2, 3)


def visualize(
    cfg: Any,
    checkpoint: str | Path,
    video: str | Path,
    out_dir: str | Path,
    layer: int = 0,
    tokens: Sequence[int] | None = None,
    class_names_file: str | Path | None = None,
    gif_scale: float = 1.0,
    **attention_options: Any,
) -> dict[str, Path]:
    """Loads the model, computes the maps of ``tokens`` (None: the first four, as in the paper's
    Figure 8, or all if the TokenLearner has fewer) for ``video`` (``video_attention`` with
    ``attention_options``: ``crop``, ``clips``, ``start_s``, ``duration_s``) and writes the
    files listed in the module docstring to ``out_dir``. Returns ``{"mp4", "gif", "png",
    "json"}`` paths."""
    device = select_device(cfg.device)
    model = load_trained_model(cfg, checkpoint, device)
    labels = class_labels(cfg, class_names_file)
    if tokens is None:
        available = select_learner(model, layer)[1].num_tokens
        tokens = [t for t in DEFAULT_TOKENS if t < available]
    attention = video_attention(model, video, cfg.data, layer=layer, tokens=tokens,
                                device=device, multilabel=labels.multilabel, **attention_options)
    options = RenderOptions(labels.names)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(video).stem
    paths = {"mp4": out / f"{stem}_attention.mp4", "gif": out / f"{stem}_attention.gif",
             "png": out / f"{stem}_attention_sheet.png", "json": out / f"{stem}_attention.json"}
    images = video_frames(attention, options)
    write_mp4(images, paths["mp4"], attention.shown_fps)
    write_gif(images, paths["gif"], attention.shown_fps, gif_scale)
    title = f"{Path(video).name}: TokenLearner {attention.learner.name} ({attention.learner.kind})"
    write_png(contact_sheet(attention, options, title), paths["png"])
    summary = summarize(attention, options, labels.source)
    paths["json"].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    for path in paths.values():
        logger.info("wrote %s", path)
    return paths


def summarize(attention: VideoAttention, options: RenderOptions, names_source: str) -> dict:
    """The JSON summary: what was shown and the predictions (see the module docstring)."""
    _, ranges = scaled_maps(attention.maps)
    names = options.class_names
    return {
        "token_learner": {"index": attention.learner.index, "name": attention.learner.name,
                          "maps": attention.learner.kind,
                          "grid": list(attention.grid_maps.shape[-2:])},
        "tokens": attention.tokens,
        "map_ranges": [list(r) for r in ranges],
        "frame_indices": attention.frame_indices,
        "native_fps": attention.fps,
        "shown_fps": attention.shown_fps,
        "frame_size": list(attention.frames.shape[1:3]),
        "clips": [{"frames": clip, "top5": top_predictions(scores, names, 5)}
                  for clip, scores in zip(attention.plan.clips, attention.clip_scores)],
        "video_top5": top_predictions(attention.video_scores(), names, 5),
        "class_names": names_source,
    }
