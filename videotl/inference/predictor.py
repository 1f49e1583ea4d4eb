"""``Predictor(cfg, checkpoint).predict(path)``: a trained model's scores for any video file.

Clips are decoded, sampled and normalised exactly as in testing (``VideoReader`` with the
config's decoder and decode-time resize, ``ClipSampling`` with ``data.num_frames`` frames every
``data.frame_stride`` native frames or at ``data.sampling_fps``, ``EvalTransform``'s short-side
resize, ``test.num_spatial_crops`` crops and the config's mean and std). Scores are the softmax
of the logits, or their sigmoid for a multi-label dataset (Charades), and views are merged as in
testing: ``test.aggregation``, by default the mean (single-label) or the maximum (multi-label).

Two passes over a video:

- **segments**: sliding clips that start every ``stride_s`` seconds (default: one clip's span,
  so clips touch without overlapping) from the first decodable frame; when the last one does not
  reach the end of the video, one more clip ends on the last frame (it may overlap the one
  before). A video shorter than one clip is one clip padded as in testing (its last frame
  repeated). Each segment's scores merge its spatial crops.
- **whole video**: a video of at most ``long_video_s`` seconds (short) is scored by the config's
  test-time views (``test.num_temporal_views`` x ``test.num_spatial_crops``), as ``test_net.py``
  scores it; a longer one by merging its segments (the test views would sample it too sparsely).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from videotl.data.sampling import ClipSampling, clip_indices, clip_seconds, clip_span
from videotl.data.transforms import EvalTransform, frames_to_cthw
from videotl.data.video_reader import VideoReader
from videotl.evaluation.evaluator import default_aggregation
from videotl.utils.distributed import select_device
from videotl.visualization.labels import class_labels
from videotl.models import load_trained_model

logger = logging.getLogger(__name__)

DEFAULT_LONG_VIDEO_S = 20.0
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class Segment:
    """One sliding clip: ``[start_s, end_s)`` seconds (first frame's start to last frame's end),
    its native frame indices, ``scores`` ``[K]`` and ``labels``: the top class (single-label)
    or every class scoring at least the threshold (multi-label), highest first."""

    start_s: float
    end_s: float
    frames: list[int]
    scores: torch.Tensor
    labels: list[str]


@dataclass(frozen=True)
class Prediction:
    """A video's predictions.

    Attributes:
        path: the video file.
        duration_s: decodable length in seconds (frames / native fps).
        fps: native frame rate.
        scores: ``[K]`` whole-video scores (softmax, or sigmoid when ``multilabel``).
        top_k: ``(class name, score)`` of the ``k`` highest of ``scores``, highest first.
        segments: the sliding clips, in time order.
        whole_video: how ``scores`` were obtained: ``"test_views"`` (short video) or
            ``"segments"`` (long video).
        class_names: the ``K`` class names (``class <k>`` when the config names none).
        multilabel: sigmoid scores (labels above a threshold) instead of a softmax.
    """

    path: str
    duration_s: float
    fps: float
    scores: torch.Tensor
    top_k: list[tuple[str, float]]
    segments: list[Segment]
    whole_video: str
    class_names: list[str]
    multilabel: bool

    @property
    def segment_scores(self) -> torch.Tensor:
        """``[S, K]``: the scores of every segment."""
        return torch.stack([segment.scores for segment in self.segments])


class Predictor:
    """A trained model ready to score videos.

    >>> predictor = Predictor(load_config("cfg.yaml"), "checkpoint.pth")
    >>> prediction = predictor.predict("video.mp4")
    >>> prediction.top_k                     # [("juggling balls", 0.91), ...]

    Args:
        cfg: an ``ExperimentConfig`` (model, ``data`` sampling/normalisation keys, ``test``).
        checkpoint: trained weights; every tensor of the model must be there with its shape.
        device: where to run (default: ``cfg.device``, i.e. a GPU when there is one).
        top_k: classes listed in ``Prediction.top_k``.
        stride_s: seconds between segment starts (None: one clip's span).
        threshold: multi-label segments list the classes scoring at least this.
        long_video_s: videos longer than this are scored from their segments.
        class_names_file: class names replacing the dataset's file (one per line, or JSON).

    Raises:
        CheckpointError: unreadable checkpoint or weights that do not fit the model.
        ValueError: a non-positive ``top_k``, ``stride_s`` or ``long_video_s``, or a class file
            naming another number of classes than ``model.num_classes``.
    """

    def __init__(
        self,
        cfg: Any,
        checkpoint: str | Path,
        device: str | torch.device | None = None,
        top_k: int = 5,
        stride_s: float | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        long_video_s: float = DEFAULT_LONG_VIDEO_S,
        class_names_file: str | Path | None = None,
    ) -> None:
        if top_k < 1 or (stride_s is not None and stride_s <= 0) or long_video_s <= 0:
            raise ValueError(f"top_k must be >= 1 and stride and long-video length > 0 s, got "
                             f"{top_k}, {stride_s} and {long_video_s}")
        self.cfg = cfg
        self.device = select_device(cfg.device) if device is None else torch.device(device)
        self.model: nn.Module = load_trained_model(cfg, checkpoint, self.device)
        labels = class_labels(cfg, class_names_file)
        self.class_names, self.multilabel = labels.names, labels.multilabel
        self.aggregation = cfg.test.aggregation or default_aggregation(self.multilabel)
        data = cfg.data
        self.sampling = ClipSampling(data.num_frames, data.sampling_fps, data.frame_stride)
        self.transform = EvalTransform(data.test_crop_size, cfg.test.num_spatial_crops,
                                       data.mean, data.std)
        self.top_k, self.stride_s, self.threshold = top_k, stride_s, threshold
        self.long_video_s = long_video_s

    def predict(self, path: str | Path) -> Prediction:
        """Scores the video at ``path`` (see the module docstring).

        Raises:
            VideoDecodeError: the file is missing, not a video, or its frames do not decode.
        """
        reader = self.open(path)
        segment_clips = self.segment_clips(reader)
        segment_scores = self.clip_scores(reader, segment_clips)
        segments = [self._segment(clip, scores, reader.fps)
                    for clip, scores in zip(segment_clips, segment_scores)]
        source = "test_views" if reader.duration <= self.long_video_s else "segments"
        views = (self.clip_scores(reader, self.view_clips(reader)) if source == "test_views"
                 else segment_scores)
        scores = self.merge(views)
        return Prediction(str(path), reader.duration, reader.fps, scores, self.ranked(scores),
                          segments, source, self.class_names, self.multilabel)

    def open(self, path: str | Path) -> VideoReader:
        """The reader testing would open for ``path``."""
        data = self.cfg.data
        return VideoReader(path, backend=data.decoder, num_threads=data.decoder_threads,
                           short_side=data.test_crop_size if data.resize_at_decode else None)

    def view_clips(self, reader: VideoReader) -> list[list[int]]:
        """Native frame indices of the ``test.num_temporal_views`` test clips."""
        views = self.cfg.test.num_temporal_views
        return [self.sampling.view_indices(reader.num_frames, reader.fps, view, views,
                                           first_frame=reader.first_frame)
                for view in range(views)]

    def segment_clips(self, reader: VideoReader) -> list[list[int]]:
        """Native frame indices of the sliding clips (see the module docstring)."""
        step = self.sampling.step(reader.fps)
        length = self.sampling.num_frames
        first, frames = reader.first_frame, reader.num_frames - reader.first_frame
        span = clip_span(length, step)
        stride = span if self.stride_s is None else max(1, round(self.stride_s * reader.fps))
        starts = list(range(0, max(frames - span, 0) + 1, stride))
        if starts[-1] + span < frames:
            starts.append(frames - span)
        return [[first + i for i in clip_indices(start, length, step, frames)] for start in starts]

    @torch.no_grad()
    def clip_scores(self, reader: VideoReader, clips: Sequence[list[int]]) -> torch.Tensor:
        """``[len(clips), K]``: each clip's scores merged over its spatial crops."""
        crops = self.transform.num_crops
        views = torch.cat([self._scores(batch) for batch in self._batches(reader, clips)])
        return self.merge_views(views.view(len(clips), crops, -1))

    def merge(self, scores: torch.Tensor) -> torch.Tensor:
        """``[N, K]`` -> ``[K]``: the mean or maximum over ``N`` clips (``self.aggregation``)."""
        return self.merge_views(scores.unsqueeze(0))[0]

    def merge_views(self, scores: torch.Tensor) -> torch.Tensor:
        """``[N, V, K]`` -> ``[N, K]``: merges dimension 1 as testing merges views."""
        return scores.amax(dim=1) if self.aggregation == "max" else scores.mean(dim=1)

    def ranked(self, scores: torch.Tensor) -> list[tuple[str, float]]:
        """``(name, score)`` of the ``top_k`` highest of ``scores`` ``[K]``."""
        values, indices = scores.topk(min(self.top_k, scores.numel()))
        return [(self.class_names[int(i)], float(v)) for v, i in zip(values, indices)]

    def labels(self, scores: torch.Tensor) -> list[str]:
        """The top class, or (multi-label) every class scoring at least the threshold."""
        if not self.multilabel:
            return [self.class_names[int(scores.argmax())]]
        order = scores.argsort(descending=True)
        return [self.class_names[int(i)] for i in order if float(scores[i]) >= self.threshold]

    def _segment(self, clip: list[int], scores: torch.Tensor, fps: float) -> Segment:
        start_s, end_s = clip_seconds(clip, fps)
        return Segment(start_s, end_s, clip, scores, self.labels(scores))

    def _batches(self, reader: VideoReader, clips: Sequence[list[int]]) -> Iterator[torch.Tensor]:
        """Batches ``[B, 3, T, S, S]`` of every clip's crops, in order, about
        ``test.batch_size`` views each (the crops of one clip stay together)."""
        batch: list[torch.Tensor] = []
        for indices in clips:
            video = frames_to_cthw(reader.get_frames(indices))
            batch += [self.transform(video, crop) for crop in range(self.transform.num_crops)]
            if len(batch) >= self.cfg.test.batch_size:
                yield torch.stack(batch)
                batch = []
        if batch:
            yield torch.stack(batch)

    def _scores(self, batch: torch.Tensor) -> torch.Tensor:
        """``[B, K]`` softmax (sigmoid when multi-label) of the model's logits, on the CPU."""
        logits = self.model(batch.to(self.device)).float()
        scores = torch.sigmoid(logits) if self.multilabel else logits.softmax(dim=-1)
        return scores.cpu()
