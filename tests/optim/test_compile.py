"""One source, two execution modes: a composed chain eagerly and under torch.compile."""

from __future__ import annotations

import pytest
import torch

import descend
from descend.optim import (
    add_decayed_weights,
    chain,
    clip_by_global_norm,
    scale_by_adam,
    scale_by_lr,
)


def test_compiled_chain_gives_the_same_numbers_as_eager() -> None:
    def run(compile: bool) -> list[torch.Tensor]:
        g = torch.Generator().manual_seed(0)
        params = [
            torch.randn(8, generator=g, requires_grad=True),
            torch.randn(3, 2, generator=g, requires_grad=True),
        ]
        opt = descend.Optimizer(
            params,
            chain(clip_by_global_norm(), scale_by_adam(), add_decayed_weights(), scale_by_lr()),
            compile=compile,
            lr=0.01,
            weight_decay=0.01,
            max_norm=1.0,
        )
        for _ in range(5):
            opt.zero_grad()
            sum((p**2).sum() for p in params).backward()
            opt.step()
        return [p.detach() for p in params]

    eager, compiled = run(False), run(True)
    for a, b in zip(eager, compiled, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert not torch.equal(eager[0], torch.randn(8, generator=torch.Generator().manual_seed(0)))


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("Adamax", {"lr": 0.01, "weight_decay": 0.1}),
        ("NAdam", {"lr": 0.01, "weight_decay": 0.1}),
        ("RAdam", {"lr": 0.01, "betas": (0.9, 0.9)}),  # rectified from step 6 of 8
        ("Adadelta", {"lr": 1.0, "eps": 1e-4}),
        ("ASGD", {"lr": 0.01, "t0": 3, "lambd": 0.1}),
        ("Rprop", {"lr": 0.01}),
    ],
)
def test_compiled_catalogue_rules_give_the_eager_numbers(name: str, kwargs: dict) -> None:
    """The rules added with the rest of torch.optim read the step as 0-d tensors when
    compiled (their branches on the step are written for both)."""

    def run(compile: bool) -> list[torch.Tensor]:
        g = torch.Generator().manual_seed(0)
        params = [
            torch.randn(8, generator=g, requires_grad=True),
            torch.randn(3, 2, generator=g, requires_grad=True),
        ]
        opt = descend.Optimizer(params, getattr(descend, name).transform, compile=compile, **kwargs)
        for _ in range(8):
            opt.zero_grad()
            sum((p**2 + p**4).sum() for p in params).backward()
            opt.step()
        return [p.detach() for p in params]

    for a, b in zip(run(False), run(True), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
