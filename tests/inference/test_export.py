"""Export (videotl.inference.export, tools/export.py) and the videotl::vector_attention custom op:
ONNX by onnxruntime within 1e-4 of PyTorch, TorchScript reloaded exactly, torch.compile and
torch.export through the op, and the op's gradients equal to the float64 formula."""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from videotl.config import load_config
from videotl.errors import InputError
from videotl.inference.export import (
    example_clip,
    export_from_config,
    export_onnx,
    export_torchscript,
    onnx_runner,
)
from videotl.kernels import build, native_vector_attention
from videotl.models import build_model
from videotl.models.layers import VectorTransformer, vector_attention_reference

REPO = Path(__file__).resolve().parents[2]
FRAMES, SIZE = 4, 32
TINY_X2PLUS1D = ["model.name=x2plus1d_tiny", "model.space_time_module=conv2d+tokenlearner"]
TINY_VIVIT = ["model.name=vivit_tiny_tl4at2"]

needs_kernel = pytest.mark.skipif(shutil.which(build.compiler()[0]) is None,
                                  reason="no C compiler to build the native kernel")


@pytest.fixture(autouse=True)
def quiet_deprecations():
    """torch.jit.trace/save/load and the tracer warn on every call; the warnings say nothing
    about the behaviour tested here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def config(*overrides: str):
    return load_config(None, ["model.num_classes=5", f"data.num_frames={FRAMES}",
                              f"data.train_crop_size={SIZE}", f"data.test_crop_size={SIZE}",
                              *overrides])


def tiny_model(*overrides: str) -> torch.nn.Module:
    return build_model(config(*overrides)).eval()


@needs_kernel
@pytest.mark.parametrize("overrides", [TINY_X2PLUS1D, TINY_VIVIT], ids=["x2plus1d", "vivit"])
def test_onnx_by_onnxruntime_matches_pytorch(overrides, tmp_path):
    pytest.importorskip("onnx", reason="ONNX export needs onnx (pip install videotl[export])")
    pytest.importorskip("onnxscript", reason="ONNX export needs onnxscript")
    pytest.importorskip("onnxruntime", reason="running the ONNX model needs onnxruntime")
    model = tiny_model(*overrides)
    path = tmp_path / "model.onnx"
    export_onnx(model, example_clip(FRAMES, SIZE, batch=2), path)
    run = onnx_runner(path)
    clips = example_clip(FRAMES, SIZE, batch=3, seed=1)  # another batch size: the axis is dynamic
    with torch.no_grad():
        expected = model(clips)
    assert run(clips).shape == expected.shape == (3, 5)
    torch.testing.assert_close(run(clips), expected, rtol=0, atol=1e-4)


@needs_kernel
@pytest.mark.parametrize("portable", [False, True], ids=["custom_op", "portable"])
def test_torchscript_reloads_and_matches_exactly(portable, tmp_path):
    model = tiny_model(*TINY_X2PLUS1D)
    path = tmp_path / "model.pt"
    traced = export_torchscript(model, example_clip(FRAMES, SIZE), path, portable=portable)
    graph = str(traced.inlined_graph)
    assert ("videotl::vector_attention" in graph) != portable
    clip = example_clip(FRAMES, SIZE, seed=2)
    with torch.no_grad():
        assert torch.equal(torch.jit.load(str(path))(clip), model(clip))


@needs_kernel
def test_torch_compile_runs_the_custom_op():
    model = tiny_model(*TINY_X2PLUS1D)
    clip = example_clip(FRAMES, SIZE)
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(clip), model(clip), rtol=0, atol=1e-6)


@needs_kernel
def test_torch_export_keeps_the_custom_op():
    model = tiny_model(*TINY_X2PLUS1D)
    clip = example_clip(FRAMES, SIZE)
    program = torch.export.export(model, (clip,))
    assert "videotl.vector_attention" in program.graph_module.code
    with torch.no_grad():
        torch.testing.assert_close(program.module()(clip), model(clip), rtol=0, atol=1e-6)


@needs_kernel
def test_custom_op_passes_opcheck_and_its_gradient_matches_the_formula():
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 5, 3, generator=generator, requires_grad=True) for _ in range(3))
    torch.library.opcheck(torch.ops.videotl.vector_attention.default, (q, k, v))
    grad = torch.randn(2, 5, 3, generator=generator)
    out = native_vector_attention(q, k, v)
    got = torch.autograd.grad(out, (q, k, v), grad)
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    reference = vector_attention_reference(q64, k64, v64)
    expected = torch.autograd.grad(reference, (q64, k64, v64), grad.double())
    torch.testing.assert_close(out.double(), reference, rtol=0, atol=1e-5)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g.double(), e, rtol=0, atol=1e-5)


@needs_kernel
def test_compiled_training_step_uses_the_backward_op():
    layer = VectorTransformer(8)
    z = torch.randn(2, 6, 8)
    torch._dynamo.reset()
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    compiled(z).square().sum().backward()
    got = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    layer(z).square().sum().backward()
    for g, p in zip(got, layer.parameters()):
        torch.testing.assert_close(g, p.grad, rtol=0, atol=1e-6)


def test_ats_is_refused_with_the_reason(tmp_path):
    with pytest.raises(InputError, match="model.token_reducer=ats.*data-dependent"):
        export_from_config(config(*TINY_VIVIT, "model.token_reducer=ats"), None, "torchscript",
                           tmp_path / "model.pt")


@needs_kernel
def test_tool_writes_a_torchscript_file_from_a_checkpoint(tmp_path):
    model = build_model(config(*TINY_VIVIT))
    checkpoint = tmp_path / "weights.pt"
    torch.save({"model": model.state_dict()}, checkpoint)
    out = tmp_path / "exported" / "model.pt"
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("model:\n  name: vivit_tiny_tl4at2\n")
    result = subprocess.run(
        [sys.executable, str(REPO / "tools/export.py"), "--config", str(cfg), "--checkpoint",
         str(checkpoint), "--format", "torchscript", "--out", str(out),
         "model.num_classes=5", f"data.num_frames={FRAMES}", f"data.train_crop_size={SIZE}",
         f"--frames={FRAMES}",
         f"--size={SIZE}"],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    clip = example_clip(FRAMES, SIZE, seed=3)
    with torch.no_grad():
        assert torch.equal(torch.jit.load(str(out))(clip), model.eval()(clip))
