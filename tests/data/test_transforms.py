import pytest
import torch

from videotl.data.transforms import (
    EvalTransform,
    TrainTransform,
    crop,
    frames_to_cthw,
    horizontal_flip,
    normalize,
    random_crop,
    random_short_side_scale,
    short_side_resize,
    spatial_crop,
    spatial_crop_offset,
)


def ramp_video(channels=3, frames=2, height=6, width=10):
    """Pixel value = 10 * row + column, so crops are identifiable."""
    rows = torch.arange(height).view(-1, 1) * 10 + torch.arange(width).view(1, -1)
    return rows.expand(channels, frames, height, width).clone()


def test_frames_to_cthw_is_a_permuted_view():
    frames = torch.randint(0, 255, (4, 6, 8, 3), dtype=torch.uint8)
    video = frames_to_cthw(frames)
    assert video.shape == (3, 4, 6, 8)
    assert torch.equal(video[1, 2], frames[2, :, :, 1])
    assert video.data_ptr() == frames.data_ptr()


@pytest.mark.parametrize("height, width, expected", [(240, 320, (256, 341)), (320, 240, (341, 256)),
                                                     (256, 400, (256, 400))])
def test_short_side_resize_keeps_aspect_ratio(height, width, expected):
    video = torch.rand(3, 2, height, width)
    assert tuple(short_side_resize(video, 256).shape[-2:]) == expected


def test_short_side_resize_of_constant_video_is_constant_and_noop_at_target():
    video = torch.full((3, 2, 48, 64), 100, dtype=torch.uint8)
    resized = short_side_resize(video, 24)
    assert resized.dtype == torch.float32 and resized.shape == (3, 2, 24, 32)
    assert torch.allclose(resized, torch.full_like(resized, 100.0))
    assert short_side_resize(video, 48) is video


def test_scale_jitter_stays_in_range_and_reaches_both_ends():
    video = torch.rand(3, 1, 20, 30)
    generator = torch.Generator().manual_seed(0)
    sizes = {min(random_short_side_scale(video, 10, 12, generator).shape[-2:])
             for _ in range(60)}
    assert sizes == {10, 11, 12}


def test_crop_and_random_crop_select_the_right_pixels():
    video = ramp_video()
    assert torch.equal(crop(video, 2, 3, 2)[0, 0], torch.tensor([[23, 24], [33, 34]]))
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        patch = random_crop(video, 4, generator)
        top, left = divmod(int(patch[0, 0, 0, 0]), 10)
        assert patch.shape[-2:] == (4, 4) and 0 <= top <= 2 and 0 <= left <= 6
        assert torch.equal(patch, crop(video, top, left, 4))
    with pytest.raises(ValueError, match="larger than the frames"):
        crop(video, 0, 0, 7)


def test_three_crops_follow_the_long_side():
    assert [spatial_crop_offset(6, 10, 6, i, 3) for i in range(3)] == [(0, 0), (0, 2), (0, 4)]
    assert [spatial_crop_offset(10, 6, 6, i, 3) for i in range(3)] == [(0, 0), (2, 0), (4, 0)]
    assert spatial_crop_offset(10, 6, 4, 0, 1) == (3, 1)
    video = ramp_video()
    assert int(spatial_crop(video, 6, 2, 3)[0, 0, 0, 0]) == 4  # right crop starts at column 4
    with pytest.raises(ValueError):
        spatial_crop_offset(6, 10, 6, 0, 2)


def test_horizontal_flip_mirrors_columns():
    video = ramp_video()
    assert torch.equal(horizontal_flip(video)[0, 0, 0], torch.arange(9, -1, -1))


def test_normalize_matches_formula():
    video = torch.tensor([0, 255, 51], dtype=torch.uint8).view(3, 1, 1, 1)
    out = normalize(video, [0.5, 0.5, 0.2], [0.25, 0.5, 0.1])
    expected = torch.tensor([(0 - 0.5) / 0.25, (1 - 0.5) / 0.5, (0.2 - 0.2) / 0.1])
    assert out.dtype == torch.float32
    assert torch.allclose(out.view(3), expected, atol=1e-6)
    with pytest.raises(ValueError, match="3 values"):
        normalize(video, [0.5], [0.5])


def test_train_transform_output_and_flip_statistics():
    transform = TrainTransform([12, 14], 10, [0.0] * 3, [1 / 255] * 3, flip=True)
    video = ramp_video(height=12, width=16).to(torch.uint8)
    generator = torch.Generator().manual_seed(0)
    flipped = 0
    for _ in range(200):
        out = transform(video, scale=12, generator=generator)  # no resize: values are exact
        assert out.shape == (3, 2, 10, 10) and out.dtype == torch.float32
        flipped += int(out[0, 0, 0, 0] > out[0, 0, 0, -1])
    assert 70 < flipped < 130  # about half


def test_train_transform_rejects_scales_below_crop():
    with pytest.raises(ValueError, match="below the crop size"):
        TrainTransform([100, 120], 112, [0.45] * 3, [0.225] * 3)


def test_test_transform_resizes_then_crops():
    transform = EvalTransform(8, 3, [0.0] * 3, [1 / 255] * 3)
    video = ramp_video(height=8, width=20).to(torch.uint8)  # already at short side 8
    views = [transform(video, i) for i in range(3)]
    assert [int(v[0, 0, 0, 0]) for v in views] == [0, 6, 12]
    assert all(v.shape == (3, 2, 8, 8) for v in views)
    assert transform(torch.zeros(3, 2, 16, 40, dtype=torch.uint8), 1).shape == (3, 2, 8, 8)
