"""What ``tools/predict.py`` writes for each video: a JSON Lines record, CSV rows and, on request,
an MP4 with the current segment's top labels drawn above the video and a PNG timeline of the
highest classes' scores over time."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from videotl.data.video_reader import VideoReader
from videotl.inference.predictor import Prediction, Segment
from videotl.visualization.render import BACKGROUND, MARGIN, TEXT, write_mp4

VIDEO_COLUMNS = ["path", "duration_s", "whole_video", "top1", "top1_score", "top_k", "segments",
                 "error"]
SEGMENT_COLUMNS = ["path", "start_s", "end_s", "labels", "top1", "top1_score"]
RENDER_FPS = 15.0  # the rendered MP4 shows at most this many frames per second
FONT_SIZE = 12
RENDER_CHUNK = 32  # frames decoded at a time while encoding the MP4


def _ranked(names: Sequence[str], scores: Any, k: int) -> list[dict[str, Any]]:
    values, indices = scores.topk(min(k, scores.numel()))
    return [{"class": names[int(i)], "score": round(float(v), 6)} for v, i in zip(values, indices)]


def prediction_record(prediction: Prediction) -> dict[str, Any]:
    """The JSON Lines object of a video: path, duration, whole-video top-k, segments (times,
    labels, top-k)."""
    k = len(prediction.top_k)
    return {
        "path": prediction.path,
        "duration_s": round(prediction.duration_s, 4),
        "whole_video": prediction.whole_video,
        "top_k": [{"class": name, "score": round(score, 6)} for name, score in prediction.top_k],
        "segments": [{"start_s": round(s.start_s, 4), "end_s": round(s.end_s, 4),
                      "labels": s.labels, "top_k": _ranked(prediction.class_names, s.scores, k)}
                     for s in prediction.segments],
    }


def failure_record(path: str, reason: str) -> dict[str, Any]:
    """The JSON Lines object of a video that could not be scored."""
    return {"path": path, "error": reason}


def video_row(prediction: Prediction) -> dict[str, Any]:
    """The ``predictions.csv`` row of a video (``top_k``: ``name:score`` joined by ``;``)."""
    name, score = prediction.top_k[0]
    return {"path": prediction.path, "duration_s": f"{prediction.duration_s:.4f}",
            "whole_video": prediction.whole_video, "top1": name, "top1_score": f"{score:.6f}",
            "top_k": ";".join(f"{n}:{s:.6f}" for n, s in prediction.top_k),
            "segments": len(prediction.segments), "error": ""}


def segment_rows(prediction: Prediction) -> list[dict[str, Any]]:
    """The ``segments.csv`` rows of a video (``labels`` joined by ``;``)."""
    rows = []
    for segment in prediction.segments:
        best = int(segment.scores.argmax())
        rows.append({"path": prediction.path, "start_s": f"{segment.start_s:.4f}",
                     "end_s": f"{segment.end_s:.4f}", "labels": ";".join(segment.labels),
                     "top1": prediction.class_names[best],
                     "top1_score": f"{float(segment.scores[best]):.6f}"})
    return rows


def csv_writer(path: Path, columns: list[str]) -> tuple[Any, csv.DictWriter]:
    """An open file and a ``DictWriter`` on it with the header written."""
    handle = path.open("w", newline="", encoding="utf-8")
    writer = csv.DictWriter(handle, fieldnames=columns)
    writer.writeheader()
    return handle, writer


# --- rendering --------------------------------------------------------------------------------
def segment_at(segments: Sequence[Segment], time_s: float) -> Segment:
    """The segment whose centre is nearest to ``time_s`` among those covering it (any nearest
    one when none covers it)."""
    covering = [s for s in segments if s.start_s <= time_s < s.end_s] or list(segments)
    return min(covering, key=lambda s: abs((s.start_s + s.end_s) / 2 - time_s))


class LabelledFrames(Sequence[np.ndarray]):
    """uint8 ``[H, W, 3]`` images: the video's frames at up to ``RENDER_FPS``, each under a
    header with its time and the top labels of the segment showing it. Decoded ``RENDER_CHUNK``
    frames at a time as ``write_mp4`` asks for them, so a long video never sits in memory."""

    def __init__(self, reader: VideoReader, prediction: Prediction, top_k: int) -> None:
        self.reader, self.prediction, self.top_k = reader, prediction, top_k
        rate = min(reader.fps, RENDER_FPS)
        first = reader.first_frame
        self.indices = reader.resampled_indices(rate, start=first)
        self.fps = rate
        self.font = ImageFont.load_default(FONT_SIZE)
        self.line = int(FONT_SIZE * 1.35)
        width, height = reader.size
        self.header = MARGIN + 2 * self.line
        self.size = (width + width % 2, height + self.header + (height + self.header) % 2)
        self._chunk: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> np.ndarray:  # type: ignore[override]
        if not 0 <= position < len(self):
            raise IndexError(position)
        start = position - position % RENDER_CHUNK
        if self._chunk is None or self._chunk[0] != start:
            wanted = self.indices[start:start + RENDER_CHUNK]
            self._chunk = (start, self.reader.get_frames(wanted).numpy())
        return self._draw(self.indices[position], self._chunk[1][position - start])

    def _draw(self, native: int, frame: np.ndarray) -> np.ndarray:
        time_s = native / self.reader.fps
        segment = segment_at(self.prediction.segments, time_s)
        names = self.prediction.class_names
        ranked = _ranked(names, segment.scores, self.top_k)
        canvas = Image.new("RGB", self.size, BACKGROUND)
        canvas.paste(Image.fromarray(frame), (0, self.header))
        draw = ImageDraw.Draw(canvas)
        draw.text((MARGIN, MARGIN // 2), f"{time_s:.2f} s  " + ", ".join(segment.labels),
                  fill=TEXT, font=self.font)
        draw.text((MARGIN, MARGIN // 2 + self.line),
                  "   ".join(f"{r['class']} {r['score']:.2f}" for r in ranked), fill=TEXT,
                  font=self.font)
        return np.asarray(canvas)


def render_video(reader: VideoReader, prediction: Prediction, path: Path, top_k: int = 3) -> None:
    """H.264 MP4 of the video with the top ``top_k`` labels of the current segment above it."""
    frames = LabelledFrames(reader, prediction, top_k)
    write_mp4(frames, path, frames.fps)


def render_timeline(prediction: Prediction, path: Path, classes: int = 5,
                    threshold: float | None = None) -> list[str]:
    """PNG of the segment scores over time (each segment drawn over its span, at its centre
    where segments overlap) of the ``classes`` classes highest over the whole video; draws
    ``threshold`` as a dashed line when given. Returns the plotted class names."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # heavy: only when drawing
    from matplotlib.figure import Figure

    scores = prediction.segment_scores.numpy()  # [S, K]
    best = np.argsort(-prediction.scores.numpy(), kind="stable")[:classes]
    centres = [(s.start_s + s.end_s) / 2 for s in prediction.segments]
    figure = Figure(figsize=(8, 3.2), dpi=100)
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    for k in best:
        axis.plot(centres, scores[:, k], marker="o", markersize=3,
                  label=prediction.class_names[int(k)])
    if threshold is not None:
        axis.axhline(threshold, color="grey", linestyle="--", linewidth=1, label="threshold")
    axis.set_xlim(0, max(prediction.duration_s, 1e-3))
    axis.set_ylim(0, 1)
    axis.set_xlabel("time (s), segment centres")
    axis.set_ylabel("sigmoid score" if prediction.multilabel else "softmax score")
    axis.set_title(Path(prediction.path).name)
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    return [prediction.class_names[int(k)] for k in best]
