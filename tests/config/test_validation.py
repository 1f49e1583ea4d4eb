"""Every config value is validated at load time with a one-line message naming the key and the
allowed range: ``_base_``, keys defined twice in a YAML mapping, NaN or infinite floats, the
scale jitter and crop sizes, normalisation, optimiser betas, reducer layers, ``output_dir``, and
wrong-type errors that say the expected type in words."""

import dataclasses
import typing
from pathlib import Path

import pytest
from videotl.config import ConfigError, ExperimentConfig, load_config
from videotl.models import build_model


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def refused(overrides) -> str:
    with pytest.raises(ConfigError) as error:
        load_config(None, overrides)
    return str(error.value)


@pytest.mark.parametrize("text, shown", [
    ("_base_: 3\n", "3"),
    ("_base_: [a.yaml, 3]\n", "['a.yaml', 3]"),
    ("_base_:\n", "None"),
    ("_base_: {a.yaml: 1}\n", "{'a.yaml': 1}"),
    ("_base_: ''\n", "''"),
])
def test_base_must_be_a_file_name_or_a_list_of_them(tmp_path, text, shown):
    path = write(tmp_path / "child.yaml", text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == (
        f"config key '_base_' in {path} must be a file name or a list of file names "
        f"(non-empty strings, relative to {tmp_path}), got {shown}"
    )


def test_an_empty_base_list_is_allowed(tmp_path):
    assert load_config(write(tmp_path / "c.yaml", "_base_: []\n")) == ExperimentConfig()


@pytest.mark.parametrize("text, key, where", [
    ("data:\n  num_frames: 8\nmodel:\n  dropout: 0.1\ndata:\n  num_frames: 16\n",
     "data", "lines 1 and 5"),
    ("model:\n  dropout: 0.1\n  num_classes: 3\n  dropout: 0.2\n",
     "model.dropout", "lines 2 and 4"),
    ("seed: 1\noutput_dir: a\nseed: 2\n", "seed", "lines 1 and 3"),
    ("data:\n  mean: [0.4, 0.4, 0.4]\n  std: [{a: 1, a: 2}]\n", "data.std[0].a",
     "line 3, columns 10 and 16"),
])
def test_a_key_defined_twice_in_a_file_is_refused(tmp_path, text, key, where):
    path = write(tmp_path / "twice.yaml", text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == (
        f"config file {path}: key {key!r} is defined twice, at {where}; each key may appear only "
        "once in a mapping (YAML would silently keep the last)"
    )


def test_a_key_defined_twice_in_a_base_file_is_refused(tmp_path):
    base = write(tmp_path / "base.yaml", "train:\n  epochs: 2\n  epochs: 3\n")
    child = write(tmp_path / "child.yaml", "_base_: base.yaml\n")
    with pytest.raises(ConfigError, match=rf"^config file {base}: key 'train.epochs' is defined "
                                          r"twice, at lines 2 and 3;"):
        load_config(child)


def test_a_key_defined_twice_in_an_override_is_refused():
    assert refused(["model={dropout: 0.1, dropout: 0.2}"]) == (
        "bad override 'model={dropout: 0.1, dropout: 0.2}': key 'model.dropout' is defined "
        "twice, at line 1, columns 2 and 16; each key may appear only once in a mapping (YAML "
        "would silently keep the last)"
    )


def test_one_key_name_in_two_sections_is_no_duplicate(tmp_path):
    path = write(tmp_path / "c.yaml", "train:\n  batch_size: 4\ntest:\n  batch_size: 2\n")
    cfg = load_config(path)
    assert (cfg.train.batch_size, cfg.test.batch_size) == (4, 2)


@pytest.mark.parametrize("override, message", [
    ("model.dropout=nan", "config key 'model.dropout' must be a finite number in [0.0, 1.0], "
                          "got nan"),
    ("solver.base_lr=inf", "config key 'solver.base_lr' must be a finite number >= 0.0, got inf"),
    ("solver.weight_decay=.inf",
     "config key 'solver.weight_decay' must be a finite number >= 0.0, got inf"),
    ("data.max_failure_fraction=.nan",
     "config key 'data.max_failure_fraction' must be a finite number in [0.0, 1.0], got nan"),
    ("data.sampling_fps=nan", "config key 'data.sampling_fps' must be a finite number >= 0.01, "
                              "got nan"),
    ("solver.clip_grad_norm=inf",
     "config key 'solver.clip_grad_norm' must be a finite number >= 0.0, got inf"),
    ("data.mean=[0.45, .nan, 0.45]",
     "config key 'data.mean' must hold 3 finite numbers (R, G, B), got [0.45, nan, 0.45]"),
    ("data.std=[0.2, 0.2, .inf]",
     "config key 'data.std' must hold 3 finite numbers (R, G, B), each > 0.0, got [0.2, 0.2, inf]"),
])
def test_nan_and_infinite_floats_are_refused(override, message):
    assert refused([override]) == message


def float_keys(node=ExperimentConfig, prefix=""):
    """Every key whose value is (or holds) floats."""
    for item in dataclasses.fields(node):
        hint = typing.get_type_hints(node)[item.name]
        if dataclasses.is_dataclass(hint):
            yield from float_keys(hint, f"{prefix}{item.name}.")
        elif float in (hint, *typing.get_args(hint)) or "float" in str(hint):
            yield f"{prefix}{item.name}", hint


@pytest.mark.parametrize("key, hint", list(float_keys()))
def test_every_float_key_refuses_nan(key, hint):
    value = "[.nan, .nan, .nan]" if "List" in str(hint) else ".nan"
    message = refused([f"{key}={value}"])
    assert message.startswith(f"config key {key!r} must ") and "finite number" in message


@pytest.mark.parametrize("scales, message", [
    ("[256]", "got [256]"),
    ("[256, 320, 400]", "got [256, 320, 400]"),
    ("[0, 320]", "got [0, 320]"),
    ("[-256, 320]", "got [-256, 320]"),
    ("[320, 256]", "got [320, 256]"),
])
def test_jitter_scales_are_two_positive_integers_min_then_max(scales, message):
    assert refused([f"data.train_jitter_scales={scales}", "data.train_crop_size=1"]) == (
        "config key 'data.train_jitter_scales' must hold 2 integers (min, max), each >= 1, "
        f"non-decreasing, {message}"
    )


def test_training_crop_fits_in_the_smaller_jitter_scale():
    assert refused(["data.train_crop_size=257"]) == (
        "config key 'data.train_crop_size' must be <= the smaller training scale "
        "data.train_jitter_scales[0] (256), got 257: raise data.train_jitter_scales or lower "
        "the crop"
    )
    cfg = load_config(None, ["data.train_crop_size=300", "data.train_jitter_scales=[300, 300]"])
    assert cfg.data.train_jitter_scales == [300, 300]


@pytest.mark.parametrize("override, shown", [
    ("data.shard_dir=/nfs/k400", "'/nfs/k400'"),
    ("data.shard_urls=/nfs/{split}-{000000..000009}.tar", "'/nfs/{split}-{000000..000009}.tar'"),
    ("data.shuffle_buffer=0", "0"),
])
def test_shard_keys_are_refused_when_the_videos_are_files(override, shown):
    key = override.split("=")[0]
    assert refused([override]) == (
        f"config key '{key}' is read only with data.format=shards, got {shown} with "
        "data.format='files': remove it or set data.format=shards"
    )
    assert refused(["data.format=files", override]) == refused([override])
    cfg = load_config(None, ["data.format=shards", override])
    assert str(getattr(cfg.data, key.split(".")[1])) == shown.strip("'")


def test_the_first_shard_key_set_is_named_and_defaults_pass():
    assert refused(["data.shuffle_buffer=8", "data.shard_dir=x"]) == (
        "config key 'data.shard_dir' is read only with data.format=shards, got 'x' with "
        "data.format='files': remove it or set data.format=shards"
    )
    # At their defaults the shard keys are not set; the keys of the files also describe the
    # dataset that make_shards.py packs from the same config, so shards accept them.
    load_config(None, ["data.shard_dir=shards", "data.shard_urls=", "data.shuffle_buffer=64"])
    cfg = load_config(None, ["data.format=shards", "data.synthetic=true", "data.video_dir=v",
                             "data.class_names_file=names.txt"])
    assert cfg.data.synthetic and cfg.data.video_dir == "v"


def test_test_crop_size_is_any_positive_size():
    assert refused(["data.test_crop_size=0"]) == (
        "config key 'data.test_crop_size' must be >= 1, got 0"
    )
    assert load_config(None, ["data.test_crop_size=512"]).data.test_crop_size == 512


MEAN = "3 finite numbers (R, G, B)"
STD = "3 finite numbers (R, G, B), each > 0.0"
BETAS = "2 finite numbers (beta1, beta2), each in [0.0, 1.0)"
LAYERS = "integers, each >= 0, increasing"


@pytest.mark.parametrize("key, value, rule, shown", [
    ("data.mean", "[0.45, 0.45]", MEAN, "[0.45, 0.45]"),
    ("data.mean", "[0.4, 0.4, 0.4, 0.4]", MEAN, "[0.4, 0.4, 0.4, 0.4]"),
    ("data.std", "[0.225]", STD, "[0.225]"),
    ("data.std", "[0.2, 0, 0.2]", STD, "[0.2, 0.0, 0.2]"),
    ("data.std", "[0.2, -0.1, 0.2]", STD, "[0.2, -0.1, 0.2]"),
    ("solver.betas", "[0.9]", BETAS, "[0.9]"),
    ("solver.betas", "[0.9, 0.99, 0.5]", BETAS, "[0.9, 0.99, 0.5]"),
    ("solver.betas", "[0.9, 1]", BETAS, "[0.9, 1.0]"),
    ("solver.betas", "[-0.1, 0.9]", BETAS, "[-0.1, 0.9]"),
    ("model.reducer_layers", "[-1]", LAYERS, "[-1]"),
    ("model.reducer_layers", "[2, 1]", LAYERS, "[2, 1]"),
    ("model.reducer_layers", "[3, 3]", LAYERS, "[3, 3]"),
    ("model.reducer_tokens", "[8, 0]", "integers, each >= 1", "[8, 0]"),
])
def test_lists_have_their_length_bounds_and_order(key, value, rule, shown):
    assert refused([f"{key}={value}"]) == f"config key {key!r} must hold {rule}, got {shown}"


def test_lists_within_their_rules_load():
    cfg = load_config(None, ["solver.betas=[0.0, 0.5]", "data.std=[1, 2, 3]",
                             "model.reducer_layers=[]", "data.train_jitter_scales=[224, 224]",
                             "data.train_crop_size=224"])
    assert cfg.solver.betas == [0.0, 0.5] and cfg.model.reducer_layers == []


def test_reducer_layer_beyond_the_depth_is_refused_when_the_model_is_built():
    cfg = load_config(None, ["model.name=vivit_tiny_tl4at2", "model.num_classes=5",
                             "model.dropout=0.0", "data.num_frames=4", "data.train_crop_size=32",
                             "model.reducer_layers=[1, 4]"])
    with pytest.raises(ConfigError) as error:
        build_model(cfg)
    assert str(error.value) == "model.reducer_layers: reducer_layers must be in [0, 4), got [1, 4]"


@pytest.mark.parametrize("override, message", [
    ("output_dir=", "config key 'output_dir' must be a non-empty string, got ''"),
    ("output_dir='  '", "config key 'output_dir' must be a non-empty string, got '  '"),
])
def test_output_dir_must_not_be_empty(override, message):
    assert refused([override]) == message


def test_output_dir_empty_in_a_file(tmp_path):
    path = write(tmp_path / "c.yaml", "output_dir: ''\n")
    with pytest.raises(ConfigError, match=r"^config key 'output_dir' must be a non-empty string"):
        load_config(path)


@pytest.mark.parametrize("override, key, expected, got", [
    ("model.reducer_layers=x", "model.reducer_layers", "a list of integers or null", "'x' (str)"),
    ("model.reducer_layers=[a]", "model.reducer_layers[0]", "an integer", "'a' (str)"),
    ("data.mean=3", "data.mean", "a list of numbers", "3 (int)"),
    ("data.mean=[a, 1, 1]", "data.mean[0]", "a number", "'a' (str)"),
    ("data.sampling_fps=x", "data.sampling_fps", "a number or null", "'x' (str)"),
    ("data.random_flip=maybe", "data.random_flip", "true or false", "'maybe' (str)"),
    ("seed=1.5", "seed", "an integer", "1.5 (float)"),
    ("output_dir=[1]", "output_dir", "a string", "[1] (list)"),
    ("test.aggregation=[1]", "test.aggregation", "a string or null", "[1] (list)"),
    ("data.train_jitter_scales=null", "data.train_jitter_scales", "a list of integers",
     "None (NoneType)"),
])
def test_wrong_type_says_the_expected_type_in_words(override, key, expected, got):
    assert refused([override]) == (
        f"config key {key!r} in override {override!r} expects {expected}, got {got}"
    )
