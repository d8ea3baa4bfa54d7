"""The prepared plan of a steady step (descend.optim.plan) against torch.optim, with the
hyperparameter changes it must absorb or refuse, and the kernel rewrite it relies on."""

from __future__ import annotations

import copy
import math

import numpy
import pytest
import torch
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)

import descend
from descend.optim import compiled, flat, kernel_calls, kernel_source, plan
from tests.optim.backends import Prepared
from tests.optim.test_fast_path import _grad_lives_in, _lockstep, _loss, _params


@pytest.fixture
def prepared(monkeypatch: pytest.MonkeyPatch) -> Prepared:
    """Every group takes the fast path; the (6, 5) and (3, 2, 2) parameters are pieces."""
    counter = Prepared()
    monkeypatch.setattr(compiled, "BACKEND", counter)
    monkeypatch.setattr(flat, "MIN_NUMEL", 0)
    monkeypatch.setattr(flat, "PIECE_NUMEL", 10)
    monkeypatch.setattr(compiled, "_LOGGED", set())
    return counter


def _pair(make_ours, make_theirs):
    params = _params()
    ref = [p.detach().clone().requires_grad_() for p in params]
    return params, make_ours(params), ref, make_theirs(ref)


def _close(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y)


def test_the_plan_absorbs_scheduled_values_and_is_rebuilt_for_new_constants(
    prepared, monkeypatch
) -> None:
    params, ours, ref, theirs = _pair(
        lambda p: descend.Adam(p, lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)
    )
    runs: list[int] = []
    run = plan.StepPlan.run
    monkeypatch.setattr(plan.StepPlan, "run", lambda self, c: runs.append(1) or run(self, c))

    def steps(n: int, **changes: object) -> None:
        for o in (ours, theirs):
            o.param_groups[0].update(changes)
        _lockstep([(params, ours), (ref, theirs)], n)

    steps(2)
    first = ours._flat[0].plan
    assert first is not None and first._float is not None
    # lr and beta1 change every step (as OneCycleLR does): written into the plan's
    # buffer; the same plan, no compile.
    for t in range(4):
        steps(1, lr=0.01 / (1 + t), betas=(0.9 - 0.05 * t, 0.999))
    assert ours._flat[0].plan is first and len(runs) == 4 and prepared.frame_count == 1
    _close(params, ref)
    # A constant of the compiled graph (eps): one step off the plan, which compiles, and
    # a new plan from the next.
    steps(3, eps=1e-4)
    assert ours._flat[0].plan is not first and len(runs) == 6 and prepared.frame_count == 2
    _close(params, ref)
    # An integer lr is a scheduled number like a float (both steps on the plan); betas
    # as a list and a key the plan has not seen are refused (one step through dynamo,
    # then a new plan). The steps are torch's throughout.
    for change, planned in [({"lr": 0}, 2), ({"betas": [0.8, 0.999]}, 1), ({"extra": 1}, 1)]:
        before = len(runs)
        steps(2, **change)
        assert len(runs) == before + planned, change
        _close(params, ref)


def test_a_failing_float_prologue_falls_back_to_tensors(prepared, monkeypatch) -> None:
    params, ours, ref, theirs = _pair(
        lambda p: descend.Adam(p, lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)
    )
    _lockstep([(params, ours), (ref, theirs)], 2)
    steady = ours._flat[0].plan

    class Failing(torch.nn.Module):
        def forward(self, *args: object) -> object:
            raise ZeroDivisionError  # as 1.0 / 0.0 does, where torch gives inf

    monkeypatch.setattr(steady, "_float", Failing())
    tensors: list[int] = []
    prologue = steady._hoisted.prologue
    monkeypatch.setattr(steady._hoisted, "prologue", lambda *a: tensors.append(1) or prologue(*a))
    _lockstep([(params, ours), (ref, theirs)], 3)
    assert len(tensors) == 3
    _close(params, ref)


def test_float_prologue_matches_tensors_or_declines() -> None:
    def graph(fn, *example: torch.Tensor) -> torch.fx.GraphModule:
        gm = torch.fx.symbolic_trace(fn)
        for node, value in zip(
            (n for n in gm.graph.nodes if n.op == "placeholder"), example, strict=True
        ):
            node.meta["example_value"] = value
        out = fn(*example)
        for node, value in zip(gm.graph.output_node().args[0], out, strict=True):
            node.meta["example_value"] = value
        return gm

    x = torch.tensor(0.999, dtype=torch.float64)
    t = torch.tensor(7.0, dtype=torch.float64)
    bias = graph(lambda b, s: (torch.reciprocal(1 - b**s) ** 0.5, -torch.sqrt(b) / s), x, t)
    floats = plan.float_prologue(bias)
    assert floats is not None
    assert [float(v) for v in bias(x, t)] == pytest.approx(list(floats(0.999, 7.0)), rel=1e-15)
    # An op without a float counterpart here, and a float16 result: the tensors it is.
    assert plan.float_prologue(graph(lambda b: (torch.sin(b),), x)) is None
    assert plan.float_prologue(graph(lambda b: (b * 2,), x.half())) is None
    # Comparisons, selections and float32 values (rounded as float32 tensors round).
    cond = graph(lambda b: ((b.abs() >= 0.5), torch.where(b >= 0.5, b, -b).to(torch.float32)), x)
    floats = plan.float_prologue(cond)
    assert floats is not None and floats(0.999) == (True, float(numpy.float32(0.999)))
    # A clipping coefficient: a norm of a stack, a clamp with keyword bounds.
    clip = graph(
        lambda n: (
            torch.clamp(2.0 / (torch.linalg.vector_norm(torch.stack([n, n])) + 1e-6), max=1.0),
        ),
        t,
    )
    floats = plan.float_prologue(clip)
    assert floats is not None
    assert floats(7.0)[0] == pytest.approx(clip(t)[0].item(), rel=1e-15)
    assert floats(0.1)[0] == 1.0


def test_a_non_contiguous_piece_gradient_takes_the_slow_path(prepared, monkeypatch) -> None:
    params, ours, ref, theirs = _pair(
        lambda p: descend.SGD(p, lr=0.01, momentum=0.9),
        lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
    )
    _lockstep([(params, ours), (ref, theirs)], 3)
    assert ours._flat[0].plan is not None
    runs: list[int] = []
    run = plan.StepPlan.run
    monkeypatch.setattr(plan.StepPlan, "run", lambda self, c: runs.append(1) or run(self, c))
    for ps, o in [(params, ours), (ref, theirs)]:
        o.zero_grad()
        _loss(ps).backward()
        ps[0].grad = ps[0].grad.t().contiguous().t()  # same values, transposed strides
        o.step()
    assert runs == [] and not params[0].grad.is_contiguous()
    _close(params, ref)
    _lockstep([(params, ours), (ref, theirs)], 2)
    assert len(runs) == 2
    _close(params, ref)


def test_tail_gradients_kept_across_steps_become_views(prepared) -> None:
    # Fresh tail gradients are copied into the buffer and left where they are; gradients
    # kept from one step to the next (assigned once, no zero_grad) become views of the
    # buffer, so that later steps copy nothing.
    params, ours, ref, theirs = _pair(
        lambda p: descend.Adam(p, lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)
    )
    _lockstep([(params, ours), (ref, theirs)], 2)
    tail = ours._flat[0].tail_params
    assert tail == params[1:3] and not any(_grad_lives_in(ours, p) for p in tail)
    grads = [torch.randn_like(p) for p in params]
    for ps in (params, ref):
        for p, g in zip(ps, grads, strict=True):
            p.grad = g.clone()
    ours.step()
    theirs.step()
    assert not any(_grad_lives_in(ours, p) for p in tail)
    for _ in range(2):
        ours.step()
        theirs.step()
    assert all(_grad_lives_in(ours, p) for p in tail)
    _close(params, ref)


def test_state_dict_round_trip_through_the_plan(prepared) -> None:
    params, ours, ref, theirs = _pair(
        lambda p: descend.AdamW(p, lr=0.01), lambda p: torch.optim.AdamW(p, lr=0.01)
    )
    _lockstep([(params, ours), (ref, theirs)], 4)
    # The step counts the plan advances are the state dict's, readable by torch.
    state = ours.state_dict()
    assert [float(s["step"]) for s in state["state"].values()] == [4.0] * 4
    theirs.load_state_dict(copy.deepcopy(state))
    _lockstep([(params, ours), (ref, theirs)], 2)
    _close(params, ref)


KERNEL = """#include <torch/csrc/inductor/cpp_prefix.h>
extern "C"  void  kernel(const float* in_ptr0,
                       const double* in_ptr1,
                       const float* in_ptr2,
                       const float* in_ptr3,
                       float* out_ptr0,
                       const int64_t ks0)
{
    for(int64_t x0=0; x0<ks0; x0+=16)
    {
        auto tmp0 = in_ptr1[static_cast<int64_t>(0L)];
        auto tmp1 = in_ptr2[static_cast<int64_t>(0L)];
        auto tmp2 = in_ptr3[static_cast<int64_t>(x0)];
        out_ptr0[x0] = in_ptr0[x0] * tmp0 * tmp1 * tmp2;
    }
}
"""


def test_with_call_table_adds_a_loop_calling_the_kernel_once_per_row() -> None:
    # The kernel's name is still Inductor's placeholder when the source is adjusted.
    src = KERNEL.replace("void  kernel(", "void  Placeholder.KERNEL_NAME(")
    out = kernel_source.with_call_table(src)
    assert out.startswith(src)
    added = out[len(src) :]
    assert (
        'extern "C" void descend_kernel_calls(const int64_t* table, const int64_t calls)' in added
    )
    assert "table += 6" in added  # six arguments per row
    assert (
        "Placeholder.KERNEL_NAME(reinterpret_cast<const float*>(table[0]), "
        "reinterpret_cast<const double*>(table[1]), reinterpret_cast<const float*>(table[2]), "
        "reinterpret_cast<const float*>(table[3]), reinterpret_cast<float*>(table[4]), "
        "table[5]);"
    ) in added
    # A value that is neither a pointer nor a 64-bit integer: no table.
    by_value = src.replace("const int64_t ks0", "const float scale")
    assert kernel_source.with_call_table(by_value) == by_value
    assert kernel_source.with_call_table("no kernel here") == "no kernel here"


CALL = """
    def call(self, args):
        arg0_1, arg1_1, arg2_1, arg3_1 = args
        args.clear()
        s0 = arg1_1
        cpp_fused_0(arg2_1, arg0_1, arg2_1, s0)
        del arg2_1
        return ()
"""


def test_call_layout_reads_inductors_single_kernel_call() -> None:
    assert kernel_calls.call_layout(CALL) == ("cpp_fused_0", [2, 0, 2, 1], set())
    # A length read off a 1-d tensor instead of passed as an argument.
    measured = CALL.replace(
        "s0 = arg1_1", "arg3_1_size = arg3_1.size()\n        s7 = arg3_1_size[0]\n        s0 = s7"
    )
    assert kernel_calls.call_layout(measured) == ("cpp_fused_0", [2, 0, 2, 3], {3})
    # Anything else is refused: a buffer, a second kernel, a view, a returned value.
    for other in [
        CALL.replace("s0 = arg1_1", "buf0 = empty_strided_cpu((2,), (1,), torch.float32)"),
        CALL.replace("del arg2_1", "cpp_fused_1(arg2_1, s0)"),
        CALL.replace("cpp_fused_0(arg2_1,", "cpp_fused_0(reinterpret_tensor(arg2_1),"),
        CALL.replace("return ()", "return (arg2_1,)"),
        CALL.replace("args.clear()", "pass"),
        measured.replace("arg3_1_size[0]", "arg3_1_size[1]"),
    ]:
        assert kernel_calls.call_layout(other) is None, other


VECTOR_LOOP = """
            for(int64_t x0=static_cast<int64_t>(0L); x0<static_cast<int64_t>(ks0); x0+=static_cast<int64_t>(16L))
            {
                if(C10_LIKELY(x0 < static_cast<int64_t>(16L*(c10::div_floor_integer(static_cast<int64_t>(ks0), static_cast<int64_t>(16L))))))
                {
                    auto tmp0 = at::vec::Vectorized<float>::loadu(out_ptr0 + static_cast<int64_t>(x0), static_cast<int64_t>(16));
                    auto tmp1 = at::vec::Vectorized<float>::loadu(in_ptr1 + static_cast<int64_t>(x0), static_cast<int64_t>(16));
                    auto tmp2 = in_ptr2_value;
                    (tmp0 + tmp1).store(out_ptr0 + static_cast<int64_t>(x0));
                }
                if(C10_UNLIKELY(x0 >= static_cast<int64_t>(16L*(c10::div_floor_integer(static_cast<int64_t>(ks0), static_cast<int64_t>(16L)))) && x0 < static_cast<int64_t>(ks0)))
                {
                    auto tmp0 = at::vec::Vectorized<float>::loadu(out_ptr0 + static_cast<int64_t>(x0), static_cast<int64_t>(ks0 + (-16L)*(c10::div_floor_integer(static_cast<int64_t>(ks0), static_cast<int64_t>(16L)))));
                }
            }
"""


def test_prefetch_vector_loads_asks_for_each_full_width_stream_ahead() -> None:
    out = kernel_source.prefetch_vector_loads(KERNEL.splitlines()[0] + VECTOR_LOOP, 4096)
    # After the #include: GCC's builtin where the compiler has it, nothing where it does
    # not (MSVC).
    head = "#if defined(__GNUC__) || defined(__clang__)\n#define DESCEND_PREFETCH(address) "
    assert out.startswith(KERNEL.splitlines()[0] + "\n" + head + "__builtin_prefetch(address)\n")
    out = out[out.index("#endif\n") + len("#endif\n") - 1 :]
    lines = out.splitlines()
    fetches = [i for i, line in enumerate(lines) if "DESCEND_PREFETCH" in line]
    # One prefetch right before each of the two full-width loads, at their indentation;
    # the tail's load (a computed count) and the scalar read get none.
    assert [lines[i + 1].split("loadu(")[1].split(" ")[0] for i in fetches] == [
        "out_ptr0",
        "in_ptr1",
    ]
    assert lines[fetches[1]] == (
        "                    DESCEND_PREFETCH(reinterpret_cast<const void*>("
        "reinterpret_cast<uintptr_t>(in_ptr1 + x0) + 4096));"
    )
    assert out.replace(lines[fetches[0]] + "\n", "").replace(lines[fetches[1]] + "\n", "") == (
        VECTOR_LOOP
    )
    assert kernel_source.prefetch_vector_loads(KERNEL) == KERNEL  # a scalar loop: as it was


def test_hoist_scalar_loads_moves_only_reads_no_store_can_change() -> None:
    out = kernel_source.hoist_scalar_loads(KERNEL)
    # The float64 scalar is read once before the loop; the float32 one (an output is
    # float32: it could alias) and the vector stay as they were.
    assert "const double in_ptr1_value = in_ptr1[0];" in out
    assert "auto tmp0 = in_ptr1_value;" in out
    assert "in_ptr2[static_cast<int64_t>(0L)]" in out and "in_ptr2_value" not in out
    assert "in_ptr3[static_cast<int64_t>(x0)]" in out and "in_ptr3_value" not in out
    assert out.index("in_ptr1_value =") < out.index("for(")
    # A float64 output: now the float32 scalar is the one no store can change.
    doubles = kernel_source.hoist_scalar_loads(
        KERNEL.replace("float* out_ptr0", "double* out_ptr0")
    )
    assert "in_ptr1_value" not in doubles and "auto tmp1 = in_ptr2_value;" in doubles
    assert kernel_source.hoist_scalar_loads("no kernel here") == "no kernel here"


def test_step_hooks_run_as_torch_and_the_profiler_sees_the_step() -> None:
    params = _params()
    opt = descend.Adam(params, lr=0.01)
    assert type(opt).step.hooked  # torch leaves descend's wrapper in place
    calls: list[str] = []
    handles = [
        register_optimizer_step_pre_hook(lambda o, a, k: calls.append("global pre")),
        opt.register_step_pre_hook(lambda o, a, k: calls.append("pre")),
        opt.register_step_post_hook(lambda o, a, k: calls.append("post")),
        register_optimizer_step_post_hook(lambda o, a, k: calls.append("global post")),
    ]
    closure = lambda: _loss(params)
    # A pre-hook may replace the arguments: here it supplies the closure.
    opt.register_step_pre_hook(lambda o, a, k: ((closure,), k) if not a else None)
    try:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            loss = opt.step()
    finally:
        for h in handles:
            h.remove()
    assert calls == ["global pre", "pre", "post", "global post"]
    assert math.isfinite(loss.item())
    names = {e.name for e in prof.events()}
    assert "Optimizer.step#Adam.step" in names
    with pytest.raises(RuntimeError, match="must return None or a tuple"):
        opt.register_step_pre_hook(lambda o, a, k: 1)
        opt.step(lambda: _loss(params))


def test_step_runs_without_grad_and_restores_the_mode_it_found() -> None:
    params = _params()
    opt = descend.SGD(params, lr=0.1)
    seen: list[bool] = []

    def closure() -> torch.Tensor:
        seen.append(torch.is_grad_enabled())
        opt.zero_grad()
        loss = _loss(params)
        loss.backward()
        return loss

    with torch.enable_grad():  # a training loop's mode
        # The closure runs with grad on; the update (in place on leaves that require
        # grad, which autograd refuses with grad on) runs with it off.
        opt.step(closure)
        assert torch.is_grad_enabled()
    assert seen == [True] and all(p.grad is not None and p.grad_fn is None for p in params)
    with torch.no_grad():
        opt.step()
        assert not torch.is_grad_enabled()
    # An error inside the step leaves the mode as it was.
    with pytest.raises(ZeroDivisionError):
        opt.step(lambda: 1 / 0)
    assert torch.is_grad_enabled()


def test_steady_check_does_not_compare_tensors_with_none(prepared, monkeypatch) -> None:
    # ``None in grads`` would call Tensor.__eq__ on every gradient (~10 us each).
    params, ours, ref, theirs = _pair(
        lambda p: descend.Adam(p, lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)
    )
    _lockstep([(params, ours), (ref, theirs)], 2)
    compared: list[int] = []
    eq = torch.Tensor.__eq__
    monkeypatch.setattr(torch.Tensor, "__eq__", lambda a, b: compared.append(1) or eq(a, b))
    _lockstep([(params, ours)], 1)
    assert compared == []
