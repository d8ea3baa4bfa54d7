"""Schedule-Free AdamW and SGD against the authors' package (``schedulefree``), against an
independent float64 reference that follows the paper (x, y and z kept explicitly), and
their modes, state dicts and refusals."""

from __future__ import annotations

import contextlib
import copy
import math
from typing import Any
from unittest import mock

import pytest
import torch

import descend
from tests.optim.problems import loss_fn, make_params, run

schedulefree = pytest.importorskip("schedulefree")

EPS32 = torch.finfo(torch.float32).eps
STEPS = 120
# (descend class, reference class, options, second group's options)
CASES = [
    (descend.ScheduleFreeAdamW, "AdamWScheduleFree", {}, {}),
    (
        descend.ScheduleFreeAdamW,
        "AdamWScheduleFree",
        {"lr": 0.02, "betas": (0.8, 0.99), "weight_decay": 0.1, "warmup_steps": 30, "r": 1.0},
        {"lr": 0.005, "weight_lr_power": 0.0},
    ),
    (descend.ScheduleFreeSGD, "SGDScheduleFree", {"lr": 0.01}, {}),
    (
        descend.ScheduleFreeSGD,
        "SGDScheduleFree",
        {"lr": 0.02, "momentum": 0.7, "weight_decay": 0.05, "warmup_steps": 20, "r": 2.0},
        {"lr": 0.004},
    ),
]
IDS = ["adamw-defaults", "adamw-all", "sgd", "sgd-all"]


def _both(case: tuple[Any, ...], dtype: torch.dtype, steps: int = STEPS) -> tuple[Any, Any]:
    ours, ref, options, second = case

    def make(cls: Any) -> Any:
        def build(groups: list[dict[str, Any]]) -> Any:
            groups[1].update(second)
            opt = cls(groups, **options)
            opt.train()
            return opt

        return build

    return (
        run(make(ours), dtype, steps=steps),
        run(make(getattr(schedulefree, ref)), dtype, steps=steps),
    )


def _relative(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(
        ((x - y).abs().max() / y.abs().max().clamp_min(1e-300)).item()
        for x, y in zip(a, b, strict=True)
        if x.numel()
    )


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_the_reference_in_float64_at_y_and_at_x(case: tuple[Any, ...]) -> None:
    """The reference's operations, but for AdamW's quotient: descend divides by
    sqrt(v) + eps sqrt(1 - beta2^t) and moves the correction into addcdiv_'s scalar (with a
    decay, into the division's), where the reference divides v first and adds u with alpha:
    four roundings per step ordered differently, of relative size 2^-53 each, which 120
    steps of a contracting iteration keep far below 1e-10."""
    (ours, opt), (theirs, ref) = _both(case, torch.float64)
    assert _relative(ours, theirs) < 1e-10
    opt.eval(), ref.eval()
    assert _relative(ours, theirs) < 1e-10
    assert not opt.param_groups[0]["train_mode"]
    for key in ("k", "weight_sum", "lr_max", "scheduled_lr"):
        assert opt.param_groups[1][key] == pytest.approx(ref.param_groups[1][key], rel=1e-12)


@pytest.mark.parametrize("case", CASES[:3:2], ids=IDS[:3:2])
def test_matches_the_reference_in_float32_within_rounding(case: tuple[Any, ...]) -> None:
    # About 10 roundings per step, each of relative size eps, which the average carries on.
    (ours, _), (theirs, _) = _both(case, torch.float32)
    assert _relative(ours, theirs) < STEPS * 10 * EPS32


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", CASES[2:], ids=IDS[2:])
def test_sgd_takes_the_references_operations_bit_for_bit(
    case: tuple[Any, ...], dtype: torch.dtype
) -> None:
    # y.lerp_(z, c), y.add_(u, alpha), z.sub_(u, alpha=lr), u = g (+ lambda y): its order.
    (ours, _), (theirs, _) = _both(case, dtype)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adamw_reaches_y_and_z_without_materializing_the_update(weight_decay: float) -> None:
    """Eager, the step reads and writes y and z once each (lerp_, then addcdiv_ or add_):
    no z - y, no u, no step tensor (12 passes over memory before, 7 to 9 now)."""
    params = make_params(torch.float64)
    opt = descend.ScheduleFreeAdamW(params, lr=0.01, weight_decay=weight_decay)
    loss_fn(params).backward()
    opt.step()  # z created
    made = {name: mock.MagicMock(wraps=getattr(torch, name)) for name in _OUT_OF_PLACE}
    with contextlib.ExitStack() as stack:
        for name, fake in made.items():
            stack.enter_context(mock.patch.object(torch, name, fake))
        opt.step()
    # One new tensor list per step: the denominators (n / d is written into them).
    assert {n: f.call_count for n, f in made.items() if f.call_count} == {"_foreach_sqrt": 1}


_OUT_OF_PLACE = ["_foreach_sqrt", "_foreach_div", "_foreach_sub", "_foreach_add", "_foreach_mul"]


def _paper(
    params: list[torch.Tensor], *, lr: float, beta: float, adam: bool, steps: int, **kw: Any
) -> list[torch.Tensor]:
    """Algorithm 1 of the paper with x, y and z as separate tensors (float64)."""
    beta2, eps, wd, warmup = kw.get("beta2", 0.999), 1e-8, kw.get("wd", 0.0), kw.get("warmup", 0)
    x = [p.detach().clone() for p in params]
    z = [p.detach().clone() for p in params]
    v = [torch.zeros_like(p) for p in params]
    weight_sum, lr_max = 0.0, -1.0
    for t in range(1, steps + 1):
        y = [((1 - beta) * zi + beta * xi).requires_grad_() for xi, zi in zip(x, z, strict=True)]
        grads = torch.autograd.grad(loss_fn(y), y)
        gamma = lr * min(1.0, t / warmup) if warmup else lr
        lr_max = max(lr_max, gamma)
        weight = lr_max**2
        weight_sum += weight
        c = weight / weight_sum
        for i, g in enumerate(grads):
            if adam:
                v[i] = beta2 * v[i] + (1 - beta2) * g * g
                g = g / ((v[i] / (1 - beta2**t)).sqrt() + eps)
            g = g + wd * y[i].detach()
            z[i] = z[i] - gamma * g
            x[i] = (1 - c) * x[i] + c * z[i]
    return x


@pytest.mark.parametrize("adam", [True, False], ids=["adamw", "sgd"])
def test_matches_the_papers_algorithm_with_x_y_z_kept_apart(adam: bool) -> None:
    params = make_params(torch.float64)
    cls = descend.ScheduleFreeAdamW if adam else descend.ScheduleFreeSGD
    beta = {"betas": (0.85, 0.999)} if adam else {"momentum": 0.85}
    opt = cls(params, lr=0.01, weight_decay=0.02, warmup_steps=10, **beta)
    expected = _paper(params, lr=0.01, beta=0.85, adam=adam, steps=STEPS, wd=0.02, warmup=10)
    for _ in range(STEPS):
        opt.zero_grad()
        loss_fn(params).backward()
        opt.step()
    opt.eval()
    # The paper's form recomputes y from x and z each step; descend carries y: a few
    # roundings per step apart.
    assert _relative(params, expected) < 1e-10


def test_eval_then_train_moves_between_x_and_y() -> None:
    (params, opt), _ = _both(CASES[0], torch.float64, steps=20)
    y = [p.detach().clone() for p in params]
    z = [opt.state[p]["z"] for p in params]
    opt.eval()
    for p, yi, zi in zip(params, y, z, strict=True):  # y = 0.9 x + 0.1 z
        torch.testing.assert_close(0.9 * p.detach() + 0.1 * zi, yi, rtol=1e-12, atol=1e-12)
    opt.eval()  # a second eval() changes nothing
    opt.train()
    assert _relative(params, y) < 1e-12


def test_step_in_eval_mode_is_refused_naming_the_mode_and_the_fix() -> None:
    x = torch.ones(3, requires_grad=True)
    opt = descend.ScheduleFreeAdamW([x])
    x.grad = torch.ones(3)
    opt.step()
    opt.eval()
    with pytest.raises(RuntimeError, match=r"eval mode.*optimizer\.train\(\)"):
        opt.step()


def test_starts_in_train_mode_so_torch_loops_run() -> None:
    x = torch.ones(3, requires_grad=True)
    opt = descend.ScheduleFreeSGD([x], lr=0.1)
    x.grad = torch.ones(3)
    opt.step()
    assert opt.param_groups[0]["train_mode"] and opt.param_groups[0]["k"] == 1


@pytest.mark.parametrize("cls", [descend.ScheduleFreeAdamW, descend.ScheduleFreeSGD])
def test_state_dict_round_trip_continues_bit_identically_in_either_mode(cls: Any) -> None:
    def make(groups: list[dict[str, Any]]) -> Any:
        return cls(groups, lr=0.01, warmup_steps=5)

    params, opt = run(make, torch.float64, steps=30)
    opt.eval()
    saved_params = [p.detach().clone() for p in params]
    saved = copy.deepcopy(opt.state_dict())
    twin = [p.detach().clone().requires_grad_() for p in params]
    other = make([{"params": twin[:3]}, {"params": twin[3:]}])
    other.load_state_dict(saved)
    assert not other.param_groups[0]["train_mode"]
    for ps, o in ((params, opt), (twin, other)):
        o.train()
        for _ in range(30):
            o.zero_grad()
            loss_fn(ps).backward()
            o.step()
        o.eval()
    for a, b in zip(params, twin, strict=True):
        assert torch.equal(a, b)
    assert all(torch.equal(a, b) for a, b in zip(saved_params, saved_params, strict=True))


def test_a_state_dict_of_the_reference_loads_and_continues_as_the_reference() -> None:
    (_, _), (theirs, ref) = _both(CASES[1], torch.float64, steps=40)
    ref.eval()
    mine = [p.detach().clone().requires_grad_() for p in theirs]
    opt = descend.ScheduleFreeAdamW([{"params": mine[:3]}, {"params": mine[3:]}])
    opt.load_state_dict(copy.deepcopy(ref.state_dict()))  # else z is shared
    assert ref.state_dict()["param_groups"][0].keys() <= opt.state_dict()["param_groups"][0].keys()
    for ps, o in ((theirs, ref), (mine, opt)):
        o.train()
        for _ in range(40):
            o.zero_grad()
            loss_fn(ps).backward()
            o.step()
    assert _relative(mine, theirs) < 1e-10


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: descend.ScheduleFreeSGD(p, momentum=0.0), "momentum"),
        (lambda p: descend.ScheduleFreeSGD(p, momentum=1.0), "momentum"),
        (lambda p: descend.ScheduleFreeAdamW(p, betas=(0.0, 0.999)), "beta1 in \\(0, 1\\)"),
        (lambda p: descend.ScheduleFreeAdamW(p, warmup_steps=-1), "warmup_steps"),
        (lambda p: descend.ScheduleFreeAdamW(p, lr=-1.0), "lr"),
    ],
)
def test_bad_hyperparameters_are_refused_by_name(make: Any, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        make([torch.zeros(2, requires_grad=True)])


def test_warmup_reaches_the_full_rate_linearly() -> None:
    x = torch.zeros(2, requires_grad=True)
    opt = descend.ScheduleFreeSGD([x], lr=0.5, warmup_steps=4)
    rates = []
    for _ in range(6):
        x.grad = torch.ones(2)
        opt.step()
        rates.append(opt.param_groups[0]["scheduled_lr"])
    assert rates == [0.125, 0.25, 0.375, 0.5, 0.5, 0.5]
    # weights lr_max**2: 1/64, 4/64, 9/64, 16/64, 16/64, 16/64
    assert math.isclose(opt.param_groups[0]["weight_sum"], 62 / 64)


@pytest.mark.slow
def test_compiled_step_equals_the_eager_step() -> None:
    """compile=True runs the same transforms; Inductor may fuse them with FMAs, so the
    two agree to rounding (float64), not bit for bit. One group, every parameter with a
    gradient on every step: one graph serves every step (the per-step numbers are
    tensor inputs, so they do not recompile)."""
    results = []
    for compile in (False, True):
        params = [p for p in make_params(torch.float64) if p.dim() and p.numel()]
        opt = descend.ScheduleFreeAdamW(params, weight_decay=0.01, warmup_steps=5, compile=compile)
        for _ in range(100):
            opt.zero_grad()
            loss_fn(params).backward()
            opt.step()
        results.append(params)
    assert _relative(*results) < 1e-10
