"""Shared random problems for optimizer tests: mixed shapes, several groups, missing grads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def make_params(dtype: torch.dtype, seed: int = 0) -> list[torch.Tensor]:
    """Leaf tensors of mixed shapes: matrix, 0-d, empty, vector, non-contiguous."""
    g = torch.Generator().manual_seed(seed)

    def leaf(t: torch.Tensor) -> torch.Tensor:
        return t.detach().requires_grad_()

    non_contiguous = torch.randn(6, 4, generator=g, dtype=dtype).t()  # a transposed view
    params = [
        leaf(torch.randn(3, 4, generator=g, dtype=dtype)),
        leaf(torch.randn((), generator=g, dtype=dtype)),
        leaf(torch.randn(0, generator=g, dtype=dtype)),
        leaf(torch.randn(5, generator=g, dtype=dtype)),
        leaf(non_contiguous),
    ]
    assert not params[-1].is_contiguous()
    return params


def loss_fn(params: list[torch.Tensor], seed: int = 1) -> torch.Tensor:
    """A smooth, bounded-below objective with different curvature per coordinate."""
    g = torch.Generator().manual_seed(seed)
    total = params[0].new_zeros(())
    for p in params:
        a = torch.rand(p.shape, generator=g, dtype=p.dtype) * 2 + 0.1
        c = torch.randn(p.shape, generator=g, dtype=p.dtype)
        total = total + (a * (p - c) ** 2).sum() + 0.05 * (p**4).sum()
    return total


def run(
    make: Callable[[list[dict[str, Any]]], torch.optim.Optimizer],
    dtype: torch.dtype,
    *,
    steps: int = 300,
    maximize: bool = False,
    group_options: tuple[dict[str, Any], dict[str, Any]] = ({}, {}),
    seed: int = 0,
) -> tuple[list[torch.Tensor], torch.optim.Optimizer]:
    """Run ``steps`` updates; parameter ``j`` has no gradient on steps where (t + j) % 7 == 0."""
    params = make_params(dtype, seed)
    groups = [
        {"params": params[:3], **group_options[0]},
        {"params": params[3:], **group_options[1]},
    ]
    opt = make(groups)
    for t in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(params)
        (-loss if maximize else loss).backward()
        for j, p in enumerate(params):
            if (t + j) % 7 == 0:
                p.grad = None
        opt.step()
    return params, opt
