"""Attention-map visualisation: clip plans, map capture, maps aligned to frames, tracking of a
moving object, rendering and the tool's files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from tool_helpers import run_script_here
from visualization_helpers import (
    BrightnessAttentionNet,
    make_vivit_attend_to_brightness,
    square_centre,
    write_square_video,
)
from videotl.config import load_config
from videotl.data import ClipSampling, VideoReader
from videotl.data.sampling import clip_indices, resample_indices
from videotl.models import build_model
from videotl.visualization import (
    AttentionMapCapture,
    RenderOptions,
    class_labels,
    contact_sheet,
    mass_centre,
    plan_clips,
    token_learners,
    video_attention,
    video_frames,
)
from videotl.visualization.render import MARGIN, scaled_maps, sheet_positions, write_mp4

TINY_X2PLUS1D = ["model.name=x2plus1d_tiny", "model.space_time_module=conv2d+tokenlearner"]
TINY_VIVIT = ["model.name=vivit_tiny_tl4at2", "data.train_crop_size=64"]
# 8-frame clips of consecutive frames, frames kept at their 64-pixel short side.
CLIPS_64 = ["model.num_classes=3", "data.num_frames=8", "data.frame_stride=1",
            "data.test_crop_size=64"]


def config(*overrides: str):
    return load_config(None, [*CLIPS_64, *overrides])


@pytest.fixture(scope="module")
def square_video(tmp_path_factory):
    """16 frames of 96x64 at 15 fps: two 8-frame clips."""
    return write_square_video(tmp_path_factory.mktemp("video") / "square.mp4")


# --- clip plans ---------------------------------------------------------------------------------
def test_sliding_clips_cover_every_sampled_frame_with_the_last_clip_ending_on_the_last():
    plan = plan_clips(45, 15.0, ClipSampling(8, frame_stride=4))
    assert plan.frame_indices == list(range(0, 45, 4))  # 0 .. 44: 12 frames
    assert plan.clip_starts == [0, 4]
    assert plan.clips == [plan.frame_indices[0:8], plan.frame_indices[4:12]]
    assert plan.frame_clip == [0] * 8 + [1] * 4
    assert plan.frame_offset == list(range(8)) + [4, 5, 6, 7]


def test_clip_plan_uses_the_data_pipelines_index_arithmetic_for_fractional_steps():
    plan = plan_clips(300, 29.97, ClipSampling(16, sampling_fps=12.0))
    assert plan.frame_indices == resample_indices(29.97, 12.0, len(plan.frame_indices))
    assert plan.frame_indices[-1] <= 299 < int(np.floor(len(plan.frame_indices) * 29.97 / 12))
    assert all(len(clip) == 16 for clip in plan.clips)
    assert [plan.clips[k][t] for k, t in zip(plan.frame_clip, plan.frame_offset)] == \
        plan.frame_indices


def test_short_video_is_one_clip_padded_as_in_testing_showing_only_real_frames():
    plan = plan_clips(10, 15.0, ClipSampling(8, frame_stride=4))
    assert plan.clips == [clip_indices(0, 8, 4.0, 10)] == [[0, 4, 8, 9, 9, 9, 9, 9]]
    assert plan.frame_indices == [0, 4, 8]


def test_span_in_seconds_and_centred_clip():
    plan = plan_clips(100, 10.0, ClipSampling(8), start_s=2.0, duration_s=3.0)
    assert plan.frame_indices == list(range(20, 50))
    assert plan.clip_starts == [0, 8, 16, 22]
    sampling = ClipSampling(8, frame_stride=2)
    centre = plan_clips(100, 10.0, sampling, plan="centre")
    assert centre.clips == [sampling.view_indices(100, 10.0, 0, 1)]
    assert centre.frame_indices == centre.clips[0]
    assert plan_clips(5, 10.0, sampling, plan="centre").frame_indices == [0, 2, 4]


def test_bad_plans_are_refused():
    with pytest.raises(ValueError, match="past the end"):
        plan_clips(30, 10.0, ClipSampling(8), start_s=3.5)
    with pytest.raises(ValueError, match="unknown clip plan"):
        plan_clips(30, 10.0, ClipSampling(8), plan="random")


# --- capturing maps -----------------------------------------------------------------------------
@pytest.mark.parametrize("overrides", [TINY_X2PLUS1D, TINY_VIVIT], ids=["x2plus1d", "vivit"])
def test_capture_leaves_the_output_unchanged(overrides):
    model = build_model(config(*overrides)).eval()
    clip = torch.randn(2, 3, 8, 64, 96)
    with torch.no_grad():
        plain = model(clip)
        with AttentionMapCapture(model) as capture:
            captured = model(clip)
    assert torch.equal(plain, captured)
    maps = capture.maps_for_batch(2)
    assert maps.shape[:3] == ((2, 8, 8) if "x2plus1d" in overrides[0] else (2, 4, 4))
    assert all(not m._forward_hooks for m in model.modules())  # removed on exit


def test_softmax_maps_sum_to_one_over_the_patch_grid_of_each_temporal_index():
    model = build_model(config(*TINY_VIVIT)).eval()
    with torch.no_grad(), AttentionMapCapture(model) as capture:
        model(torch.randn(1, 3, 8, 64, 96))
    maps = capture.maps_for_batch(1)  # [1, T' = 4, S = 4, 8, 12]
    assert maps.shape == (1, 4, 4, 8, 12)
    torch.testing.assert_close(maps.sum(dim=(-2, -1)), torch.ones(1, 4, 4))


def test_token_learners_are_listed_in_running_order_and_bad_layers_explained():
    model = build_model(config(*TINY_X2PLUS1D))
    names = [info.name for info, _ in token_learners(model)]
    assert names == ["stages.3.0.space_time.3.learner", "stages.3.1.space_time.3.learner"]
    with pytest.raises(ValueError, match=r"(?s)--layer 2 is out of range.*stages\.3\.1"):
        AttentionMapCapture(model, layer=2)
    fused = build_model(config("model.name=vivit_tiny_tl4at2_fuser", "data.train_crop_size=64"))
    assert [info.name for info, _ in token_learners(fused)] == ["encoder.reducers.0",
                                                                "encoder.reducers.1"]
    with pytest.raises(ValueError, match="has no TokenLearner"):
        AttentionMapCapture(build_model(config("model.name=x2plus1d_tiny")))


# --- maps over a video --------------------------------------------------------------------------
def test_x2plus1d_maps_are_aligned_to_the_frames_in_range_and_change_with_motion(square_video):
    model = build_model(config(*TINY_X2PLUS1D))
    attention = video_attention(model, square_video, config().data)
    assert attention.learner.kind == "sigmoid"
    assert attention.frame_indices == list(range(16)) and attention.plan.clip_starts == [0, 8]
    assert attention.frames.shape == (16, 64, 96, 3) and attention.frames.dtype == torch.uint8
    assert attention.maps.shape == (8, 16, 64, 96)  # S = 8 tokens, every frame, full size
    assert attention.grid_maps.shape == (8, 16, 2, 3)  # the res5 grid (stride 32)
    assert 0 < attention.maps.min() and attention.maps.max() < 1
    assert (attention.maps[:, 0] - attention.maps[:, -1]).abs().max() > 1e-3
    assert attention.clip_scores.shape == (2, 3)
    torch.testing.assert_close(attention.clip_scores.sum(dim=1), torch.ones(2))
    reader = VideoReader(square_video)
    assert torch.equal(attention.frames[5], reader.get_frames([5])[0])  # 64 px: not resized


def test_vivit_tubelet_maps_are_shown_on_both_of_their_frames(square_video):
    model = build_model(config(*TINY_VIVIT))
    attention = video_attention(model, square_video, config().data, crop="centre")
    assert attention.learner.kind == "softmax"
    assert attention.frames.shape == (16, 64, 64, 3)  # the centre square
    assert attention.grid_maps.shape == (4, 16, 8, 8)
    torch.testing.assert_close(attention.grid_maps.sum(dim=(-2, -1)), torch.ones(4, 16))
    assert torch.equal(attention.maps[:, 0::2], attention.maps[:, 1::2])
    assert not torch.equal(attention.maps[:, 0], attention.maps[:, 2])
    assert 0 <= attention.maps.min() and attention.maps.max() <= 1


def test_selected_tokens_keep_their_maps(square_video):
    model = build_model(config(*TINY_X2PLUS1D))
    every = video_attention(model, square_video, config().data, clips="centre")
    some = video_attention(model, square_video, config().data, clips="centre", tokens=[5, 2])
    assert some.tokens == [5, 2] and every.tokens == list(range(8))
    assert torch.equal(some.maps, every.maps[[5, 2]])
    with pytest.raises(ValueError, match=r"tokens 8: the TokenLearner has 8 tokens \(0 to 7\)"):
        video_attention(model, square_video, config().data, tokens=[8])


def test_factorised_vivit_maps_are_folded_back_per_temporal_index(square_video):
    model = build_model(config("model.name=vivit_tiny_fe_tl4at2", "data.train_crop_size=64"))
    attention = video_attention(model, square_video, config().data)
    assert attention.grid_maps.shape == (4, 16, 8, 12)
    torch.testing.assert_close(attention.grid_maps.sum(dim=(-2, -1)), torch.ones(4, 16))
    assert torch.equal(attention.maps[:, 0::2], attention.maps[:, 1::2])


@pytest.mark.parametrize("kind", ["sigmoid", "softmax"])
def test_mass_centre_follows_the_moving_square(square_video, kind):
    if kind == "sigmoid":
        model = BrightnessAttentionNet()
        maps_of_square = 0  # token 0 attends to bright places
    else:
        model = make_vivit_attend_to_brightness(build_model(config(*TINY_VIVIT)))
        maps_of_square = slice(None)  # all four tokens do
    attention = video_attention(model, square_video, config().data)
    centres = mass_centre(attention.maps[maps_of_square])  # [(S,) N, 2]
    centres = centres if centres.dim() == 2 else centres.mean(dim=0)
    truth = torch.tensor([square_centre(n, 96, 64) for n in attention.frame_indices])
    assert (centres - truth).abs().max() < 0.06
    for axis in (0, 1):  # it moves with the square, not just near it
        correlation = torch.corrcoef(torch.stack([centres[:, axis], truth[:, axis]]))[0, 1]
        assert correlation > 0.98


def test_mass_centre_of_a_single_bright_pixel_is_that_pixels_centre():
    maps = torch.zeros(2, 4, 10)
    maps[0, 1, 7] = 3.0
    maps[1] = 1.0
    torch.testing.assert_close(mass_centre(maps), torch.tensor([[0.75, 0.375], [0.5, 0.5]]))


# --- rendering and files ------------------------------------------------------------------------
def test_scaled_maps_and_sheet_positions():
    maps = torch.stack([torch.linspace(0.2, 0.6, 8).view(2, 2, 2), torch.full((2, 2, 2), 0.3)])
    scaled, ranges = scaled_maps(maps)
    assert ranges[0] == pytest.approx((0.2, 0.6)) and ranges[1] == pytest.approx((0.3, 0.3))
    assert scaled[0].min() == 0 and scaled[0].max() == 1 and scaled[1].abs().max() == 0
    assert sheet_positions(12, 6) == [0, 2, 4, 7, 9, 11]
    assert sheet_positions(3, 6) == [0, 1, 2]


def test_rendered_frames_have_one_panel_per_token_and_even_size(square_video):
    attention = video_attention(BrightnessAttentionNet(), square_video, config().data)
    images = video_frames(attention, RenderOptions(["a", "b", "c"], columns=5))
    assert len(images) == 16
    height, width, _ = images[0].shape
    assert width == 3 * 96 + 4 * MARGIN and height % 2 == 0
    two_rows = video_frames(attention, RenderOptions(["a", "b", "c"], columns=2))[0]
    assert two_rows.shape[1] == 2 * 96 + 3 * MARGIN and two_rows.shape[0] > height
    sheet = contact_sheet(attention, RenderOptions(["a", "b", "c"], sheet_frames=4), "t")
    assert sheet.shape[0] > 3 * 64 and sheet.shape[1] > 4 * 96
    with pytest.raises(ValueError, match="even width and height"):
        write_mp4([np.zeros((63, 96, 3), np.uint8)], "unused.mp4", 15.0)


def test_class_labels_from_the_dataset_class_file_or_by_index(tmp_path):
    (tmp_path / "classes.txt").write_text("left\nright\nup\n")
    found = class_labels(config(f"data.root={tmp_path}"))
    assert found.names == ["left", "right", "up"] and not found.multilabel
    missing = class_labels(config(f"data.root={tmp_path / 'absent'}"))
    assert missing.names == ["class 0", "class 1", "class 2"] and "no class file" in missing.source
    (tmp_path / "Charades_v1_classes.txt").write_text("c000 Opening a door\nc001 Sitting\n")
    charades = class_labels(config(f"data.root={tmp_path}", "data.dataset=charades",
                                   "model.num_classes=2"))
    assert charades.names == ["Opening a door", "Sitting"] and charades.multilabel
    with pytest.raises(ValueError, match="names 3 classes but the model has"):
        class_labels(config(f"data.root={tmp_path}", "model.num_classes=4"))


def _tool_inputs(tmp_path, model_overrides):
    """A config file, a checkpoint of the model it describes, a class file and a video."""
    root = tmp_path / "data"
    root.mkdir()
    (root / "classes.txt").write_text("right\ndown\nstill\n")
    overrides = [*CLIPS_64, *model_overrides, f"data.root={root}", "data.frame_stride=2"]
    values = dict(item.split("=", 1) for item in overrides)  # a later override wins
    lines = [f"{key}: {value}" for key, value in values.items()]
    nested: dict[str, list[str]] = {}
    for line in lines:
        section, rest = line.split(".", 1)
        nested.setdefault(section, []).append(f"  {rest}")
    config_path = tmp_path / "config.yaml"
    config_path.write_text("".join(f"{s}:\n" + "\n".join(v) + "\n" for s, v in nested.items()))
    checkpoint = tmp_path / "weights.pth"
    torch.save({"model": build_model(load_config(config_path)).state_dict()}, checkpoint)
    video = write_square_video(tmp_path / "square.mp4", num_frames=20)
    return config_path, checkpoint, video


def test_tool_writes_mp4_gif_png_and_json_that_decode_as_expected(repo, tmp_path):
    config_path, checkpoint, video = _tool_inputs(tmp_path, TINY_X2PLUS1D)
    out = tmp_path / "out"
    command = [sys.executable, "tools/visualize_attention.py", "--config", str(config_path),
               "--checkpoint", str(checkpoint), "--video", str(video), "--out", str(out),
               "--tokens", "0,2,5"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=repo)
    assert result.returncode == 0, result.stderr
    shown = 10  # 20 frames every 2nd: clips at shown frames 0 and 2
    reader = VideoReader(out / "square_attention.mp4")
    assert reader.num_frames == shown and reader.fps == pytest.approx(7.5)
    width, height = reader.size
    assert width == 4 * 96 + 5 * MARGIN and width % 2 == 0 and height % 2 == 0
    assert reader.get_frames(list(range(shown))).shape == (shown, height, width, 3)
    gif = Image.open(out / "square_attention.gif")
    assert gif.n_frames == shown and gif.size == (width, height)
    sheet = Image.open(out / "square_attention_sheet.png")
    assert sheet.size[1] > 4 * 64  # input row + three token rows
    summary = json.loads((out / "square_attention.json").read_text())
    assert summary["tokens"] == [0, 2, 5] and summary["frame_indices"] == list(range(0, 20, 2))
    assert summary["token_learner"]["name"] == "stages.3.0.space_time.3.learner"
    assert len(summary["clips"]) == 2 and summary["video_top5"][0].split()[1] in (
        "right", "down", "still")
    assert all(0 < low <= high < 1 for low, high in summary["map_ranges"])


def _run_tool(repo, monkeypatch, capsys, *arguments):
    status = run_script_here(repo / "tools" / "visualize_attention.py", list(arguments),
                             monkeypatch)
    return status, capsys.readouterr().err


def test_tool_explains_bad_layer_tokens_and_video(repo, tmp_path, monkeypatch, capsys):
    config_path, checkpoint, video = _tool_inputs(tmp_path, TINY_VIVIT)
    common = ["--config", str(config_path), "--checkpoint", str(checkpoint), "--out",
              str(tmp_path / "out")]
    code, error = _run_tool(repo, monkeypatch, capsys, *common, "--video", str(video),
                            "--layer", "1")
    assert code == 2 and "--layer 1 is out of range" in error and "encoder.reducers.0" in error
    code, error = _run_tool(repo, monkeypatch, capsys, *common, "--video", str(video),
                            "--tokens", "1,4")
    assert code == 2 and "tokens 1,4: the TokenLearner has 4 tokens (0 to 3)" in error
    code, error = _run_tool(repo, monkeypatch, capsys, *common, "--video",
                            str(tmp_path / "missing.mp4"))
    assert code == 2 and "missing.mp4" in error
    assert not (tmp_path / "out").exists()
