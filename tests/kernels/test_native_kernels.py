"""The C vector-attention kernel: equal to the float64 formula, and what happens when it cannot
be built."""

from __future__ import annotations

import shutil

import pytest
import torch

from videotl.kernels import build, native_vector_attention
from videotl.kernels import vector_attention as native_module
from videotl.models.layers import vector_attention, vector_attention_reference

# Building the kernel needs a C compiler; without one the package falls back to PyTorch's
# kernel (tested below with the kernels turned off), so only these tests need it.
needs_compiler = pytest.mark.skipif(shutil.which(build.compiler()[0]) is None,
                                    reason="no C compiler to build the native kernel")


@pytest.fixture
def fresh_kernels(monkeypatch):
    """Forgets built kernels and the fallback warning before and after the test."""
    build.forget_kernels()
    monkeypatch.setattr(native_module, "_warned", False)
    yield
    build.forget_kernels()


def float64_reference(q, k, v, grad):
    q, k, v = (t.detach().double().requires_grad_() for t in (q, k, v))
    out = vector_attention_reference(q, k, v)
    return [out, *torch.autograd.grad(out, (q, k, v), grad.double())]


def native_with_gradients(q, k, v, grad):
    q, k, v = (t.detach().requires_grad_() for t in (q, k, v))
    out = native_vector_attention(q, k, v)
    return [out, *torch.autograd.grad(out, (q, k, v), grad)]


def inputs(batch, n, m, c, scale, seed=0):
    generator = torch.Generator().manual_seed(seed)
    q = scale * torch.randn(batch, n, c, generator=generator)
    k = scale * torch.randn(batch, m, c, generator=generator)
    v = torch.randn(batch, m, c, generator=generator)
    grad = torch.randn(batch, n, c, generator=generator)
    return q, k, v, grad


@needs_compiler
@pytest.mark.parametrize("batch,n,m,c,scale", [
    (2, 24, 20, 12, 1.0),   # lengths that are not multiples of the 8-float vectors
    (1, 64, 64, 16, 0.5),
    (3, 5, 40, 3, 2.0),     # fewer queries than keys
    (1, 1, 1, 1, 1.0),
    (2, 16, 24, 4, 12.0),   # logits spanning hundreds: the clamped exponential
])
def test_native_equals_float64_formula(batch, n, m, c, scale):
    q, k, v, grad = inputs(batch, n, m, c, scale)
    got = native_with_gradients(q, k, v, grad)
    want = float64_reference(q, k, v, grad)
    for name, a, b in zip(("output", "dq", "dk", "dv"), got, want):
        assert a.dtype == torch.float32 and a.shape == b.shape
        # Within 1e-5 of the tensor's largest value (gradients grow with the logits' scale).
        assert (a.double() - b).abs().max() <= 1e-5 * max(1.0, b.abs().max().item()), name


@needs_compiler
def test_native_at_paper_shape_equals_formula_within_1e_5():
    # The res5 module's attention: N = M = 8 tokens x 64 frames, C = 432.
    q, k, v, grad = inputs(1, 512, 512, 432, 0.5)
    got = native_with_gradients(q, k, v, grad)
    want = float64_reference(q, k, v, grad)
    assert max((a.double() - b).abs().max().item() for a, b in zip(got, want)) < 1e-5


@needs_compiler
def test_native_is_exact_where_weights_underflow():
    # A row whose logits span far more than float32's exp range (e^-87): the far terms are 0.
    q = torch.tensor([[[40.0]]])
    k = torch.tensor([[[3.0], [0.0], [-3.0]]])
    v = torch.tensor([[[1.0], [2.0], [3.0]]])
    out = native_vector_attention(q, k, v)
    assert out.item() == 1.0


@needs_compiler
def test_native_does_not_depend_on_the_thread_count():
    q, k, v, grad = inputs(2, 33, 17, 9, 1.0)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = native_with_gradients(q, k, v, grad)
        torch.set_num_threads(max(2, threads))
        several = native_with_gradients(q, k, v, grad)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(one, several):
        assert torch.equal(a, b)


@needs_compiler
def test_auto_uses_native_for_float32_cpu_and_pytorch_otherwise(monkeypatch):
    calls = []
    real = native_module.native_vector_attention
    monkeypatch.setattr(native_module, "native_vector_attention",
                        lambda *args: calls.append(args[0].dtype) or real(*args))
    q, k, v, _ = inputs(1, 6, 6, 2, 1.0)
    vector_attention(q, k, v)
    vector_attention(q.double(), k.double(), v.double())
    vector_attention(q, k, v, kernel="sdpa")
    assert calls == [torch.float32]


@needs_compiler
def test_native_gradients_cannot_be_differentiated_again():
    q, k, v, _ = (t.requires_grad_() for t in inputs(1, 4, 4, 2, 1.0))
    out = native_vector_attention(q, k, v)
    (dq,) = torch.autograd.grad(out.square().sum(), q, create_graph=True)
    with pytest.raises(RuntimeError, match="no autograd formula"):
        dq.sum().backward()


def test_native_rejects_other_dtypes_and_empty_inputs():
    q, k, v, _ = inputs(1, 4, 4, 2, 1.0)
    with pytest.raises(ValueError, match="float32 CPU tensors"):
        native_vector_attention(q.double(), k.double(), v.double())
    with pytest.raises(ValueError, match="N, M >= 1"):
        native_vector_attention(q, k[:, :0], v[:, :0])


@needs_compiler
def test_kernel_is_built_once_into_the_cache(tmp_path, monkeypatch, fresh_kernels):
    monkeypatch.setenv("VIDEOTL_CACHE_DIR", str(tmp_path))
    assert build.load_kernel("vector_attention").library is not None
    (library,) = tmp_path.glob("vector_attention-*/vector_attention.so")
    built = library.stat().st_mtime_ns
    build.forget_kernels()
    assert build.load_kernel("vector_attention").library is not None
    assert library.stat().st_mtime_ns == built
    assert sorted(p.name for p in library.parent.iterdir()) == ["vector_attention.so"]


@pytest.mark.parametrize("setting,compiler,reason", [
    ("0", None, "turned off by VIDEOTL_NATIVE_KERNELS"),
    ("1", "no-such-compiler-here", "no C compiler 'no-such-compiler-here' found"),
    ("1", "false", "building vector_attention.c with false failed"),
])
def test_without_the_kernel_auto_falls_back_with_a_warning(
        setting, compiler, reason, tmp_path, monkeypatch, fresh_kernels):
    monkeypatch.setenv("VIDEOTL_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("VIDEOTL_NATIVE_KERNELS", setting)
    if compiler:
        # `false` (coreutils) exits 1 like a compiler that fails; a system without it has no
        # stand-in for that case, and the other two cases still cover the fallback.
        if compiler == "false" and shutil.which("false") is None:
            pytest.skip("no 'false' program to stand in for a failing compiler")
        monkeypatch.setenv("CC", compiler)
    q, k, v, grad = inputs(2, 10, 12, 3, 1.0)
    with pytest.warns(RuntimeWarning, match=reason):
        out = vector_attention(q, k, v)
    torch.testing.assert_close(out, vector_attention_reference(q, k, v), atol=1e-5, rtol=1e-5)
    with pytest.raises(RuntimeError, match=reason):
        native_vector_attention(q, k, v)
    assert not list(tmp_path.rglob("*.so")) and not list(tmp_path.rglob(".vector_attention*"))
