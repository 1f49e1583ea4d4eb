"""TokenLearner attention-map visualisation (the paper's Figure 8) for any video and model.

``video_attention(model, path, cfg.data)`` returns the maps ``[S, N, H, W]`` aligned to the
video's sampled frames (for notebooks); ``visualize(cfg, checkpoint, path, out_dir)`` also writes
the MP4, GIF, PNG contact sheet and JSON summary (``tools/visualize_attention.py``).
"""

from videotl.visualization.attention import (
    VideoAttention,
    mass_centre,
    upsample_maps,
    video_attention,
)
from videotl.visualization.capture import (
    AttentionMapCapture,
    LearnerInfo,
    select_learner,
    token_learners,
)
from videotl.visualization.clips import ClipPlan, plan_clips
from videotl.visualization.labels import ClassLabels, class_labels
from videotl.visualization.render import RenderOptions, contact_sheet, video_frames
from videotl.models import load_trained_model
from videotl.visualization.run import visualize

__all__ = [
    "AttentionMapCapture",
    "ClassLabels",
    "ClipPlan",
    "LearnerInfo",
    "RenderOptions",
    "VideoAttention",
    "class_labels",
    "contact_sheet",
    "load_trained_model",
    "mass_centre",
    "plan_clips",
    "select_learner",
    "token_learners",
    "upsample_maps",
    "video_attention",
    "video_frames",
    "visualize",
]
