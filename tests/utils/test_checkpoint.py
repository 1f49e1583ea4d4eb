"""The one checkpoint module: atomic training checkpoints, safe reading of weight files in every
format videotl reads, wrapper prefixes, and the load report."""

import pytest
import torch
from safetensors.torch import save_file

from fakes import TinyNet
from videotl.utils import checkpoint as ckpt


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = ckpt.checkpoint_path(tmp_path, 1)
    ckpt.save_checkpoint({"model": {"w": torch.ones(3)}}, path)

    def crash(obj, handle):
        handle.write(b"partial")
        raise KeyboardInterrupt  # killed during the write

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint({"model": {"w": torch.zeros(3)}}, path)
    assert torch.equal(ckpt.load_checkpoint(path)["model"]["w"], torch.ones(3))
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no leftover temporary
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint({}, ckpt.checkpoint_path(tmp_path, 2))
    assert ckpt.last_checkpoint(tmp_path) == path


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_checkpoints_load_without_running_code(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {}, "payload": Payload()}, path)
    with pytest.raises(ckpt.CheckpointError, match=r"cannot read checkpoint .*evil.pth"):
        ckpt.load_checkpoint(path)
    with pytest.raises(ckpt.CheckpointError, match="checkpoint not found"):
        ckpt.load_checkpoint(tmp_path / "missing.pth")


def test_pretrained_weights_with_another_head_report_keys(tmp_path, caplog):
    source = TinyNet(num_classes=5)
    ckpt.save_checkpoint({"model": {"module." + k: v for k, v in source.state_dict().items()}
                          | {"module.extra.weight": torch.ones(1)}}, tmp_path / "w.pth")
    target = TinyNet(num_classes=3)
    with caplog.at_level("INFO"):
        report = ckpt.load_model_weights(target, tmp_path / "w.pth")
    assert {k for k, _, _ in report.mismatched} == {"fc.weight", "fc.bias"}
    assert report.unexpected == ["extra.weight"] and report.missing == []
    assert torch.equal(target.conv.weight, source.conv.weight)
    assert "skipped fc.weight: shape [5, 16] in file, [3, 16] in model" in caplog.text


def test_wrapper_prefixes_are_removed_only_when_every_name_has_them():
    weights = {"_orig_mod.module.a": torch.ones(1), "_orig_mod.module.b": torch.zeros(1)}
    assert list(ckpt.strip_wrapper_prefix(weights)) == ["a", "b"]
    partial = {"module.a": torch.ones(1), "b": torch.zeros(1)}  # a submodule named "module"
    assert ckpt.strip_wrapper_prefix(partial) == partial


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_weights_load_from_bare_state_dicts_in_either_format(tmp_path, suffix):
    source = TinyNet()
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    else:
        torch.save({"state_dict": source.state_dict()}, path)
    target = TinyNet()
    report = ckpt.load_model_weights(target, path, strict=True)
    assert sorted(report.loaded) == sorted(source.state_dict())
    assert all(torch.equal(target.state_dict()[k], v) for k, v in source.state_dict().items())


def test_strict_loading_refuses_missing_and_mismatched_tensors_and_keeps_the_model(tmp_path):
    torch.save({"model": TinyNet(num_classes=5).state_dict()}, tmp_path / "w.pth")
    target = TinyNet(num_classes=3)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(ckpt.CheckpointError, match=r"(?s)checkpoint .*w.pth does not fit model "
                                                   r"'tiny':\nloaded 7 of the model's 9 tensors"
                                                   r".*skipped fc.weight: shape \[5, 16\] in file"):
        ckpt.load_model_weights(target, tmp_path / "w.pth", strict=True, model_name="tiny")
    assert all(torch.equal(target.state_dict()[k], v) for k, v in before.items())
