"""Drawing attention maps: heat-map overlays, frames with predictions, contact sheet, and the MP4
(H.264 through PyAV), GIF and PNG files.

Colours: each token's maps are scaled to [0, 1] by their minimum and maximum over the whole video
(so changes over time stay comparable), then coloured with matplotlib's ``jet`` and blended over
the frame; every panel's caption gives the token's raw range.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from videotl.visualization.attention import VideoAttention

COLOURMAP = "jet"
BACKGROUND = (24, 24, 24)
TEXT = (235, 235, 235)
MARGIN = 6


@dataclass(frozen=True)
class RenderOptions:
    """What to draw.

    Attributes:
        class_names: one name per class, for the top-``top_k`` predictions.
        top_k: predictions listed on each frame.
        alpha: opacity of the heat map over the frame.
        columns: panels (input + tokens) per row of a video frame.
        sheet_frames: frames (columns) of the contact sheet, evenly spaced.
        font_size: text size in pixels.
    """

    class_names: Sequence[str]
    top_k: int = 5
    alpha: float = 0.5
    columns: int = 5
    sheet_frames: int = 6
    font_size: int = 12


def scaled_maps(maps: torch.Tensor) -> tuple[torch.Tensor, list[tuple[float, float]]]:
    """``[S, N, H, W]`` -> each token's maps scaled to [0, 1] by its range over all frames
    (a constant map becomes 0), and those ranges."""
    low = maps.amin(dim=(1, 2, 3), keepdim=True)
    high = maps.amax(dim=(1, 2, 3), keepdim=True)
    span = high - low
    scaled = torch.where(span > 0, (maps - low) / span.clamp_min(1e-12), torch.zeros_like(maps))
    return scaled, [(float(a), float(b)) for a, b in zip(low.flatten(), high.flatten())]


@lru_cache(maxsize=1)
def _colour_table() -> np.ndarray:
    import matplotlib

    return (matplotlib.colormaps[COLOURMAP](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)


def heat_overlay(frame: np.ndarray, heat: np.ndarray, alpha: float) -> np.ndarray:
    """uint8 ``[H, W, 3]`` frame blended with the colours of ``heat`` ``[H, W]`` in [0, 1]."""
    colours = _colour_table()[np.clip(np.rint(heat * 255), 0, 255).astype(np.intp)]
    blended = (1 - alpha) * frame.astype(np.float32) + alpha * colours.astype(np.float32)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    from matplotlib import font_manager

    return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)


def _text_width(text: str, size: int) -> int:
    left, _, right, _ = _font(size).getbbox(text)
    return int(right - left)


def _wrap(entries: Sequence[str], width: int, size: int) -> list[str]:
    """Greedy wrap of ``entries`` (kept whole) into lines of at most ``width`` pixels."""
    lines: list[str] = []
    for entry in entries:
        joined = f"{lines[-1]}   {entry}" if lines else entry
        if lines and _text_width(joined, size) <= width:
            lines[-1] = joined
        else:
            lines.append(entry)
    return lines


def top_predictions(scores: torch.Tensor, names: Sequence[str], k: int) -> list[str]:
    """``["1. name 0.93", ...]`` for the ``k`` highest of ``scores`` ``[num_classes]``."""
    values, indices = scores.topk(min(k, scores.numel()))
    return [f"{rank}. {names[int(i)]} {float(v):.2f}"
            for rank, (v, i) in enumerate(zip(values, indices), start=1)]


class FrameLayout:
    """Positions on a video frame: header text, then rows of ``columns`` captioned panels."""

    def __init__(self, attention: VideoAttention, options: RenderOptions) -> None:
        _, height, width, _ = attention.frames.shape
        self.panel = (width, height)
        self.count = 1 + len(attention.tokens)
        self.columns = max(1, min(options.columns, self.count))
        self.rows = -(-self.count // self.columns)
        self.line = int(options.font_size * 1.35)
        inner = self.columns * width + (self.columns - 1) * MARGIN
        self.width = inner + 2 * MARGIN
        clips = range(len(attention.plan.clips))
        self.header_lines = 1 + max(len(_wrap(
            top_predictions(attention.clip_scores[k], options.class_names, options.top_k),
            inner, options.font_size)) for k in clips)
        self.cell_height = height + 2 * self.line
        self.top = MARGIN + self.header_lines * self.line + MARGIN
        self.height = self.top + self.rows * (self.cell_height + MARGIN)
        self.width += self.width % 2  # H.264 in yuv420p needs even sizes
        self.height += self.height % 2

    def panel_origin(self, index: int) -> tuple[int, int]:
        row, column = divmod(index, self.columns)
        return (MARGIN + column * (self.panel[0] + MARGIN),
                self.top + row * (self.cell_height + MARGIN))


def video_frames(attention: VideoAttention, options: RenderOptions) -> list[np.ndarray]:
    """One uint8 ``[H, W, 3]`` image per shown frame: the frame and one overlay per token of
    ``attention``, with the frame's time and its clip's top predictions above."""
    layout = FrameLayout(attention, options)
    scaled, ranges = scaled_maps(attention.maps)
    size = options.font_size
    inner = layout.width - 2 * MARGIN
    images = []
    for n, native in enumerate(attention.frame_indices):
        canvas = Image.new("RGB", (layout.width, layout.height), BACKGROUND)
        draw = ImageDraw.Draw(canvas)
        clip = attention.plan.frame_clip[n]
        header = [f"frame {native} ({native / attention.fps:.2f} s), clip {clip + 1}/"
                  f"{len(attention.plan.clips)}, TokenLearner {attention.learner.name}"]
        header += _wrap(top_predictions(attention.frame_scores(n), options.class_names,
                                        options.top_k), inner, size)
        for row, text in enumerate(header):
            draw.text((MARGIN, MARGIN + row * layout.line), text, fill=TEXT, font=_font(size))
        frame = attention.frames[n].numpy()
        panels = [(frame, "input", "")]
        for j, token in enumerate(attention.tokens):
            overlay = heat_overlay(frame, scaled[j, n].numpy(), options.alpha)
            low, high = ranges[j]
            panels.append((overlay, f"token {token}", f"{low:.3g} to {high:.3g}"))
        for index, (image, caption, detail) in enumerate(panels):
            x, y = layout.panel_origin(index)
            canvas.paste(Image.fromarray(image), (x, y))
            draw.text((x, y + layout.panel[1] + 1), caption, fill=TEXT, font=_font(size))
            draw.text((x, y + layout.panel[1] + 1 + layout.line), detail, fill=TEXT,
                      font=_font(size - 2))
        images.append(np.asarray(canvas))
    return images


def sheet_positions(count: int, wanted: int) -> list[int]:
    """``wanted`` shown-frame positions evenly spread over ``count`` (all when fewer)."""
    return sorted({int(round(p)) for p in np.linspace(0, count - 1, min(wanted, count))})


def contact_sheet(attention: VideoAttention, options: RenderOptions, title: str) -> np.ndarray:
    """uint8 ``[H, W, 3]``: a row of frames, then one row of overlays per token of
    ``attention``, for ``options.sheet_frames`` frames spread over the video, under a title and
    the video's top predictions."""
    scaled, ranges = scaled_maps(attention.maps)
    positions = sheet_positions(len(attention.frame_indices), options.sheet_frames)
    _, height, width, _ = attention.frames.shape
    size, line = options.font_size, int(options.font_size * 1.35)
    labels = ["input"] + [f"token {t}" for t in attention.tokens]
    label_width = max(_text_width(text, size) for text in labels) + 2 * MARGIN
    grid_width = len(positions) * (width + MARGIN)
    top_k = top_predictions(attention.video_scores(), options.class_names, options.top_k)
    header = [title] + _wrap(top_k, label_width + grid_width - MARGIN, size)
    top = MARGIN + (len(header) + 1) * line
    canvas = Image.new("RGB", (label_width + grid_width + MARGIN,
                               top + len(labels) * (height + MARGIN)), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for row, text in enumerate(header):
        draw.text((MARGIN, MARGIN + row * line), text, fill=TEXT, font=_font(size))
    for column, n in enumerate(positions):
        x = label_width + column * (width + MARGIN)
        native = attention.frame_indices[n]
        draw.text((x, top - line), f"{native / attention.fps:.2f} s", fill=TEXT, font=_font(size))
        frame = attention.frames[n].numpy()
        canvas.paste(Image.fromarray(frame), (x, top))
        for j in range(len(attention.tokens)):
            overlay = heat_overlay(frame, scaled[j, n].numpy(), options.alpha)
            canvas.paste(Image.fromarray(overlay), (x, top + (j + 1) * (height + MARGIN)))
    for row, text in enumerate(labels):
        y = top + row * (height + MARGIN) + height // 2 - line
        draw.text((MARGIN, y), text, fill=TEXT, font=_font(size))
        if row:
            low, high = ranges[row - 1]
            draw.text((MARGIN, y + line), f"{low:.3g} to", fill=TEXT, font=_font(size - 2))
            draw.text((MARGIN, y + 2 * line - 2), f"{high:.3g}", fill=TEXT, font=_font(size - 2))
    return np.asarray(canvas)


def write_mp4(images: Sequence[np.ndarray], path: str | Path, fps: float) -> None:
    """H.264 MP4 (yuv420p, CRF 18) of uint8 ``[H, W, 3]`` images of even size at ``fps``."""
    import av

    height, width = images[0].shape[:2]
    if height % 2 or width % 2:
        raise ValueError(f"H.264 in yuv420p needs an even width and height, got {width}x{height}")
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate, options={"crf": "18"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for image in images:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_gif(images: Sequence[np.ndarray], path: str | Path, fps: float,
              scale: float = 1.0) -> None:
    """Looping GIF of the images (optionally scaled), each shown ``1 / fps`` seconds."""
    frames = []
    for image in images:
        picture = Image.fromarray(image)
        if scale != 1.0:
            size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
            picture = picture.resize(size, Image.Resampling.LANCZOS)
        frames.append(picture.quantize(colors=256, method=Image.Quantize.FASTOCTREE,
                                       dither=Image.Dither.NONE))
    duration = max(20, int(round(1000 / fps)))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=duration, loop=0,
                   optimize=True)


def write_png(image: np.ndarray, path: str | Path) -> None:
    Image.fromarray(image).save(path, optimize=True)
