"""Predictor and tools/predict.py: a tiny X(2+1)D with random weights on videos made here."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from video_files import write_video
from videotl.config import load_config
from videotl.data import VideoReader
from videotl.data.lists import read_class_names
from videotl.inference import Prediction, Predictor
from videotl.models import build_model

# 4-frame clips of every 2nd frame (span 7 native frames), 32-pixel crops, 2 x 3 test views.
TINY = ["model.name=x2plus1d_tiny", "model.num_classes=10", "data.num_frames=4",
        "data.frame_stride=2", "data.test_crop_size=32", "data.train_crop_size=32",
        "data.train_jitter_scales=[32,40]", "test.num_temporal_views=2",
        "test.num_spatial_crops=3", "test.batch_size=4", "device=cpu"]
FPS = 15.0


def tiny_config(*overrides: str):
    return load_config(None, [*TINY, *overrides])


def save_random_weights(cfg, path: Path) -> Path:
    torch.save({"model": build_model(cfg).state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def material(tmp_path_factory, synthetic_kinetics):
    """A config on the synthetic Kinetics set (its classes.txt), random weights, one of its
    3-second test videos (short) and a 6-second 64x48 video (long for ``long_video_s=4``)."""
    folder = tmp_path_factory.mktemp("predict")
    cfg = tiny_config("data.dataset=kinetics", f"data.root={synthetic_kinetics}")
    checkpoint = save_random_weights(cfg, folder / "weights.pth")
    short = next(iter(sorted(synthetic_kinetics.rglob("*.mp4"))))
    long = write_video(folder / "long.mp4", num_frames=90, fps=FPS)
    return cfg, checkpoint, short, long


def view_logits(model, cfg, path: Path) -> torch.Tensor:
    """``[V, K]``: the model's logits for each test view, sampled and normalised by hand
    (views spaced uniformly from the first frame to the last start, left/centre/right crops)."""
    reader = VideoReader(path, short_side=cfg.data.test_crop_size)
    size, span, views = cfg.data.test_crop_size, 7, cfg.test.num_temporal_views
    mean = torch.tensor(cfg.data.mean).view(3, 1, 1, 1)
    std = torch.tensor(cfg.data.std).view(3, 1, 1, 1)
    logits = []
    for view in range(views):
        start = round(view * max(reader.num_frames - span, 0) / (views - 1))
        indices = [min(start + 2 * k, reader.num_frames - 1) for k in range(4)]
        clip = reader.get_frames(indices).permute(3, 0, 1, 2).float()  # [3, T, H, W]
        height, width = clip.shape[-2:]
        assert height == size <= width
        for left in (0, (width - size) // 2, width - size):
            crop = (clip[..., left:left + size] / 255 - mean) / std
            with torch.no_grad():
                logits.append(model(crop[None])[0])
    return torch.stack(logits)


def test_prediction_shapes_names_and_whole_video_scores_as_in_testing(material):
    cfg, checkpoint, short, _ = material
    predictor = Predictor(cfg, checkpoint, top_k=3)
    prediction = predictor.predict(short)
    assert isinstance(prediction, Prediction)
    names = read_class_names(Path(cfg.data.root) / "classes.txt")
    assert prediction.class_names == names and not prediction.multilabel
    assert prediction.scores.shape == (10,) and prediction.whole_video == "test_views"
    assert prediction.duration_s == pytest.approx(3.0)
    assert prediction.segment_scores.shape == (len(prediction.segments), 10)
    assert [name for name, _ in prediction.top_k] == \
        [names[int(i)] for i in prediction.scores.topk(3).indices]
    expected = view_logits(predictor.model, cfg, short).softmax(-1)
    assert expected.shape == (6, 10)
    torch.testing.assert_close(prediction.scores, expected.mean(0), rtol=0, atol=1e-5)


def test_segments_cover_a_long_video_with_the_stride(material):
    cfg, checkpoint, _, long = material
    predictor = Predictor(cfg, checkpoint, stride_s=1.0, long_video_s=4.0)
    prediction = predictor.predict(long)
    segments = prediction.segments
    # 90 frames, clips of 7 native frames starting every 15: 0, 15, ..., 75, then 83 (to the end)
    assert [s.frames[0] for s in segments] == [0, 15, 30, 45, 60, 75, 83]
    assert [s.start_s for s in segments[:-1]] == pytest.approx([0, 1, 2, 3, 4, 5])
    assert segments[-1].end_s == pytest.approx(prediction.duration_s) == pytest.approx(6.0)
    assert all(s.frames == list(range(s.frames[0], s.frames[0] + 7, 2)) for s in segments)
    assert all(s.end_s - s.start_s == pytest.approx(7 / FPS) for s in segments)
    assert prediction.whole_video == "segments"
    torch.testing.assert_close(prediction.scores, prediction.segment_scores.mean(0))
    assert all(s.labels == [prediction.class_names[int(s.scores.argmax())]] for s in segments)
    one_clip = Predictor(cfg, checkpoint).predict(long).segments  # default stride: one span
    assert [s.frames[0] for s in one_clip] == [*range(0, 84, 7), 83]


def test_multilabel_segments_list_every_class_above_the_threshold(tmp_path):
    cfg = tiny_config("data.dataset=charades", "model.num_classes=5",
                      f"data.root={tmp_path}")  # no class file: classes by index
    checkpoint = save_random_weights(cfg, tmp_path / "weights.pth")
    video = write_video(tmp_path / "clip.mp4", num_frames=30, fps=FPS)
    predictor = Predictor(cfg, checkpoint, threshold=0.5)
    assert predictor.multilabel and predictor.class_names[2] == "class 2"
    assert predictor.labels(torch.tensor([0.2, 0.9, 0.5, 0.7, 0.1])) == \
        ["class 1", "class 3", "class 2"]
    prediction = predictor.predict(video)
    for segment in prediction.segments:
        above = {f"class {k}" for k in range(5) if segment.scores[k] >= 0.5}
        assert set(segment.labels) == above
    logits = view_logits(predictor.model, cfg, video)
    torch.testing.assert_close(prediction.scores, torch.sigmoid(logits).amax(0), rtol=0,
                               atol=1e-5)


def test_tool_on_a_folder_with_short_long_and_broken_videos(material, repo, tmp_path):
    cfg, checkpoint, short, long = material
    videos = tmp_path / "videos"
    (videos / "nested").mkdir(parents=True)
    (videos / "short.mp4").write_bytes(short.read_bytes())
    (videos / "nested" / "long.mp4").write_bytes(long.read_bytes())
    (videos / "broken.mp4").write_bytes(b"not a video at all")
    out = tmp_path / "out"
    config_path = tmp_path / "config.yaml"
    config_path.write_text("seed: 0\n")
    command = [sys.executable, "tools/predict.py", "--config", str(config_path), "--checkpoint",
               str(checkpoint), str(videos), "--out", str(out), "--topk", "2", "--stride", "2",
               "--long-video", "4", "--render", *TINY, "data.dataset=kinetics",
               f"data.root={cfg.data.root}"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=repo)
    assert result.returncode == 1, result.stderr
    assert "broken.mp4" in result.stderr and "2 of 3 videos scored" in result.stdout
    lines = (out / "predictions.jsonl").read_text().splitlines()
    records = {Path(r["path"]).name: r for r in map(json.loads, lines)}
    assert set(records) == {"short.mp4", "long.mp4", "broken.mp4"}
    assert records["broken.mp4"]["error"]
    short_record, long_record = records["short.mp4"], records["long.mp4"]
    assert short_record["whole_video"] == "test_views" and long_record["whole_video"] == "segments"
    assert long_record["duration_s"] == pytest.approx(6.0)
    assert [s["start_s"] for s in long_record["segments"]] == pytest.approx([0, 2, 4, 5.5333],
                                                                            abs=1e-3)
    assert all(len(r["top_k"]) == 2 for r in (short_record, long_record))
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert {Path(r["path"]).name: bool(r["error"]) for r in rows} == \
        {"short.mp4": False, "long.mp4": False, "broken.mp4": True}
    segments = list(csv.DictReader((out / "segments.csv").open()))
    assert len(segments) == len(short_record["segments"]) + 4
    rendered = VideoReader(out / "long_predictions.mp4")
    assert rendered.duration == pytest.approx(6.0, abs=0.1)
    assert rendered.height > 48 and rendered.width % 2 == rendered.height % 2 == 0
    assert (out / "long_timeline.png").stat().st_size > 0
    assert (out / "short_predictions.mp4").is_file()
