"""Transforms on their own: closed forms and independent float64 references."""

from __future__ import annotations

import math

import pytest
import torch

import descend
from descend.optim import (
    add_decayed_weights,
    chain,
    clip_by_global_norm,
    clip_by_value,
    scale_by_adam,
    scale_by_lr,
    sign,
    trace,
)
from descend.schedules import step_decay


def test_gradient_descent_on_quadratic_matches_closed_form() -> None:
    # f(x) = ½ xᵀAx, ∇f = Ax, so x_t = (I − ηA)^t x₀ exactly.
    g = torch.Generator().manual_seed(0)
    q = torch.linalg.qr(torch.randn(5, 5, generator=g, dtype=torch.float64))[0]
    a = q @ torch.diag(torch.tensor([0.5, 1.0, 2.0, 5.0, 9.0], dtype=torch.float64)) @ q.T
    x0 = torch.randn(5, generator=g, dtype=torch.float64)
    lr, steps = 0.2, 40
    x = x0.clone().requires_grad_()
    opt = descend.SGD([x], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * x @ a @ x).backward()
        opt.step()
    expected = torch.linalg.matrix_power(torch.eye(5, dtype=torch.float64) - lr * a, steps) @ x0
    torch.testing.assert_close(x.detach(), expected, rtol=1e-12, atol=1e-14)


def _reference_adamw(x0, grads_fn, steps, lr, b1, b2, eps, wd, max_norm):
    """Independent float64 reference of clip → Adam → decoupled decay → lr, in plain Python."""
    x = [float(v) for v in x0]
    m = [0.0] * len(x)
    v = [0.0] * len(x)
    for t in range(1, steps + 1):
        g = grads_fn(x)
        norm = math.sqrt(sum(gi * gi for gi in g))
        coef = min(1.0, max_norm / (norm + 1e-6))
        g = [gi * coef for gi in g]
        for i in range(len(x)):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            mhat = m[i] / (1 - b1**t)
            vhat = v[i] / (1 - b2**t)
            x[i] = x[i] - lr * (mhat / (math.sqrt(vhat) + eps) + wd * x[i])
    return x


def test_composed_chain_matches_independent_reference() -> None:
    def grads(x):  # f = Σ (i+1) x_i² + x_0 x_1
        return [
            2 * (i + 1) * xi + (x[1] if i == 0 else x[0] if i == 1 else 0.0)
            for i, xi in enumerate(x)
        ]

    x0 = [3.0, -2.0, 0.5]
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = descend.Optimizer(
        [x],
        chain(clip_by_global_norm(), scale_by_adam(), add_decayed_weights(), scale_by_lr()),
        lr=0.05,
        betas=(0.9, 0.99),
        eps=1e-8,
        weight_decay=0.01,
        max_norm=2.0,
    )
    for _ in range(100):
        x.grad = torch.tensor(grads(x.tolist()), dtype=torch.float64)
        opt.step()
    expected = _reference_adamw(x0, grads, 100, 0.05, 0.9, 0.99, 1e-8, 0.01, 2.0)
    torch.testing.assert_close(
        x.detach(), torch.tensor(expected, dtype=torch.float64), rtol=1e-10, atol=1e-12
    )


def test_articles_momentum_form_equals_torch_form_only_at_constant_lr() -> None:
    """v ← γv + η∇L, θ ← θ − v (articles) versus b ← μb + g, θ ← θ − ηb (torch)."""

    def run(transform, lr):
        x = torch.tensor([2.0, -1.0], dtype=torch.float64, requires_grad=True)
        opt = descend.Optimizer([x], transform, lr=lr, momentum=0.9)
        for _ in range(30):
            opt.zero_grad()
            (x**2 * torch.tensor([1.0, 3.0], dtype=torch.float64)).sum().backward()
            opt.step()
        return x.detach()

    articles, torch_form = chain(scale_by_lr(), trace()), chain(trace(), scale_by_lr())
    torch.testing.assert_close(run(articles, 0.05), run(torch_form, 0.05), rtol=1e-12, atol=1e-14)
    schedule = step_decay(0.05, 10, gamma=0.1)
    assert not torch.allclose(run(articles, schedule), run(torch_form, schedule), rtol=1e-6)


def test_clip_by_global_norm_matches_torch_utility() -> None:
    g = torch.Generator().manual_seed(1)
    params = [
        torch.randn(4, 3, generator=g, requires_grad=True),
        torch.randn(5, generator=g, requires_grad=True),
    ]
    grads = [torch.randn(p.shape, generator=g) * 10 for p in params]
    ref = [p.detach().clone() for p in params]
    ref_grads = [gr.clone() for gr in grads]
    torch.nn.utils.clip_grad_norm_([torch.nn.Parameter(r) for r in ref], 1.0)  # warm-up of API only
    rp = [torch.nn.Parameter(r) for r in ref]
    for r, gr in zip(rp, ref_grads):
        r.grad = gr
    torch.nn.utils.clip_grad_norm_(rp, 1.0)
    opt = descend.Optimizer(
        params, chain(clip_by_global_norm(), scale_by_lr()), lr=1.0, max_norm=1.0
    )
    for p, gr in zip(params, grads):
        p.grad = gr
    start = [p.detach().clone() for p in params]
    opt.step()
    for p, s, r in zip(params, start, rp):
        torch.testing.assert_close(s - p.detach(), r.grad)
    assert all(torch.equal(p.grad, gr) for p, gr in zip(params, grads))  # grads are not modified


def test_clip_by_value_and_sign() -> None:
    x = torch.zeros(3, requires_grad=True)
    opt = descend.Optimizer([x], chain(clip_by_value(), scale_by_lr()), lr=1.0, clip_value=0.5)
    x.grad = torch.tensor([2.0, -0.1, -3.0])
    opt.step()
    assert x.tolist() == pytest.approx([-0.5, 0.1, 0.5])
    y = torch.zeros(3, requires_grad=True)
    opt = descend.Optimizer([y], chain(sign(), scale_by_lr()), lr=0.1)
    y.grad = torch.tensor([2.0, -0.1, 0.0])
    opt.step()
    assert y.tolist() == pytest.approx([-0.1, 0.1, 0.0])


def test_maximize_climbs() -> None:
    x = torch.tensor([0.0], requires_grad=True)
    opt = descend.SGD([x], lr=0.1, maximize=True)
    for _ in range(100):
        opt.zero_grad()
        (-((x - 2.0) ** 2)).sum().backward()
        opt.step()
    assert x.item() == pytest.approx(2.0, abs=1e-6)
