import math

import pytest
import torch

from videotl.data.sampling import (
    ClipSampling,
    clip_indices,
    clip_seconds,
    clip_span,
    clip_step,
    random_clip_start,
    resample_indices,
    split_view,
    uniform_clip_starts,
)


def reference_resample(native_fps, target_fps, num_frames, start=0):
    """The frame on screen at time start/native_fps + k/target_fps, with exact rationals."""
    from fractions import Fraction

    native, target = Fraction(native_fps).limit_denominator(100000), Fraction(target_fps)
    return [int(math.floor(start + k * native / target)) for k in range(num_frames)]


def test_resample_29_97_to_12_fps_matches_exact_rational_reference():
    indices = resample_indices(29.97, 12, 64)
    assert indices == reference_resample(29.97, 12, 64)
    assert indices[:10] == [0, 2, 4, 7, 9, 12, 14, 17, 19, 22]
    assert indices[-1] == math.floor(63 * 29.97 / 12)  # 157: about 5.3 s of video


@pytest.mark.parametrize("native, target", [(30, 12), (30, 6), (25, 12), (24, 30), (15, 12),
                                            (59.94, 29.97), (12, 12)])
def test_resample_matches_reference_for_common_rates(native, target):
    assert resample_indices(native, target, 100, start=7) == reference_resample(
        native, target, 100, start=7)


def test_upsampling_repeats_frames_and_same_rate_is_identity():
    assert resample_indices(12, 24, 6) == [0, 0, 1, 1, 2, 2]
    assert resample_indices(30, 30, 5, start=3) == [3, 4, 5, 6, 7]


def test_integer_stride():
    assert clip_step(30.0, None, 4) == 4.0
    assert clip_indices(10, 5, 4.0, 100) == [10, 14, 18, 22, 26]
    assert clip_span(5, 4.0) == 17


def test_sampling_fps_takes_precedence_over_stride():
    assert clip_step(30.0, 12.0, 8) == pytest.approx(2.5)
    assert ClipSampling(4, sampling_fps=15.0, frame_stride=8).step(30.0) == pytest.approx(2.0)


def test_clip_longer_than_video_repeats_the_last_frame():
    assert clip_indices(0, 8, 2.0, 5) == [0, 2, 4, 4, 4, 4, 4, 4]
    sampling = ClipSampling(8, frame_stride=2)
    assert sampling.train_indices(5, 30.0) == [0, 2, 4, 4, 4, 4, 4, 4]
    for view in range(3):  # all views of a short video start at frame 0
        assert sampling.view_indices(5, 30.0, view, 3) == [0, 2, 4, 4, 4, 4, 4, 4]


def test_single_frame_video_and_empty_video():
    assert clip_indices(0, 3, 1.0, 1) == [0, 0, 0]
    with pytest.raises(ValueError, match="no frames"):
        clip_indices(0, 3, 1.0, 0)


def test_random_start_covers_exactly_the_valid_range():
    generator = torch.Generator().manual_seed(0)
    starts = {random_clip_start(20, 17, generator) for _ in range(400)}
    assert starts == {0, 1, 2, 3}  # 20 - 17 = 3
    indices = ClipSampling(5, frame_stride=4).train_indices(20, 30.0, generator)
    assert indices[-1] <= 19 and indices[1] - indices[0] == 4


def test_uniform_views_span_the_video_first_to_last():
    # 300 frames, 64-frame clips at stride 2 span 127 frames: room = 173.
    span = clip_span(64, 2.0)
    assert span == 127
    starts = uniform_clip_starts(300, span, 3)
    assert starts == [0, round(173 / 2), 173]
    assert starts[-1] + span == 300  # the last view ends on the last frame
    assert uniform_clip_starts(300, span, 1) == [173 // 2]  # one view: centred


def test_views_cover_a_long_video():
    """Charades: 30 s at 24 fps, 64 frames at 12 fps; 6 views leave no frame uncovered."""
    sampling = ClipSampling(64, sampling_fps=12.0)
    covered = set()
    for view in range(6):
        indices = sampling.view_indices(720, 24.0, view, 6)
        covered.update(range(indices[0], indices[-1] + 2))
    assert covered >= set(range(720))


def test_view_indices_checks_the_view():
    with pytest.raises(IndexError):
        ClipSampling(4).view_indices(100, 30.0, 3, 3)


def test_split_view_is_temporal_major():
    assert [split_view(v, 3) for v in range(6)] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert split_view(4, 1) == (4, 0)


def test_clip_seconds_span_first_frame_start_to_last_frame_end():
    assert clip_seconds([30, 32, 34], 10.0) == (3.0, 3.5)


def test_bad_rates_are_rejected():
    with pytest.raises(ValueError):
        clip_step(0.0, 12.0, 1)
    with pytest.raises(ValueError):
        clip_step(30.0, None, 0)
