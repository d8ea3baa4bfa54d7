"""Lion and AdEMAMix against their reference packages (lion-pytorch, pytorch-optimizer)
and against float64 references written here from the papers."""

from __future__ import annotations

import math
from typing import Any

import lion_pytorch
import pytest
import pytorch_optimizer
import torch

import descend
from descend.optim.transforms.ademamix import beta3_schedule
from tests.optim.problems import loss_fn, make_params, run

# float32: each step rounds each coordinate a few times (~OPS, relative 2**-24 each) in
# another order than the reference; over F32_STEPS steps away from the minimum the
# differences add up at most. Lion's sign steps are exact (+-lr): only a sign flipped by
# rounding (|c| within an ulp of 0) could differ by more, which does not happen here.
F32_STEPS, OPS = 40, 12
F32_TOL = F32_STEPS * OPS * torch.finfo(torch.float32).eps / 2
STEPS64 = 150


def _full_run(make: Any, dtype: torch.dtype, steps: int, second: dict[str, Any]) -> list:
    """``steps`` updates with every parameter's gradient on every step: pytorch-optimizer
    counts steps per param group, so a parameter skipped on a step would count differently."""
    params = make_params(dtype)
    opt = make([{"params": params[:3]}, {"params": params[3:], **second}])
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss_fn(params).backward()
        opt.step()
    return params


def _close(got: list, ref: list, dtype: torch.dtype) -> None:
    tol = (1e-10, 1e-12) if dtype == torch.float64 else (F32_TOL, F32_TOL)
    for p, q in zip(got, ref, strict=True):
        torch.testing.assert_close(p, q, rtol=tol[0], atol=tol[1])


def _moved(params: list, dtype: torch.dtype) -> float:
    start = make_params(dtype)
    return sum(float((p - q).detach().abs().sum()) for p, q in zip(params, start))


# -- Lion --------------------------------------------------------------------------------
LION_GRID = [
    {"lr": 1e-3},
    {"lr": 1e-3, "weight_decay": 0.5},
    {"lr": 3e-3, "betas": (0.8, 0.95), "weight_decay": 0.1},
]


@pytest.mark.parametrize("opts", LION_GRID, ids=str)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_lion_matches_lion_pytorch(opts: dict, dtype: torch.dtype) -> None:
    """Same operations up to their order (an interpolation as lerp or as mul + add; the decay
    as a factor or an added term): float64 within 1e-10 over 150 steps, parameters skipping
    gradients on some steps (lion-pytorch keeps no step count)."""
    steps = STEPS64 if dtype == torch.float64 else F32_STEPS
    second = {"lr": opts["lr"] / 2, "weight_decay": 0.05}
    ref, _ = run(
        lambda g: lion_pytorch.Lion(g, **opts), dtype, steps=steps, group_options=({}, second)
    )
    got, opt = run(
        lambda g: descend.Lion(g, **opts), dtype, steps=steps, group_options=({}, second)
    )
    assert _moved(got, dtype) > 1e-2
    _close(got, ref, dtype)
    assert {k for st in opt.state.values() for k in st} == {"exp_avg"}


def test_lion_maximize_matches_pytorch_optimizer() -> None:
    make = {"lr": 2e-3, "weight_decay": 0.1, "maximize": True}
    ref, _ = run(lambda g: pytorch_optimizer.Lion(g, **make), torch.float64, maximize=True)
    got, _ = run(lambda g: descend.Lion(g, **make), torch.float64, maximize=True)
    _close(got, ref, torch.float64)


def _lion_reference(
    params: list[torch.Tensor], steps: int, lr: float, b1: float, b2: float, wd: float
) -> list[torch.Tensor]:
    """The paper's Algorithm 2, one float64 tensor at a time."""
    xs = [p.detach().clone() for p in params]
    ms = [torch.zeros_like(x) for x in xs]
    for _ in range(steps):
        xr = [x.clone().requires_grad_() for x in xs]
        grads = torch.autograd.grad(loss_fn(xr), xr)
        for x, m, g in zip(xs, ms, grads, strict=True):
            c = b1 * m + (1 - b1) * g
            x -= lr * (torch.sign(c) + wd * x)
            m.copy_(b2 * m + (1 - b2) * g)
    return xs


def test_lion_matches_the_papers_rule_in_float64() -> None:
    params = make_params(torch.float64)
    expected = _lion_reference(params, 120, 2e-3, 0.9, 0.99, 0.3)
    opt = descend.Lion(params, lr=2e-3, weight_decay=0.3)
    for _ in range(120):
        opt.zero_grad()
        loss_fn(params).backward()
        opt.step()
    _close(params, expected, torch.float64)


# -- AdEMAMix ----------------------------------------------------------------------------
ADEMAMIX_GRID = [
    {"lr": 1e-2, "alpha": 2.0},  # pytorch-optimizer defaults to 5, the authors to 2
    {"lr": 1e-2, "alpha": 5.0, "weight_decay": 0.1},
    {"lr": 1e-2, "alpha": 8.0, "t_alpha_beta3": 60},
    {"lr": 2e-2, "alpha": 3.0, "betas": (0.8, 0.99, 0.999), "eps": 1e-6, "t_alpha_beta3": 200},
]


def _pyopt_ademamix(groups: list, opts: dict) -> torch.optim.Optimizer:
    return pytorch_optimizer.AdEMAMix(groups, weight_decouple=True, foreach=False, **opts)


def _ours(opts: dict) -> dict:
    """pytorch-optimizer's arguments as descend's (one warmup for both schedules)."""
    opts = dict(opts)
    t = opts.pop("t_alpha_beta3", None)
    return {**opts, "alpha_warmup": t, "beta3_warmup": t}


@pytest.mark.parametrize("opts", ADEMAMIX_GRID, ids=str)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_ademamix_matches_pytorch_optimizer(opts: dict, dtype: torch.dtype) -> None:
    """Same operations but for where the bias corrections are applied (folded into one
    factor per tensor here, as descend's Adam): float64 within 1e-10 over 150 steps."""
    steps = STEPS64 if dtype == torch.float64 else F32_STEPS
    second = {"lr": opts["lr"] / 2, "weight_decay": 0.05}
    ref = _full_run(lambda g: _pyopt_ademamix(g, opts), dtype, steps, second)
    got = _full_run(lambda g: descend.AdEMAMix(g, **_ours(opts)), dtype, steps, second)
    assert _moved(got, dtype) > 1e-2
    _close(got, ref, dtype)


def test_ademamix_foreach_and_maximize_match_pytorch_optimizer() -> None:
    opts = {"lr": 1e-2, "alpha": 5.0, "t_alpha_beta3": 50}
    ref = _full_run(
        lambda g: pytorch_optimizer.AdEMAMix(g, weight_decouple=True, maximize=True, **opts),
        torch.float64,
        STEPS64,
        {},
    )
    got = _full_run(
        lambda g: descend.AdEMAMix(g, maximize=True, foreach=True, **_ours(opts)),
        torch.float64,
        STEPS64,
        {},
    )
    _close(got, ref, torch.float64)


def _beta3_by_half_life(t: int, b1: float, b3: float, warmup: int) -> float:
    """The authors' form: the half-life ln(0.5)/ln(beta) interpolated linearly in t."""
    if t >= warmup:
        return b3
    a = t / warmup
    half = (1 - a) * math.log(0.5) / math.log(b1) + a * math.log(0.5) / math.log(b3)
    return 0.5 ** (1 / half)


def _ademamix_reference(params, steps, lr, betas, alpha, warmup, eps, wd):
    """The paper's Algorithm 1 with per-parameter step counts, float64, one tensor at a
    time; parameter j has no gradient on steps where (t + j) % 7 == 0 (problems.run)."""
    b1, b2, b3 = betas
    xs = [p.detach().clone() for p in params]
    m1, m2, v = ([torch.zeros_like(x) for x in xs] for _ in range(3))
    count = [0] * len(xs)
    for t in range(steps):
        xr = [x.clone().requires_grad_() for x in xs]
        grads = torch.autograd.grad(loss_fn(xr), xr)
        for j, g in enumerate(grads):
            if (t + j) % 7 == 0:
                continue
            count[j] += 1
            s = count[j]
            a_t = min(s * alpha / warmup, alpha)
            b3_t = _beta3_by_half_life(s, b1, b3, warmup)
            m1[j] = b1 * m1[j] + (1 - b1) * g
            m2[j] = b3_t * m2[j] + (1 - b3_t) * g
            v[j] = b2 * v[j] + (1 - b2) * g * g
            denom = (v[j] / (1 - b2**s)).sqrt() + eps
            xs[j] = xs[j] - lr * ((m1[j] / (1 - b1**s) + a_t * m2[j]) / denom + wd * xs[j])
    return xs


def test_ademamix_matches_the_papers_rule_in_float64() -> None:
    betas, warmup = (0.9, 0.999, 0.9999), 80
    params = make_params(torch.float64)
    expected = _ademamix_reference(params, 150, 1e-2, betas, 6.0, warmup, 1e-8, 0.1)
    got, _ = run(
        lambda g: descend.AdEMAMix(
            g,
            lr=1e-2,
            betas=betas,
            alpha=6.0,
            alpha_warmup=warmup,
            beta3_warmup=warmup,
            weight_decay=0.1,
        ),
        torch.float64,
        steps=150,
    )
    _close(got, expected, torch.float64)


def test_beta3_schedule_is_the_half_life_interpolation() -> None:
    """The paper's closed form and the half-life form agree, start at beta1, end at beta3."""
    for t in [0, 1, 10, 500, 999, 1000, 5000]:
        ours = beta3_schedule(t, 0.9, 0.9999, 1000)
        theirs = 0.9 if t == 0 else _beta3_by_half_life(t, 0.9, 0.9999, 1000)
        assert ours == pytest.approx(theirs, rel=1e-12)
    assert beta3_schedule(0, 0.0, 0.999, 10) == 0.0  # half-life 0: beta1 = 0 at the start
    assert beta3_schedule(5, 0.0, 0.999, 10) == pytest.approx(0.999**2, rel=1e-12)
    assert beta3_schedule(3, 0.9, 0.999, None) == 0.999


def test_ademamix_without_fast_average_keeps_no_buffer_for_it() -> None:
    """beta1 = 0: the gradient stands in for m1, which is not kept (the authors' code)."""
    x = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = descend.AdEMAMix([x], lr=0.1, betas=(0.0, 0.999, 0.9999), alpha=0.0)
    y = x.detach().clone().requires_grad_()
    adam = torch.optim.Adam([y], lr=0.1, betas=(0.0, 0.999))
    for _ in range(50):
        for o, p in ((opt, x), (adam, y)):
            o.zero_grad()
            (p**2).sum().backward()
            o.step()
    assert set(opt.state[x]) == {"step", "exp_avg_slow", "exp_avg_sq"}
    torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-14)  # alpha = 0: Adam


def test_ademamix_refuses_bad_betas_and_warmups() -> None:
    x = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="'betas' .* triple .* Got \\(0.9, 0.999\\)"):
        descend.AdEMAMix([x], betas=(0.9, 0.999))
    with pytest.raises(ValueError, match="'alpha_warmup'.*Got 0"):
        descend.AdEMAMix([x], alpha_warmup=0)
