"""The decoding invariant over a corpus of real-world container and codec shapes, made here with
PyAV's encoders: for every frame a plain sequential decode produces, ``get_frames`` returns that
exact frame (bit-identical RGB, no resizing) with every backend (torchcodec where FFmpeg's
shared libraries load), alone or in random sets in any order. Also: frames before the first
keyframe (a cut stream) are reported as outside the decodable range and clips are placed inside
it; rotation metadata turns frames upright."""

import random

import av
import numpy as np
import pytest
import torch
from video_files import (
    CORPUS,
    X264,
    encode_pattern,
    reader_backends,
    sequential_frames,
    without_first_packets,
    write_corpus_video,
)

from videotl.data.dataset import ClipDataset, LoadingPolicy
from videotl.data.lists import VideoEntry
from videotl.data.sampling import ClipSampling
from videotl.data.transforms import EvalTransform, TrainTransform
from videotl.data.torchcodec_decode import torchcodec_unavailable
from videotl.data.video_reader import VideoDecodeError, VideoReader, probe

BACKENDS = reader_backends()

# Files on which decord itself finds every frame; on the others the reader knows in advance
# that it would not (open GOPs, decode-time keyframe order, edit lists, MPEG-TS) and uses PyAV.
DECORD_EXACT = {"h264_bframes_long_gop", "mjpeg_avi", "vp9_webm", "variable_frame_rate",
                "start_at_2500ms_mkv"}
# Files torchcodec is asked for; the others (MPEG-TS, B-frames in AVI) go to PyAV.
TORCHCODEC_EXACT = set(CORPUS) - {"mpeg4_part2_avi", "mpegts_nonzero_start"}


def encoder_available(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except Exception:  # PyAV raises UnknownCodecError or ValueError depending on the version
        return False
    return True


def corpus_params() -> list:
    return [pytest.param(name, id=name, marks=pytest.mark.skipif(
        not encoder_available(encoder),
        reason=f"this PyAV build has no {encoder} encoder to make the {name} video"))
        for name, (_, encoder, _) in CORPUS.items()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """name -> (path, pts -> RGB frame of a sequential decode); each file made on first use."""
    folder = tmp_path_factory.mktemp("corpus")
    made = {}

    def get(name):
        if name not in made:
            path = write_corpus_video(folder, name)
            made[name] = (path, sequential_frames(path))
        return made[name]

    return get


def reference_by_index(path, frames):
    """Index -> sequential frame, with the check that the index holds exactly those frames."""
    index = probe(path)
    assert list(index.pts) == sorted(frames), "the index and a sequential decode disagree"
    return [frames[int(pts)] for pts in index.pts]


@pytest.mark.parametrize("name", corpus_params())
def test_index_holds_exactly_the_frames_a_sequential_decode_shows(corpus, name):
    path, frames = corpus(name)
    reference = reference_by_index(path, frames)
    reader = VideoReader(path, backend="pyav")
    assert reader.num_frames == len(reference) and reader.decodable_range == range(len(reference))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", corpus_params())
def test_every_frame_alone_is_the_sequential_frame(corpus, name, backend):
    path, frames = corpus(name)
    reference = reference_by_index(path, frames)
    reader = VideoReader(path, backend=backend)
    for i in range(len(reference)):
        got = reader.get_frames([i])[0].numpy()
        assert np.array_equal(got, reference[i]), f"frame {i} of {name} with {reader.backend}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", corpus_params())
def test_random_sets_in_any_order_are_the_sequential_frames(corpus, name, backend):
    path, frames = corpus(name)
    reference = reference_by_index(path, frames)
    rng = random.Random(name)
    count = len(reference)
    sets = [[rng.randrange(count) for _ in range(rng.randint(1, 12))] for _ in range(6)]
    sets += [list(range(count))[::-1], list(range(0, count, 7))]
    for wanted in sets:
        got = VideoReader(path, backend=backend).get_frames(wanted).numpy()
        for k, i in enumerate(wanted):
            assert np.array_equal(got[k], reference[i]), f"frame {i} of {wanted} in {name}"


@pytest.mark.parametrize("name", ["h264_bframes_long_gop", "mpeg4_part2_avi", "vp9_webm"])
def test_pyav_resized_frames_are_each_frames_own_conversion(corpus, name):
    """The PyAV path converts every frame with one shared swscale context (a frame's own
    ``to_ndarray`` builds a new one per call): same pixels as that per-frame conversion."""
    path, _ = corpus(name)
    reader = VideoReader(path, backend="pyav", short_side=18)
    width, height = reader.size
    assert (width, height) != (reader.width, reader.height)
    with av.open(str(path)) as container:
        expected = {frame.pts: frame.to_ndarray(format="rgb24", width=width, height=height)
                    for frame in container.decode(container.streams.video[0])}
    index = probe(path)
    wanted = list(range(0, reader.num_frames, 3))
    got = reader.get_frames(wanted).numpy()
    for k, i in enumerate(wanted):
        assert np.array_equal(got[k], expected[int(index.pts[i])]), f"frame {i} of {name}"


@pytest.mark.parametrize("name", corpus_params())
def test_decord_is_used_only_where_it_finds_the_frames(corpus, name):
    path, _ = corpus(name)
    reader = VideoReader(path, backend="decord")
    reader.get_frames([0, reader.num_frames - 1])
    problem = probe(path).decord_problem
    if name in DECORD_EXACT:
        assert reader.backend == "decord" and problem is None
    else:
        assert reader.backend == "pyav" and problem


@pytest.mark.parametrize("name", corpus_params())
def test_torchcodec_is_asked_only_where_it_finds_the_frames(corpus, name):
    path, _ = corpus(name)
    problem = probe(path).torchcodec_problem
    assert (problem is None) == (name in TORCHCODEC_EXACT), problem
    if torchcodec_unavailable() is not None:
        return  # the index's verdict above is all this machine can check
    reader = VideoReader(path, backend="torchcodec")
    reader.get_frames([0, reader.num_frames - 1])
    assert reader.backend == ("torchcodec" if name in TORCHCODEC_EXACT else "pyav")


@pytest.fixture(scope="module")
def cut_stream(tmp_path_factory):
    """An MP4 whose video starts 4 packets after a keyframe (a stream cut mid-GOP)."""
    folder = tmp_path_factory.mktemp("cut")
    whole = encode_pattern(folder / "whole.mp4", "libx264", 45, {**X264, "g": "15", "bf": "2"})
    return without_first_packets(whole, folder / "cut.mp4", 4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_stream_cut_mid_gop_reports_its_decodable_range(cut_stream, backend):
    frames = sequential_frames(cut_stream)
    reader = VideoReader(cut_stream, backend=backend)
    index = probe(cut_stream)
    assert 0 < reader.first_frame < reader.num_frames == index.num_frames
    decodable = list(reader.decodable_range)
    assert sorted(frames) == [int(index.pts[i]) for i in decodable]
    got = reader.get_frames(decodable[::-1]).numpy()[::-1]
    assert all(np.array_equal(got[k], frames[int(index.pts[i])]) for k, i in enumerate(decodable))
    with pytest.raises(VideoDecodeError, match="precede the first decodable frame") as error:
        reader.get_frames([0])
    assert error.value.path == str(cut_stream)


def test_clips_are_placed_inside_the_decodable_range(cut_stream):
    reader = VideoReader(cut_stream, backend="pyav")
    first, sampling = reader.first_frame, ClipSampling(8, frame_stride=2)
    for view in range(3):
        clip = sampling.view_indices(reader.num_frames, reader.fps, view, 3, first_frame=first)
        assert first <= min(clip) and max(clip) < reader.num_frames
    assert sampling.view_indices(reader.num_frames, reader.fps, 0, 3, first_frame=first)[0] == first
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        clip = sampling.train_indices(reader.num_frames, reader.fps, generator, first_frame=first)
        assert first <= min(clip) and max(clip) < reader.num_frames


@pytest.mark.parametrize("split", ["train", "test"])
def test_dataset_loads_every_clip_of_a_cut_stream(cut_stream, split):
    dataset = ClipDataset(
        [VideoEntry(str(cut_stream), "cut", label=0)], split, num_classes=1, multilabel=False,
        class_names=["a"], sampling=ClipSampling(8, frame_stride=2),
        train_transform=TrainTransform([48, 48], 48, [0.0] * 3, [1.0] * 3, flip=False),
        eval_transform=EvalTransform(48, 1, [0.0] * 3, [1.0] * 3), num_temporal_views=3,
        policy=LoadingPolicy(backend="pyav", max_failure_fraction=0.0, video_retries=0,
                             clip_retries=0),
    )
    items = [dataset[i] for i in range(len(dataset))]
    assert all(item["ok"] for item in items) and not dataset.failures


@pytest.fixture(scope="module")
def turned(tmp_path_factory):
    """The same frames stored turned by 90 degrees, and mirrored (display matrices)."""
    folder = tmp_path_factory.mktemp("turned")
    options = {**X264, "g": "10", "bf": "2"}
    return {
        "rotated": encode_pattern(folder / "rotated.mp4", "libx264", 20, options, rotation=90),
        "mirrored": encode_pattern(folder / "mirrored.mp4", "libx264", 20, options, hflip=True),
    }


UPRIGHT = {"rotated": lambda image: np.rot90(image, 1),  # shown turned counter-clockwise
           "mirrored": lambda image: image[:, ::-1]}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["rotated", "mirrored"])
def test_rotation_metadata_turns_frames_upright(turned, kind, backend):
    path = turned[kind]
    frames = sequential_frames(path)
    reader = VideoReader(path, backend=backend)
    expected_size = (48, 64) if kind == "rotated" else (64, 48)
    assert (reader.width, reader.height) == reader.size == expected_size
    got = reader.get_frames([19, 3, 0, 11]).numpy()
    index = probe(path)
    for k, i in enumerate([19, 3, 0, 11]):
        assert np.array_equal(got[k], UPRIGHT[kind](frames[int(index.pts[i])]))


def test_rotated_frames_resize_to_the_upright_short_side(turned):
    reader = VideoReader(turned["rotated"], backend="pyav", short_side=24)
    assert reader.size == (24, 32)
    assert reader.get_frames([0, 5]).shape == (2, 32, 24, 3)
