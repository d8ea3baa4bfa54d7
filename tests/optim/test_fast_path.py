"""The fast path (flat buffers, one compiled update per group) against the eager path and
torch.optim; no recompiles when hyperparameters are scheduled; parameters stay usable.

All but one test trace with a compile-counting backend (dynamo without Inductor), so they
check the flat buffers, the views and the compile count without paying for C++ compilation.
"""

from __future__ import annotations

import copy
import gc
import inspect
import logging
import pathlib
import warnings
import weakref

import pytest
import torch
import torch._dynamo.testing

import descend
from descend.optim import (
    add_decayed_weights,
    backend,
    chain,
    clip_by_global_norm,
    compiled,
    flat,
    scale_by_adam,
    scale_by_lr,
)
from tests.optim.backends import Prepared

CASES = {
    "SGD": {"lr": 0.01, "momentum": 0.9, "nesterov": True},
    "Adagrad": {"lr": 0.1, "lr_decay": 0.01},
    "RMSprop": {"lr": 0.01, "momentum": 0.5, "centered": True},
    "Adam": {"lr": 0.01, "amsgrad": True},
    "AdamW": {"lr": 0.01, "weight_decay": 0.1},
}


@pytest.fixture(params=["dynamo", "prepared"])
def counter(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> torch._dynamo.testing.CompileCounter:
    """Every group takes the fast path, compiled by a backend that counts compilations:
    dynamo's graph run as traced, or split as for Inductor and run through an entry point,
    which puts steady steps on the prepared plan (:class:`tests.optim.backends.Prepared`)."""
    backend = Prepared() if request.param == "prepared" else torch._dynamo.testing.CompileCounter()
    monkeypatch.setattr(compiled, "BACKEND", backend)
    monkeypatch.setattr(flat, "MIN_NUMEL", 0)
    monkeypatch.setattr(compiled, "_LOGGED", set())
    return backend


@pytest.fixture(params=["flat", "pieces"])
def layout(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both layouts of an elementwise chain: every parameter in the flat tail, or the
    (6, 5) and (3, 2, 2) parameters of :func:`_params` as pieces updated where they are."""
    if request.param == "pieces":
        monkeypatch.setattr(flat, "PIECE_NUMEL", 10)
    return request.param


def _storage(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def _params(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g).requires_grad_() for s in [(6, 5), (5,), (), (3, 2, 2)]]


def _loss(params: list[torch.Tensor]) -> torch.Tensor:
    return sum(((p - 0.3) ** 2 * (i + 1)).sum() + 0.05 * (p**4).sum() for i, p in enumerate(params))


def _run(make, steps: int = 25, skip_at: int | None = None) -> tuple[list[torch.Tensor], object]:
    """Steps under a scheduler that changes lr (and beta1/momentum: OneCycleLR) every step."""
    params = _params()
    opt = make(params)
    sched = (
        torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.02, total_steps=steps)
        if "momentum" in opt.defaults
        or "betas" in opt.defaults
        and not isinstance(opt, torch.optim.Adagrad)
        else torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1 / (1 + t))
    )
    for t in range(steps):
        opt.zero_grad(set_to_none=True)
        _loss(params).backward()
        if t == skip_at:
            params[1].grad = None  # a parameter without a gradient: that step runs eagerly
        opt.step()
        sched.step()
    return params, opt


@pytest.mark.parametrize("name", list(CASES))
def test_fast_path_matches_eager_and_torch_without_recompiling(
    name: str, counter, layout, monkeypatch
) -> None:
    fast, fast_opt = _run(lambda p: getattr(descend, name)(p, **CASES[name]))
    assert counter.frame_count == 1, "a scheduled hyperparameter must not trigger a recompile"
    if isinstance(counter, Prepared):
        # Steady steps ran on the prepared plan, its prologue on Python floats.
        plan = fast_opt._flat[0].plan
        assert plan is not None and plan._float is not None
    # The tail's parameters and state live in one buffer per key (their views share its
    # storage); each piece keeps storage of its own.
    key = next(k for k in fast_opt.state[fast[0]] if k != "step")
    pieces = [p for p in fast if p.numel() >= flat.PIECE_NUMEL]
    assert len(pieces) == (2 if layout == "pieces" else 0)
    for of in [lambda p: p, lambda p: fast_opt.state[p][key]]:
        storages = [_storage(of(p)) for p in fast if all(p is not q for q in pieces)]
        assert len(set(storages)) == 1
        assert len({*storages, *(_storage(of(p)) for p in pieces)}) == 1 + len(pieces)
    reference, _ = _run(lambda p: getattr(torch.optim, name)(p, **CASES[name]))
    monkeypatch.setattr(flat, "MIN_NUMEL", 1 << 60)
    eager, _ = _run(lambda p: getattr(descend, name)(p, **CASES[name]))
    for f, e, r in zip(fast, eager, reference, strict=True):
        torch.testing.assert_close(f, e)  # float32 rounding: rtol 1.3e-6, atol 1e-5
        torch.testing.assert_close(f, r)


def test_missing_gradient_falls_back_to_eager_exactly(counter, layout) -> None:
    fast, _ = _run(lambda p: descend.Adam(p, lr=0.01), skip_at=10)
    reference, _ = _run(lambda p: torch.optim.Adam(p, lr=0.01), skip_at=10)
    for f, r in zip(fast, reference, strict=True):
        torch.testing.assert_close(f, r)
    assert counter.frame_count == 1


def test_composed_chain_with_schedule_compiles_once(counter, monkeypatch) -> None:
    # Clipping by the global norm next to pieces: the norm is taken once per step over
    # every call's gradient (the tail's buffer and each piece's), so the result is
    # torch's clip_grad_norm_ over all parameters, not a clip per piece.
    monkeypatch.setattr(flat, "PIECE_NUMEL", 10)

    def make(params):
        return descend.Optimizer(
            params,
            chain(clip_by_global_norm(), scale_by_adam(), add_decayed_weights(), scale_by_lr()),
            lr=lambda t: 0.01 / (1 + t),
            max_norm=1.0,
        )

    params = _params()
    opt = make(params)
    for _ in range(10):
        opt.zero_grad()
        _loss(params).backward()
        opt.step()
    assert counter.frame_count == 1
    # Two pieces where they were, the two small tensors in one buffer.
    assert len({_storage(p) for p in params}) == 3
    assert _storage(params[1]) == _storage(params[2])
    if isinstance(counter, Prepared):
        # One prologue per step for all calls, on Python numbers, with the plan's norm.
        plan = opt._flat[0].plan
        assert plan is not None and plan._float is not None and plan._hoisted.per_step
        assert plan._norm_slot is not None
    ref = _params()
    ref_opt = torch.optim.AdamW(ref, lr=0.01, weight_decay=0.01)
    for t in range(10):
        ref_opt.param_groups[0]["lr"] = 0.01 / (1 + t)
        ref_opt.zero_grad()
        _loss(ref).backward()
        # Every step clips (a norm of one piece alone would give other numbers).
        assert torch.nn.utils.clip_grad_norm_(ref, 1.0) > 2.0
        ref_opt.step()
    for a, b in zip(params, ref, strict=True):
        torch.testing.assert_close(a, b)


def test_clipping_next_to_pieces_takes_the_norm_of_every_gradient(counter, monkeypatch) -> None:
    # Plain clipped SGD (Adam would hide a wrong norm: it is nearly scale-invariant).
    monkeypatch.setattr(flat, "PIECE_NUMEL", 10)
    params, ref = _params(), _params()
    opt = descend.Optimizer(
        params, chain(clip_by_global_norm(), scale_by_lr()), lr=0.05, max_norm=1.0
    )
    ref_opt = torch.optim.SGD(ref, lr=0.05)
    for _ in range(6):
        for ps, o in [(params, opt), (ref, ref_opt)]:
            o.zero_grad()
            _loss(ps).backward()
            if o is ref_opt:
                assert torch.nn.utils.clip_grad_norm_(ref, 1.0) > 2.0  # it clips
            o.step()
    assert len({_storage(p) for p in params}) == 3  # two pieces and the tail
    for a, b in zip(params, ref, strict=True):
        torch.testing.assert_close(a, b)


def test_parameters_stay_usable_through_zero_grad_model_to_and_load_state_dict(
    counter, layout
) -> None:
    def model() -> torch.nn.Module:
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))

    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    ours, theirs = model(), model()
    opt, ref = (
        descend.Adam(ours.parameters(), lr=0.05),
        torch.optim.Adam(theirs.parameters(), lr=0.05),
    )

    def steps(n: int) -> None:
        for m, o in [(ours, opt), (theirs, ref)]:
            for _ in range(n):
                o.zero_grad(set_to_none=True)
                m(x).pow(2).mean().backward()
                o.step()

    steps(3)
    w = ours[0].weight  # 32 elements: moved into the buffer, or a piece where it was
    assert (_storage(w) == _storage(ours[2].bias)) == (layout == "flat")
    opt.zero_grad(set_to_none=True)
    assert w.grad is None
    # model.to() through another dtype gives every parameter new storage: the optimizer
    # must notice and rebuild its buffers instead of updating the old ones.
    ours.to(torch.float64).to(torch.float32)
    theirs.to(torch.float64).to(torch.float32)
    steps(3)
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    # A state dict from torch.optim replaces the state: it is flattened again and continues.
    opt.load_state_dict(copy.deepcopy(ref.state_dict()))  # a copy, as after torch.save/load
    steps(3)
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert counter.frame_count == 1
    ours(x).sum().backward()
    assert all(p.grad is not None for p in ours.parameters())


def _grad_lives_in(opt: descend.Optimizer, p: torch.Tensor) -> bool:
    return p.grad.untyped_storage().data_ptr() == opt._flat[0].grad.untyped_storage().data_ptr()


def test_backward_writes_fresh_gradients_into_the_flat_buffer(counter) -> None:
    params, opt = _run(lambda p: descend.Adam(p, lr=0.01), steps=3)
    opt.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in params)
    _loss(params).backward()
    # The post-accumulate hook moved each fresh gradient into its slice, so step() copies
    # nothing; the values are autograd's.
    assert all(_grad_lives_in(opt, p) for p in params)
    expected = torch.autograd.grad(_loss(params), params)
    for p, g in zip(params, expected, strict=True):
        torch.testing.assert_close(p.grad, g, rtol=0, atol=0)
    # Accumulating a second backward adds in place, as torch does.
    _loss(params).backward()
    for p, g in zip(params, expected, strict=True):
        torch.testing.assert_close(p.grad, 2 * g)


def test_pieces_read_gradients_where_autograd_wrote_them(counter, monkeypatch) -> None:
    monkeypatch.setattr(flat, "PIECE_NUMEL", 10)
    params, opt = _run(lambda p: descend.Adam(p, lr=0.01), steps=3)
    ref = [p.detach().clone().requires_grad_() for p in params]
    ref_opt = torch.optim.Adam(ref, lr=0.01)
    ref_opt.load_state_dict(copy.deepcopy(opt.state_dict()))
    tail = params[1:3]  # params[0] and params[3] are pieces
    assert opt._flat[0].grad.numel() == 6  # a gradient buffer for the tail only
    slow: list[int] = []
    step_group = opt._step_group
    monkeypatch.setattr(opt, "_step_group", lambda *a: slow.append(1) or step_group(*a))
    for _ in range(2):
        for ps, o in [(params, opt), (ref, ref_opt)]:
            o.zero_grad(set_to_none=True)
            _loss(ps).backward()
        grads = [p.grad for p in params]
        # No hooks next to pieces: the tail's few small gradients are gathered by step().
        assert not any(_grad_lives_in(opt, p) for p in params)
        opt.step()
        ref_opt.step()
        # Every gradient is read, none moved: the tail's are copied into the buffer.
        assert all(p.grad is g for p, g in zip(params, grads, strict=True))
        assert not any(_grad_lives_in(opt, p) for p in tail)
        torch.testing.assert_close(
            opt._flat[0].grad, torch.cat([p.grad.reshape(-1) for p in tail]), rtol=0, atol=0
        )
    assert slow == [], "fresh gradients must not take the group off the steady path"
    for a, b in zip(params, ref, strict=True):
        torch.testing.assert_close(a, b)
    assert counter.frame_count == 1


def test_a_step_between_forward_and_backward_is_an_error_as_in_torch(counter, layout) -> None:
    params, opt = _run(lambda p: descend.Adam(p, lr=0.01), steps=2)
    loss = _loss(params)  # saves the parameters for backward
    opt.zero_grad(set_to_none=False)
    opt.step()  # changes them in place: each parameter's version counter must say so
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_a_tail_of_one_scalar_stays_on_the_pieces_graph(counter, monkeypatch) -> None:
    monkeypatch.setattr(flat, "PIECE_NUMEL", 5)  # every parameter but the 0-d one is a piece
    fast, opt = _run(lambda p: descend.Adam(p, lr=0.01), steps=5)
    reference, _ = _run(lambda p: torch.optim.Adam(p, lr=0.01), steps=5)
    assert opt._flat[0].tail_params == [fast[2]]
    assert counter.frame_count == 1  # a length-1 tail would compile a second graph
    for f, r in zip(fast, reference, strict=True):
        torch.testing.assert_close(f, r)


def test_gradient_hooks_leave_graphs_and_dropped_optimizers_alone(counter) -> None:
    params, opt = _run(lambda p: descend.Adam(p, lr=0.01), steps=2)
    opt.zero_grad(set_to_none=True)
    with warnings.catch_warnings():  # torch warns that create_graph makes a reference cycle
        warnings.simplefilter("ignore")
        _loss(params).backward(create_graph=True)  # a gradient with a graph is not copied
    assert all(p.grad.requires_grad and not _grad_lives_in(opt, p) for p in params)
    for p in params:
        p.grad = None
    group = weakref.ref(opt._flat[0])
    del opt
    gc.collect()
    assert group() is None, "the gradient hooks must not keep a dropped optimizer's buffers"
    _loss(params).backward()  # and then do nothing
    assert all(p.grad is not None and not p.grad.requires_grad for p in params)
    # A new optimizer on the same parameters continues as torch.optim does.
    ref = [p.detach().clone().requires_grad_() for p in params]
    ours, theirs = descend.Adam(params, lr=0.01), torch.optim.Adam(ref, lr=0.01)
    for _ in range(3):
        for ps, o in [(params, ours), (ref, theirs)]:
            o.zero_grad(set_to_none=True)
            _loss(ps).backward()
            o.step()
    for a, b in zip(params, ref, strict=True):
        torch.testing.assert_close(a, b)


def test_first_compiled_step_is_logged_once(counter, caplog: pytest.LogCaptureFixture) -> None:
    params = _params()
    opt = descend.SGD(params, lr=0.01)
    with caplog.at_level(logging.INFO, logger="descend"):
        for _ in range(3):
            opt.zero_grad()
            _loss(params).backward()
            opt.step()
    messages = [r.getMessage() for r in caplog.records if r.name == "descend"]
    assert len(messages) == 1 and "compiled its fused update" in messages[0]


def test_compile_false_and_small_groups_stay_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = torch._dynamo.testing.CompileCounter()
    monkeypatch.setattr(compiled, "BACKEND", backend)
    for make in [
        lambda p: descend.Adam(p, fused=False),
        lambda p: descend.Optimizer(p, chain(scale_by_adam(), scale_by_lr()), compile=False),
        lambda p: descend.Adam(p),
    ]:  # below MIN_NUMEL
        params = _params()
        opt = make(params)
        _loss(params).backward()
        opt.step()
    assert backend.frame_count == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("counter", ["dynamo"], indirect=True)
def test_cuda_parameters_run_eagerly(counter) -> None:
    params = [p.detach().cuda().requires_grad_() for p in _params()]
    opt = descend.Adam(params, lr=0.01)
    _loss(params).backward()
    opt.step()
    assert counter.frame_count == 0


def test_inductor_fast_path_matches_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    # The one test that compiles with Inductor: the same chain and dtype as
    # tests/optim/test_compile.py, so the two share Inductor's on-disk cache.
    monkeypatch.setattr(flat, "MIN_NUMEL", 0)
    monkeypatch.setattr(compiled, "_LOGGED", set())
    before = torch._dynamo.utils.counters["stats"]["unique_graphs"]

    def go(fused: bool) -> list[torch.Tensor]:
        params = _params()
        opt = descend.Optimizer(
            params,
            chain(clip_by_global_norm(), scale_by_adam(), add_decayed_weights(), scale_by_lr()),
            compile=None if fused else False,
            lr=lambda t: 0.01 / (1 + t),
            weight_decay=0.01,
            max_norm=1.0,
        )
        for _ in range(6):
            opt.zero_grad()
            _loss(params).backward()
            opt.step()
        return params

    norms: list[int] = []
    norm = backend.norms
    monkeypatch.setattr(backend, "norms", lambda xs: norms.append(len(xs)) or norm(xs))
    rewrites: list[int] = []
    rewrite = backend._reciprocal_divisions
    monkeypatch.setattr(
        backend, "_reciprocal_divisions", lambda gm: rewrites.append(rewrite(gm)) or rewrites[-1]
    )
    fast, eager = go(True), go(False)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - before == 1
    # Adam's two bias corrections become multiplications by reciprocals, in the one graph
    # traced (no restart of dynamo's analysis to specialize float symbols: one trace).
    assert rewrites == [2]
    # The clipping norm is computed before the fused loop, once per step, over the one
    # flat gradient buffer (the calls at trace time run on fake tensors).
    assert norms[-6:] == [1] * 6
    for a, b in zip(fast, eager, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_inductor_steady_steps_run_the_prepared_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    # After the first steady step a step is the plan: Adam's bias corrections once, in
    # Python floats, then one C++ loop over a table of the calls (two pieces and the
    # tail), each piece's gradient read where autograd wrote it; the kernel reads its 0-d
    # inputs once; the result is torch.optim's.
    monkeypatch.setattr(flat, "MIN_NUMEL", 0)
    monkeypatch.setattr(flat, "PIECE_NUMEL", 10)
    monkeypatch.setattr(compiled, "_LOGGED", set())
    params = _params()
    ref = [p.detach().clone().requires_grad_() for p in params]
    ours, theirs = descend.Adam(params, lr=0.01), torch.optim.Adam(ref, lr=0.01)

    def steps(n: int) -> None:
        _lockstep([(params, ours), (ref, theirs)], n)

    steps(2)
    plan = ours._flat[0].plan
    assert plan is not None and plan._float is not None
    assert plan._table is not None and plan._table.shape[0] == 3
    tables: list[list[set[int]]] = []
    floats: list[int] = []
    run_table, values = plan._run_table, plan._float_values
    monkeypatch.setattr(
        plan, "_run_table", lambda t: tables.append([set(r) for r in t.tolist()]) or run_table(t)
    )
    monkeypatch.setattr(plan, "_float_values", lambda a: floats.append(1) or values(a))
    for _ in range(3):
        steps(1)
        pieces = [params[0].grad, params[3].grad]
        reads = [[g.data_ptr() in row for g in pieces] for row in tables[-1]]
        assert reads == [[True, False], [False, True], [False, False]]
    assert (len(tables), len(floats)) == (3, 3)
    source = pathlib.Path(inspect.getmodule(plan._entry).__file__).read_text()
    assert "_value = in_ptr" in source, "the kernel should read its 0-d inputs once"
    assert "DESCEND_PREFETCH(reinterpret_cast" in source, "the loop should prefetch its streams"
    if backend._trusted_isa() is not None:  # x86 with AVX-512 or AVX2
        assert "descend: the part of Inductor's cpp_prefix.h" in source, "the slim prelude"
    # Inductor's own entry point was checked against the wrapped call (on this torch;
    # another layout of its wrappers would fall back, and no plan would be made).
    assert backend._checked_entry(lambda *a: None, [torch.zeros(2)]) is None  # no Inductor inside
    for a, b in zip(params, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def _lockstep(runs: list[tuple[list[torch.Tensor], object]], n: int) -> None:
    """``n`` training steps of each ``(params, optimizer)`` pair, in turn."""
    for _ in range(n):
        for ps, o in runs:
            o.zero_grad(set_to_none=True)
            _loss(ps).backward()
            o.step()


def _count_dynamo_calls(opt: descend.Optimizer, backend, monkeypatch) -> list[int]:
    step = compiled.compiled_step(opt.transform.update, backend)
    calls: list[int] = []
    fn = step._fn
    monkeypatch.setattr(step, "_fn", lambda *a: calls.append(1) or fn(*a))
    return calls


def test_steady_steps_call_the_compiled_graph_directly_until_a_constant_changes(
    counter, layout, monkeypatch
) -> None:
    params, opt = _run(lambda p: descend.Adam(p, lr=0.01), steps=2)
    ref = [p.detach().clone().requires_grad_() for p in params]
    ref_opt = torch.optim.Adam(ref, lr=0.01)
    ref_opt.load_state_dict(copy.deepcopy(opt.state_dict()))
    calls = _count_dynamo_calls(opt, counter, monkeypatch)

    def steps(n: int) -> None:
        _lockstep([(params, opt), (ref, ref_opt)], n)

    steps(4)
    assert calls == [], "steps with everything in place must not go through dynamo"
    # Step counts are elements of one tensor, as torch.optim's 0-d tensors in the state dict.
    counts = [opt.state[p]["step"] for p in params]
    assert all(c.dim() == 0 and float(c) == 6 for c in counts)
    assert len({c.untyped_storage().data_ptr() for c in counts}) == 1
    # eps is a constant of the compiled graph: a new value goes through dynamo once (which
    # recompiles), then the steps are direct again.
    for o in (opt, ref_opt):
        o.param_groups[0]["eps"] = 1e-3
    steps(3)
    assert len(calls) == 1 and counter.frame_count == 2
    # State edited by hand is noticed: a reset moment is used, and a step count that
    # differs from the others sends the group to the eager path.
    for o, ps in [(opt, params), (ref_opt, ref)]:
        o.state[ps[0]]["exp_avg"] = torch.zeros_like(ps[0])
    steps(2)
    for a, b in zip(params, ref, strict=True):
        torch.testing.assert_close(a, b)
    for o, ps in [(opt, params), (ref_opt, ref)]:
        o.state[ps[1]]["step"].fill_(2.0)
    steps(2)
    for a, b in zip(params, ref, strict=True):
        torch.testing.assert_close(a, b)


def test_a_transform_that_replaces_its_state_keeps_it(counter, layout) -> None:
    def running_sum():
        def init(params, hp):
            return {"total": [torch.zeros_like(p) for p in params]}

        def update(grads, state, params, hp):
            state["total"] = [t + g for t, g in zip(state["total"], grads, strict=True)]
            return list(state["total"])

        return descend.optim.Transform(init, update, name="running_sum", elementwise=True)

    def run(compile: bool) -> list[torch.Tensor]:
        params = _params()
        opt = descend.Optimizer(
            params, chain(running_sum(), scale_by_lr()), compile=compile, lr=0.01
        )
        for _ in range(4):
            opt.zero_grad()
            _loss(params).backward()
            opt.step()
        return params

    for a, b in zip(run(True), run(False), strict=True):
        torch.testing.assert_close(a, b)
    assert counter.frame_count == 1
