"""centralize_gradient: against pytorch-optimizer's centralize_gradient, and SGD on
centralized gradients computed here (float64, 100 steps)."""

from __future__ import annotations

import pickle

import pytest
import torch

import descend
from descend.optim import centralize_gradient, chain, lookahead, scale_by_lr, trace
from tests.optim.problems import loss_fn

pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
from pytorch_optimizer.optimizer.gradient_centralization import (
    centralize_gradient as reference,
)

SHAPES = [(4, 3, 3, 3), (5, 2, 3), (6, 7), (7, 6), (5,), (), (0, 3)]


def _grads() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(s, generator=g, dtype=torch.float64) for s in SHAPES]


@pytest.mark.parametrize("conv_only", [False, True])
def test_matches_pytorch_optimizer(conv_only: bool) -> None:
    grads = _grads()
    ours = centralize_gradient().update(grads, {}, grads, {"gc_conv_only": conv_only})
    for g, got in zip(grads, ours, strict=True):
        expected = g.clone()
        reference(expected, gc_conv_only=conv_only)
        assert torch.equal(got, expected)  # the same operation: g - mean
        lowest = 4 if conv_only else 2
        assert torch.equal(got, g) == (g.dim() < lowest or g.numel() == 0)
        if g.dim() >= lowest and g.numel():
            means = got.mean(dim=tuple(range(1, g.dim())))
            torch.testing.assert_close(means, torch.zeros_like(means), rtol=0, atol=1e-15)


def test_sgd_on_centralized_gradients() -> None:
    """descend chain vs torch.optim.SGD stepped on gradients centralized here."""
    g = torch.Generator().manual_seed(1)
    start = [torch.randn(s, generator=g, dtype=torch.float64) for s in SHAPES]
    ours = [s.clone().requires_grad_() for s in start]
    theirs = [s.clone().requires_grad_() for s in start]
    opt = descend.Optimizer(
        [{"params": ours[:3]}, {"params": ours[3:], "lr": 0.005}],
        chain(centralize_gradient(), trace(), scale_by_lr()),
        lr=0.01,
        momentum=0.9,
    )
    ref = torch.optim.SGD(
        [{"params": theirs[:3]}, {"params": theirs[3:], "lr": 0.005}],
        lr=0.01,
        momentum=0.9,
        foreach=False,
    )
    for _ in range(100):
        for ps, o in ((ours, opt), (theirs, ref)):
            o.zero_grad()
            loss_fn(ps).backward()
        for p in theirs:
            if p.dim() > 1:
                p.grad -= p.grad.mean(dim=tuple(range(1, p.dim())), keepdim=True)
        opt.step()
        ref.step()
    for p, q, s in zip(ours, theirs, start, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)
        if p.dim() > 1 and p.numel():  # each output channel's mean is where it started
            dims = tuple(range(1, p.dim()))
            torch.testing.assert_close(p.detach().mean(dims), s.mean(dims), rtol=1e-10, atol=1e-12)
    assert not torch.allclose(ours[0], start[0])


def test_composes_and_pickles() -> None:
    rule = lookahead(chain(centralize_gradient(), scale_by_lr()))
    assert not rule.elementwise  # it needs each tensor's shape
    opt = descend.Optimizer([torch.zeros(2, 2, requires_grad=True)], rule, lr=0.1)
    assert pickle.loads(pickle.dumps(opt.transform)).name == rule.name
