"""lookahead: against pytorch-optimizer's Lookahead wrapping torch.optim, against a float64
reference written here, state dicts, the tensor (compiled/differentiable) path, input."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch

import descend
from descend._validation import InvalidParameterError
from descend.optim import SGD, AdamW, averaged_weights, chain, lookahead, scale_by_adam, scale_by_lr
from tests.optim.problems import loss_fn, make_params

pytorch_optimizer = pytest.importorskip("pytorch_optimizer")

STEPS = 120
# float32: ~12 roundings per coordinate per step (the inner rule plus the pull), each
# 2**-24 relative, in another order than the reference's; over 40 steps they add up at most.
F32_STEPS = 40
F32_TOL = F32_STEPS * 12 * torch.finfo(torch.float32).eps / 2


def _groups(params: list[torch.Tensor], lr: float) -> list[dict]:
    # Two groups, the second with its own lr: per-group values must be read.
    return [{"params": params[:3]}, {"params": params[3:], "lr": lr / 2}]


def _run(make: Callable[[list[dict]], torch.optim.Optimizer], dtype: torch.dtype, steps: int):
    params = make_params(dtype)
    opt = make(params)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(params).backward()
        opt.step()
    return params, opt


# (descend inner transform and its options, torch class and its options)
INNER = {
    "adamw": (
        AdamW.transform,
        {"lr": 0.02, "weight_decay": 0.01, "decoupled_weight_decay": True},
        torch.optim.AdamW,
        {"lr": 0.02, "weight_decay": 0.01},
    ),
    "momentum": (
        SGD.transform,
        {"lr": 0.01, "momentum": 0.9},
        torch.optim.SGD,
        {"lr": 0.01, "momentum": 0.9},
    ),
}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("k", "alpha"), [(5, 0.5), (3, 0.8)])
@pytest.mark.parametrize("inner", sorted(INNER))
def test_matches_pytorch_optimizer_lookahead(inner: str, k: int, alpha: float, dtype) -> None:
    transform, ours, cls, theirs = INNER[inner]
    lr = theirs["lr"]
    steps = STEPS if dtype == torch.float64 else F32_STEPS

    def reference(params):
        base = cls(_groups(params, lr), foreach=False, **theirs)
        return pytorch_optimizer.Lookahead(base, k=k, alpha=alpha)

    def descend_(params):
        rule = lookahead(transform, k=k, alpha=alpha)
        return descend.Optimizer(_groups(params, lr), rule, **ours)

    ref, ref_opt = _run(reference, dtype, steps)
    got, got_opt = _run(descend_, dtype, steps)
    start = make_params(dtype)
    assert max(float((p - q).detach().abs().max()) for p, q in zip(got, start) if p.numel()) > 1e-2
    tol = (
        {"rtol": 1e-10, "atol": 1e-12}
        if dtype == torch.float64
        else {"rtol": F32_TOL, "atol": F32_TOL}
    )
    for p, q in zip(got, ref, strict=True):
        torch.testing.assert_close(p, q, **tol)
    # The slow weights are the reference's (the last sync was at a multiple of k).
    for p, q in zip(got, ref, strict=True):
        slow, ref_slow = got_opt.state[p]["slow_params"], ref_opt.state[q]["slow_params"]
        torch.testing.assert_close(slow, ref_slow, **tol)


def test_matches_a_float64_reference_written_here() -> None:
    """Inner Adam run alone by descend; the pull every k steps done by hand."""
    k, alpha, lr = 4, 0.6, 0.05
    inner = chain(scale_by_adam(), scale_by_lr())
    fast = make_params(torch.float64)
    slow = [p.detach().clone() for p in fast]
    plain = descend.Optimizer(fast, inner, lr=lr)
    params = make_params(torch.float64)
    opt = descend.Optimizer(params, lookahead(inner, k=k, alpha=alpha), lr=lr)
    for t in range(1, 101):
        for ps, o in ((fast, plain), (params, opt)):
            o.zero_grad()
            loss_fn(ps).backward()
            o.step()
        if t % k == 0:
            with torch.no_grad():
                for p, s in zip(fast, slow):
                    s += alpha * (p - s)
                    p.copy_(s)
    for p, q in zip(params, fast, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


def test_alpha_one_is_the_inner_rule_and_k_per_group() -> None:
    inner = chain(scale_by_adam(), scale_by_lr())
    a, b = make_params(torch.float64), make_params(torch.float64)
    plain = descend.Optimizer(a, inner, lr=0.05)
    opt = descend.Optimizer(
        [{"params": b[:3]}, {"params": b[3:], "lookahead_alpha": 0.5, "lookahead_k": 2}],
        lookahead(inner, k=3, alpha=1.0),
        lr=0.05,
    )
    for _ in range(7):
        for ps, o in ((a, plain), (b, opt)):
            o.zero_grad()
            loss_fn(ps).backward()
            o.step()
    for p, q in zip(a[:3], b[:3]):
        # The inner rule lands in place (addcdiv_), then the pull acts on the weights it
        # made (Transform.after), here lerp with weight 0: the inner rule, bit for bit.
        assert torch.equal(p, q)
    assert not torch.allclose(a[3], b[3])  # the second group pulled back every 2 steps
    assert opt.state[b[3]]["step"].item() == 7


def test_tensor_path_matches_eager() -> None:
    """capturable=True runs the 0-d-tensor path a compiled step runs."""
    rule = lookahead(chain(scale_by_adam(), scale_by_lr()), k=3)
    a, b = make_params(torch.float64), make_params(torch.float64)
    eager = descend.Optimizer(a, rule, lr=0.05)
    tensors = descend.Optimizer(b, rule, lr=0.05, capturable=True)
    for _ in range(10):
        for ps, o in ((a, eager), (b, tensors)):
            o.zero_grad()
            loss_fn(ps).backward()
            o.step()
    for p, q in zip(a, b):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-13, atol=1e-15)


def test_state_dict_round_trips_bit_identically() -> None:
    rule = lookahead(chain(scale_by_adam(), scale_by_lr()), k=4)
    params = make_params(torch.float64)
    opt = descend.Optimizer(params, rule, lr=0.05)

    def steps(ps, o, n):
        for _ in range(n):
            o.zero_grad()
            loss_fn(ps).backward()
            o.step()

    steps(params, opt, 6)
    copies = [p.detach().clone().requires_grad_() for p in params]
    resumed = descend.Optimizer(copies, copy.deepcopy(rule), lr=0.05)
    resumed.load_state_dict(copy.deepcopy(opt.state_dict()))
    steps(params, opt, 7)
    steps(copies, resumed, 7)
    for p, q in zip(params, copies):
        assert torch.equal(p, q)
    assert set(opt.state_dict()["state"][0]) == {"step", "exp_avg", "exp_avg_sq", "slow_params"}


def test_slow_weights_for_evaluation() -> None:
    params = make_params(torch.float64)
    opt = descend.Optimizer(params, lookahead(chain(scale_by_adam(), scale_by_lr()), k=5), lr=0.05)
    for _ in range(7):
        opt.zero_grad()
        loss_fn(params).backward()
        opt.step()
    fast = [p.detach().clone() for p in params]
    slow = [opt.state[p]["slow_params"].clone() for p in params]
    assert not torch.equal(fast[0], slow[0])  # 2 steps since the last pull
    with averaged_weights(opt, "slow_params"):
        for p, s in zip(params, slow):
            assert torch.equal(p.detach(), s)
    for p, f, s in zip(params, fast, slow):
        assert torch.equal(p.detach(), f)
        assert torch.equal(opt.state[p]["slow_params"], s)


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"lookahead_k": 0}, "The 'lookahead_k' parameter of Optimizer(lookahead("),
        ({"lookahead_k": 2.5}, "must be an int >= 1. Got 2.5 instead."),
        ({"lookahead_alpha": 1.5}, "must be a float in the range [0, 1]. Got 1.5 instead."),
    ],
)
def test_bad_input_is_named(options: dict, said: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        descend.Optimizer(make_params(torch.float64), lookahead(SGD.transform), lr=0.1, **options)
    assert said in str(info.value)


def test_a_compiled_step_branches_on_the_clock_read_outside_its_graph() -> None:
    """The clocks are read before the compiled step (Transform.scalars): one graph for the
    steps that pull and one for the others, which never touch the slow weights (a single
    graph would select, and read and write them at every step), with eager's numbers."""
    torch._dynamo.reset()
    graphs: list[torch.fx.GraphModule] = []

    def backend(gm: torch.fx.GraphModule, example_inputs: list) -> Callable:
        graphs.append(gm)
        return gm.forward

    rule = lookahead(chain(scale_by_adam(), scale_by_lr()), k=3)

    def run(compile: bool) -> tuple[list[torch.Tensor], descend.Optimizer]:
        params = [torch.randn(3, 2, generator=torch.Generator().manual_seed(0)).requires_grad_()]
        opt = descend.Optimizer(params, rule, compile=compile, lr=0.05)
        if compile:
            opt.__dict__["_compiled"] = torch.compile(
                descend.optim.apply.apply_updates, backend=backend
            )
        for _ in range(7):
            opt.zero_grad()
            sum((p**2).sum() for p in params).backward()
            opt.step()
        return params, opt

    (eager, e_opt), (compiled, c_opt) = run(False), run(True)
    assert len(graphs) == 2
    # float32, ~12 roundings per coordinate per step, possibly in another order (fused).
    tol = 7 * 12 * torch.finfo(torch.float32).eps
    for a, b in zip(eager, compiled, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
        torch.testing.assert_close(
            e_opt.state[a]["slow_params"], c_opt.state[b]["slow_params"], rtol=tol, atol=tol
        )
