"""transformers' ViViT (``VivitForVideoClassification``) loaded into videotl's ViViT: a randomly
initialised tiny model built from a ``VivitConfig`` (nothing downloaded) gives the same logits as
the converted videotl model; ``tools/convert_checkpoint.py`` end to end; mismatches are errors
naming the keys."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from videotl.config import ConfigError, load_config
from videotl.models import build_model
from videotl.models.weights import detect_format, load_pretrained
from videotl.utils.checkpoint import CheckpointError

transformers = pytest.importorskip("transformers", reason="transformers is not installed")

ROOT = Path(__file__).resolve().parents[2]
# vivit_tiny's architecture: width 32, 4 blocks, 4 heads, MLP 64, tubelets 2x8x8; 4 frames of
# 32 x 32 pixels (2 x 4 x 4 tubelets), 7 classes.
FRAMES, SIZE, CLASSES = 4, 32, 7
OVERRIDES = ["model.name=vivit_tiny", f"model.num_classes={CLASSES}", "model.gelu=tanh",
             f"data.num_frames={FRAMES}", f"data.train_crop_size={SIZE}"]
YAML = """model:
  name: x2plus1d_tiny
  dropout: 0.0
data:
  train_jitter_scales: [32, 40]
  test_crop_size: 32
"""


def hf_model(**changes):
    """A tiny ``VivitForVideoClassification`` with every weight drawn at a scale where the GELU
    form and the LayerNorm epsilon matter."""
    config = transformers.VivitConfig(
        image_size=SIZE, num_frames=FRAMES, tubelet_size=[2, 8, 8], hidden_size=32,
        num_hidden_layers=4, num_attention_heads=4, intermediate_size=64, num_labels=CLASSES,
        **changes,
    )
    torch.manual_seed(0)
    model = transformers.VivitForVideoClassification(config).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            scale = 1.0 if "layernorm" in name else 0.3
            parameter.copy_(torch.randn_like(parameter) * scale + ("weight" in name and
                                                                   "layernorm" in name))
    return model


@pytest.fixture
def tiny_config(tmp_path):
    """A config file for vivit_tiny on 4 frames of 32 x 32 pixels (with ``OVERRIDES``)."""
    path = tmp_path / "tiny.yaml"
    path.write_text(YAML)
    return path


def config(path, *overrides):
    return load_config(path, [*OVERRIDES, *overrides])


def videotl_model(path, *overrides):
    return build_model(config(path, *overrides)).eval()


def logits(model, clips):
    """videotl takes ``[B, 3, T, H, W]``; transformers ``[B, T, 3, H, W]``."""
    with torch.no_grad():
        if isinstance(model, transformers.VivitForVideoClassification):
            return model(pixel_values=clips.transpose(1, 2)).logits
        return model(clips)


def save(model, folder, kind):
    """``save_pretrained`` (transformers 4 names, with config.json) as safetensors, or the
    module's own state dict (transformers 5 names, no config.json) as ``.bin``."""
    folder.mkdir()
    if kind == "save_pretrained":
        model.save_pretrained(folder)
        return folder / "model.safetensors"
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    return folder / "pytorch_model.bin"


@pytest.mark.parametrize("kind", ["save_pretrained", "state_dict"])
def test_converted_model_gives_the_transformers_logits(tmp_path, kind, tiny_config):
    reference = hf_model()
    path = save(reference, tmp_path / "hf", kind)
    overrides = [f"model.pretrained={path}", "model.pretrained_format=hf"]
    model = build_model(config(tiny_config, *overrides)).eval()
    clips = torch.randn(2, 3, FRAMES, SIZE, SIZE)
    expected = logits(reference, clips)
    torch.testing.assert_close(logits(model, clips), expected, rtol=1e-5, atol=1e-5 *
                               expected.abs().max().item())


def test_format_is_detected_and_every_tensor_is_accounted_for(tmp_path, tiny_config):
    reference = hf_model()
    path = save(reference, tmp_path / "hf", "save_pretrained")
    assert detect_format(load_file(str(path)), path) == "hf"
    model = videotl_model(tiny_config)
    report = load_pretrained(model, path)
    assert report.missing == [] and report.mismatched == [] and report.unexpected == []
    assert len(report.loaded) == len(model.state_dict())
    assert report.note.startswith("hf format (detected)")


def test_vivit_model_pooler_is_skipped_and_reported(tmp_path, tiny_config):
    reference = hf_model()
    backbone = transformers.VivitModel(reference.config, add_pooling_layer=True)
    state = {f"vivit.{key}": value for key, value in backbone.state_dict().items()}
    state.update({f"classifier.{k}": v for k, v in reference.classifier.state_dict().items()})
    torch.save(state, tmp_path / "model.bin")
    report = load_pretrained(videotl_model(tiny_config), tmp_path / "model.bin", "hf")
    assert sorted(report.unexpected) == [
        "vivit.pooler.dense.bias (VivitModel's pooler: not used by the classifier)",
        "vivit.pooler.dense.weight (VivitModel's pooler: not used by the classifier)",
    ]


def test_another_number_of_classes_skips_the_classifier(tmp_path, tiny_config):
    path = save(hf_model(), tmp_path / "hf", "save_pretrained")
    report = load_pretrained(videotl_model(tiny_config, "model.num_classes=5"), path, "hf")
    assert sorted(report.mismatched) == [
        ("head.bias", (5,), (7,)), ("head.weight", (5, 32), (7, 32))]
    assert report.missing == []


def test_token_learner_tensors_stay_as_initialised(tmp_path, tiny_config):
    path = save(hf_model(), tmp_path / "hf", "save_pretrained")
    model = videotl_model(tiny_config, "model.name=vivit_tiny_tl4at2")
    report = load_pretrained(model, path, "hf")
    assert report.missing and all(".blocks." not in name or "reducer" in name
                                  for name in report.missing)


def test_exact_gelu_is_refused_naming_the_key(tmp_path, tiny_config):
    path = save(hf_model(), tmp_path / "hf", "save_pretrained")
    with pytest.raises(CheckpointError) as error:
        load_pretrained(videotl_model(tiny_config, "model.gelu=exact"), path, "hf")
    assert str(error.value) == (
        f"{path}: the checkpoint's network (hidden_act=gelu_fast, layer_norm_eps=1e-06; "
        f"{path.parent / 'config.json'}) needs: model.gelu=tanh"
    )


def test_model_pretrained_error_is_a_config_error(tmp_path, tiny_config):
    path = save(hf_model(), tmp_path / "hf", "save_pretrained")
    with pytest.raises(ConfigError, match=r"^model.pretrained: .*needs: model.gelu=tanh$"):
        build_model(config(tiny_config, "model.gelu=exact", f"model.pretrained={path}"))


def test_other_frames_are_refused_listing_the_keys(tmp_path, tiny_config):
    path = save(hf_model(), tmp_path / "hf", "save_pretrained")
    with pytest.raises(CheckpointError) as error:
        load_pretrained(videotl_model(tiny_config, "data.num_frames=8"), path, "hf")
    assert str(error.value) == (
        f"{path} (checkpoint: data.num_frames=4, data.train_crop_size=32, tubelet 2x8x8): the "
        "checkpoint does not fit the model (set model.name, data.num_frames and "
        "data.train_crop_size to the checkpoint's depth, width, tubelet, frames and crop): "
        "pos_embed [1, 33, 32] in file, [1, 65, 32] in model"
    )


def test_fewer_layers_in_the_checkpoint_are_refused(tmp_path, tiny_config):
    reference = hf_model()
    state = {k: v for k, v in reference.state_dict().items() if not k.startswith("vivit.layers.3.")}
    torch.save(state, tmp_path / "model.bin")
    with pytest.raises(CheckpointError) as error:
        load_pretrained(videotl_model(tiny_config), tmp_path / "model.bin", "hf")
    names = ", ".join(f"encoder.blocks.3.{part}" for part in (
        "norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
        "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
        "mlp.fc2.weight", "mlp.fc2.bias"))
    assert str(error.value) == (
        f"{tmp_path / 'model.bin'}: the model has tensors the checkpoint lacks (more blocks or "
        f"another architecture than the checkpoint's): {names}"
    )


def test_unknown_tensors_are_refused(tmp_path, tiny_config):
    state = dict(hf_model().state_dict(), **{"vivit.extra.weight": torch.zeros(3)})
    torch.save(state, tmp_path / "model.bin")
    with pytest.raises(CheckpointError) as error:
        load_pretrained(videotl_model(tiny_config), tmp_path / "model.bin", "hf")
    assert str(error.value) == (
        f"{tmp_path / 'model.bin'}: 1 tensors have no place in a transformers ViViT: "
        "vivit.extra.weight"
    )


def test_factorised_model_is_refused(tmp_path, tiny_config):
    path = save(hf_model(), tmp_path / "hf", "save_pretrained")
    with pytest.raises(CheckpointError, match="needs: model.name: an unfactorised ViViT"):
        load_pretrained(videotl_model(tiny_config, "model.name=vivit_tiny_fe"), path, "hf")


def test_a_file_without_state_dict_suffix_is_read_as_scenic(tmp_path, tiny_config):
    path = tmp_path / "checkpoint_1000"
    path.write_bytes(b"\x80")
    with pytest.raises(CheckpointError, match=str(path)):
        load_pretrained(videotl_model(tiny_config), path)


def test_convert_tool_end_to_end(tmp_path, tiny_config):
    reference = hf_model()
    source = save(reference, tmp_path / "hf", "save_pretrained")
    out = tmp_path / "converted.safetensors"
    env = {key: value for key, value in os.environ.items() if key != "VIDEOTL_DEBUG"}
    result = subprocess.run(
        [sys.executable, "tools/convert_checkpoint.py", "--config", str(tiny_config), *OVERRIDES,
         str(source), "--out", str(out)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    tensors = len(videotl_model(tiny_config).state_dict())
    assert f"loaded {tensors} of the model's {tensors} tensors from {source}" in result.stdout
    assert f"wrote {out}" in result.stdout
    model = build_model(config(tiny_config, f"model.pretrained={out}")).eval()
    clips = torch.randn(2, 3, FRAMES, SIZE, SIZE)
    expected = logits(reference, clips)
    torch.testing.assert_close(logits(model, clips), expected, rtol=1e-5, atol=1e-5 *
                               expected.abs().max().item())


def test_convert_tool_refuses_a_mismatch_in_one_line(tmp_path, tiny_config):
    source = save(hf_model(), tmp_path / "hf", "save_pretrained")
    env = {key: value for key, value in os.environ.items() if key != "VIDEOTL_DEBUG"}
    result = subprocess.run(
        [sys.executable, "tools/convert_checkpoint.py", "--config", str(tiny_config), *OVERRIDES,
         "model.gelu=exact", str(source), "--out", str(tmp_path / "x.safetensors")],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {source}: the checkpoint's network (hidden_act=gelu_fast, layer_norm_eps=1e-06; "
        f"{source.parent / 'config.json'}) needs: model.gelu=tanh"
    ]
    assert not (tmp_path / "x.safetensors").exists()


def test_convert_tool_help_documents_each_format():
    result = subprocess.run([sys.executable, "tools/convert_checkpoint.py", "--help"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0
    for name in ("auto", "videotl", "timm", "hf", "scenic"):
        assert f"\n  {name} " in result.stdout
