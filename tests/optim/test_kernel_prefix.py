"""The slim C++ prelude of the fast path's kernels (descend.optim.kernel_prefix): which
kernels get it, and that each of its operations gives torch's bits, for AVX-512 and AVX2."""

from __future__ import annotations

import ctypes
import inspect
import pathlib
import platform

import pytest
import torch

import descend
from descend.optim import (
    backend,
    chain,
    clip_by_value,
    compiled,
    flat,
    kernel_source,
    scale_by_lr,
    scale_by_rms,
    sign,
    trace,
)
from descend.optim.kernel_prefix import PREFIX, with_slim_prefix
from tests.optim.test_fast_path import _lockstep, _params

# The shape of an Inductor kernel for an optimizer (abridged from a generated Adam).
KERNEL = """#include <torch/csrc/inductor/cpp_prefix.h>
extern "C"  void  Placeholder.KERNEL_NAME(const float* in_ptr0,
                       const bool* in_ptr1,
                       const double* in_ptr2,
                       float* out_ptr0,
                       const int64_t ks0)
{
    const bool in_ptr1_value = in_ptr1[0];
    const double in_ptr2_value = in_ptr2[0];
    std::atomic<int> inductor_cpu_integer_div_error{0};
    inductor_cpu_integer_div_error_flag = &inductor_cpu_integer_div_error;
    #pragma omp parallel
    {
        int tid = omp_get_thread_num();
        {
            #pragma omp for
            for(int64_t x0=static_cast<int64_t>(0L); x0<static_cast<int64_t>(ks0); x0+=static_cast<int64_t>(16L))
            {
                if(C10_LIKELY(x0 < static_cast<int64_t>(16L*(c10::div_floor_integer(static_cast<int64_t>(ks0), static_cast<int64_t>(16L))))))
                {
                    auto tmp0 = at::vec::Vectorized<float>::loadu(out_ptr0 + static_cast<int64_t>(x0), static_cast<int64_t>(16));
                    auto tmp1 = at::vec::Vectorized<float>::loadu(in_ptr0 + static_cast<int64_t>(x0), static_cast<int64_t>(16));
                    auto tmp2 = in_ptr2_value;
                    auto tmp3 = c10::convert<float>(tmp2);
                    auto tmp4 = at::vec::VecMask<float,1>::from(in_ptr1_value);
                    auto tmp5 = decltype(tmp1)::blendv(tmp0, tmp1, tmp4.template cast<float,1>());
                    auto tmp6 = at::vec::maximum(tmp5.sqrt(), at::vec::Vectorized<float>(tmp3)) * static_cast<float>(1e-08);
                    tmp6.store(out_ptr0 + static_cast<int64_t>(x0));
                }
            }
        }
    }
    inductor_cpu_integer_div_error_flag = nullptr;
    inductor_cpu_throw_if_integer_div_error(inductor_cpu_integer_div_error);
}
"""


def test_the_slim_prefix_replaces_the_prelude_only_where_it_has_all_the_kernel_uses() -> None:
    out = with_slim_prefix(KERNEL)
    assert out.startswith(PREFIX) and "#include <torch/csrc/inductor/cpp_prefix.h>" not in out
    # Inductor's integer-division flag (std::atomic) goes with the prelude.
    assert "inductor_cpu_integer_div_error" not in out and "std::" not in out
    body = KERNEL.split("\n", 1)[1].splitlines(keepends=True)
    assert out == PREFIX + "".join(x for x in body if "inductor_cpu_integer_div" not in x)
    # Anything PREFIX does not define keeps Inductor's prelude.
    for other in [
        KERNEL.replace("Vectorized<float>::loadu(in_ptr0", "Vectorized<double>::loadu(in_ptr0"),
        KERNEL.replace("tmp5.sqrt()", "tmp5.exp()"),
        KERNEL.replace("c10::convert<float>(tmp2)", "std::sqrt(tmp2)"),
        KERNEL.replace("#pragma omp for", "#pragma omp for collapse(2)"),
        KERNEL.replace("VecMask<float,1>::from", "VecMask<float,2>::from"),
        KERNEL.replace("at::vec::maximum(", "at::vec::clamp_min("),
        KERNEL.replace(
            "auto tmp2 = in_ptr2_value;",
            "auto tmp2 = in_ptr2_value; inductor_cpu_integer_div_error_flag->store(1);",
        ),
        KERNEL.replace("#include <torch/csrc/inductor/cpp_prefix.h>", "#include <cstdio>"),
    ]:
        assert with_slim_prefix(other) == other
    # The kernel without its prelude line is left alone too.
    assert with_slim_prefix(KERNEL.split("\n", 1)[1]) == KERNEL.split("\n", 1)[1]


# Every operation PREFIX defines, over n floats, with the tail loaded and stored by count;
# result k goes to out[k * stride:].
OPS = r"""
using V = at::vec::Vectorized<float>;
extern "C" int64_t width() { return V::size(); }
extern "C" void ops(const float* a, const float* b, float* out, int64_t n, int64_t stride)
{
    for (int64_t i = 0; i < n; i += V::size()) {
        const int64_t count = n - i < V::size() ? n - i : V::size();
        const auto x = V::loadu(a + i, count);
        const auto y = V::loadu(b + i, count);
        const auto yes = at::vec::VecMask<float, 1>::from(true).template cast<float, 1>();
        const auto no = at::vec::VecMask<float, 1>::from(false).template cast<float, 1>();
        const V results[] = {
            x + y, x - y, x * y, x / y, x.sqrt(), x.neg(),
            at::vec::maximum(x, y), at::vec::minimum(x, y),
            V::blendv(x, y, x < y), V::blendv(x, y, x <= y), V::blendv(x, y, x > y),
            V::blendv(x, y, x >= y), V::blendv(x, y, x == y), V::blendv(x, y, x != y),
            V::blendv(x, y, yes), V::blendv(x, y, no),
            V::blendv(x, y, (x < y) & (x > y)), V::blendv(x, y, (x < y) | (x > y)),
            V::blendv(x, y, (x < y) ^ (x <= y)),
            V::blendv(x, y, at::vec::VecMask<float, 1>::from(x).template cast<float, 1>()),
            V(c10::convert<float>(static_cast<double>(c10::div_floor_integer(-7, 2)))),
            V(c10::convert<float>(static_cast<double>(c10::div_floor_integer(7, 0)))),
        };
        for (int64_t k = 0; k < int64_t(sizeof(results) / sizeof(V)); ++k)
            results[k].store(out + k * stride + i, count);
    }
}
"""


def _expected(a: torch.Tensor, b: torch.Tensor) -> list[torch.Tensor]:
    full = torch.full_like
    return [
        a + b,
        a - b,
        a * b,
        a / b,
        a.sqrt(),
        -a,
        torch.maximum(a, b),
        torch.minimum(a, b),
        torch.where(a < b, b, a),
        torch.where(a <= b, b, a),
        torch.where(a > b, b, a),
        torch.where(a >= b, b, a),
        torch.where(a == b, b, a),
        torch.where(a != b, b, a),
        b,
        a,
        a,
        torch.where((a < b) | (a > b), b, a),
        torch.where(a == b, b, a),
        torch.where(a != 0, b, a),
        full(a, -4.0),
        full(a, 0.0),
    ]


def _isas() -> list:
    if platform.machine() not in ("x86_64", "AMD64"):
        return []
    return [
        pytest.param(
            "VecAVX512",
            16,
            marks=pytest.mark.skipif(
                not torch.cpu._is_avx512_supported(), reason="the CPU has no AVX-512"
            ),
        ),
        pytest.param(
            "VecAVX2",
            8,
            marks=pytest.mark.skipif(not torch.cpu._is_avx2_supported(), reason="no AVX2"),
        ),
    ]


@pytest.mark.parametrize(("isa", "width"), _isas())
def test_each_operation_of_the_prefix_gives_torchs_bits(monkeypatch, isa, width) -> None:
    from torch._inductor import codecache, cpu_vec_isa

    monkeypatch.setattr(
        cpu_vec_isa, "valid_vec_isa_list", lambda: [backend.trusted(getattr(cpu_vec_isa, isa))]
    )
    lib = codecache.CppCodeCache.load(PREFIX + OPS)
    lib.width.restype = ctypes.c_int64
    assert lib.width() == width
    special = [0.0, -0.0, 1.0, -1.0, 2.5, -3.0, float("inf"), -float("inf"), float("nan"), 1e-40]
    a = torch.tensor([x for x in special for _ in special], dtype=torch.float32)
    b = torch.tensor([y for _ in special for y in special], dtype=torch.float32)
    n, stride = a.numel(), a.numel() + 5  # 100 floats: the last call loads and stores 4
    expected = _expected(a, b)
    out = torch.full((len(expected) * stride,), 7.0)
    lib.ops(
        ctypes.c_void_p(a.data_ptr()),
        ctypes.c_void_p(b.data_ptr()),
        ctypes.c_void_p(out.data_ptr()),
        ctypes.c_int64(n),
        ctypes.c_int64(stride),
    )
    got = out.view(len(expected), stride)
    for k, want in enumerate(expected):
        # NaN where torch has NaN, and every other value bit for bit (the sign of zero,
        # the denormal).
        value, number = got[k, :n], ~want.isnan()
        assert torch.equal(value.isnan(), want.isnan()), k
        assert torch.equal(value[number].view(torch.int32), want[number].view(torch.int32)), k
        assert torch.equal(got[k, n:], torch.full((stride - n,), 7.0)), k  # past the count
    # A mask from a pointer (ATen reads a bool array there) is refused, not read as a flag.
    with pytest.raises(Exception, match="deleted"):
        codecache.CppCodeCache.load(
            PREFIX
            + 'extern "C" void f(const bool* p) { (void)at::vec::VecMask<float, 1>::from(p); }'
        )


def test_a_scalar_kernel_compiles_with_the_prefix_and_no_vector_isa(monkeypatch) -> None:
    # Inductor writes scalar loops when no vector ISA is chosen (cpp.simdlen set to one
    # the CPU lacks, say); such a kernel compiles without -D CPU_CAPABILITY_*.
    from torch._inductor import codecache, cpu_vec_isa

    monkeypatch.setattr(cpu_vec_isa, "valid_vec_isa_list", list)
    source = PREFIX + (
        'extern "C" int64_t floor_div(int64_t a, int64_t b)'
        " { return C10_LIKELY(b != 0) ? c10::div_floor_integer(a, b) : -99; }"
    )
    lib = codecache.CppCodeCache.load(source)
    lib.floor_div.restype = ctypes.c_int64
    results = [
        lib.floor_div(ctypes.c_int64(a), ctypes.c_int64(b))
        for a, b in [(-7, 2), (7, -2), (7, 2), (6, -3), (5, 0)]
    ]
    assert results == [-4, -4, 3, -2, -99]


@pytest.fixture
def uncached():
    """Dynamo and Inductor generate the kernel anew (Inductor's C++ build may still come
    from its on-disk cache), so that the test sees the source."""
    with torch._inductor.config.patch(fx_graph_cache=False):
        torch._dynamo.reset()
        yield
        torch._dynamo.reset()


@pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64") or not torch.cpu._is_avx2_supported(),
    reason="AVX2 kernels need an x86 CPU with AVX2",
)
def test_amsgrad_compiled_for_avx2_with_the_slim_prefix_matches_torch(
    monkeypatch, uncached
) -> None:
    # AMSGrad reads a flag (VecMask, blendv) and keeps a running maximum: the kernel uses
    # most of the prefix. Compiled for AVX2 (8 floats a vector) on whatever CPU runs this.
    from torch._inductor import cpu_vec_isa

    monkeypatch.setattr(backend, "_trusted_isa", lambda: backend.trusted(cpu_vec_isa.VecAVX2))
    monkeypatch.setattr(flat, "MIN_NUMEL", 0)
    monkeypatch.setattr(flat, "PIECE_NUMEL", 10)
    monkeypatch.setattr(compiled, "_LOGGED", set())
    params = _params()
    ref = [p.detach().clone().requires_grad_() for p in params]
    ours = descend.Adam(params, lr=0.01, amsgrad=True, weight_decay=0.1)
    theirs = torch.optim.Adam(ref, lr=0.01, amsgrad=True, weight_decay=0.1)
    _lockstep([(params, ours), (ref, theirs)], 4)
    plan = ours._flat[0].plan
    assert plan is not None
    source = pathlib.Path(inspect.getmodule(plan._entry).__file__).read_text()
    assert "descend: the part of Inductor's cpp_prefix.h" in source
    assert "x0+=static_cast<int64_t>(8L)" in source and "inductor/cpp_prefix.h>" not in source
    for a, b in zip(params, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


# One configuration per kind of kernel the built-in transforms make (every option of the
# named optimizers that changes the loop), each compiled by Inductor on this CPU.
CONFIGS = {
    "sgd, decay, maximize": lambda p, f: descend.SGD(
        p, lr=0.1, weight_decay=0.1, maximize=True, fused=f
    ),
    "momentum, dampening": lambda p, f: descend.SGD(
        p, lr=0.1, momentum=0.9, dampening=0.1, fused=f
    ),
    "nesterov": lambda p, f: descend.SGD(p, lr=0.1, momentum=0.9, nesterov=True, fused=f),
    "adagrad, every option": lambda p, f: descend.Adagrad(
        p, lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1, fused=f
    ),
    "centered rmsprop, momentum": lambda p, f: descend.Optimizer(
        p,
        chain(scale_by_rms(), trace(), scale_by_lr()),
        compile=f,
        lr=0.01,
        alpha=0.99,
        eps=1e-8,
        momentum=0.9,
        centered=True,
    ),
    "clip by value, sign": lambda p, f: descend.Optimizer(
        p, chain(clip_by_value(), sign(), scale_by_lr()), compile=f, lr=0.01, clip_value=0.5
    ),
}


@pytest.mark.skipif(
    backend._trusted_isa() is None, reason="the slim prelude is for x86 AVX2/AVX-512"
)
@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_kind_of_kernel_takes_the_slim_prefix_and_matches_eager(
    monkeypatch, uncached, name
) -> None:
    monkeypatch.setattr(flat, "MIN_NUMEL", 0)
    monkeypatch.setattr(compiled, "_LOGGED", set())
    slim: list[bool] = []
    adjust = kernel_source.with_slim_prefix
    monkeypatch.setattr(
        kernel_source, "with_slim_prefix", lambda s: slim.append(adjust(s) != s) or adjust(s)
    )

    def run(fused: bool) -> list[torch.Tensor]:
        g = torch.Generator().manual_seed(0)
        params = [torch.randn(n, generator=g).requires_grad_() for n in (1001, 7)]
        opt = CONFIGS[name](params, fused)
        for _ in range(3):
            for p in params:
                p.grad = torch.randn(p.shape, generator=g)
            opt.step()
        return params

    fast, eager = run(True), run(False)
    for a, b in zip(fast, eager, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert slim and all(slim)
