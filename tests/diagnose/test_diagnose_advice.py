"""Advice agrees with the loss: a run that blew up is never told its learning rate is too small,
and a loss that rose is said to have risen."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from descend.diagnose import diagnose_history, lr_find
from descend.diagnose.record import HealthRecord


def tiny_update_records(steps: int) -> list[HealthRecord]:
    # Updates a millionth of the weights' size: what huge weights after a blow-up look like.
    return [
        HealthRecord(step=s, loss=1.0, grad_norms={"w": 1.0}, update_ratios={"w": 1e-6})
        for s in range(1, steps + 1, 5)
    ]


def test_a_loss_that_jumped_and_stayed_up_is_lr_too_large_not_too_small() -> None:
    # As ``train digits --optimizer sgd --lr 1e6``: 2.4 before the first update, then ~5e5.
    losses = [2.43] + [4e5 + 1e5 * math.sin(i) for i in range(1, 40)]
    history = {
        "steps": [
            {"step": i + 1, "loss": v, "grad_norm": 1.0, "lr": 1e6} for i, v in enumerate(losses)
        ]
    }
    kinds = [v.kind for v in diagnose_history(history, tiny_update_records(40))]
    assert "lr_too_large" in kinds and "lr_too_small" not in kinds
    (verdict,) = [v for v in diagnose_history(history, tiny_update_records(40))]
    assert "rose from 2.43 at the start" in verdict.message and "diverged" in verdict.message


def test_a_loss_that_rose_a_little_is_said_to_have_risen() -> None:
    losses = [1.0 * (1 + 0.0005 * i) for i in range(40)]  # +2% over the run, tiny lr
    history = {
        "steps": [
            {"step": i + 1, "loss": v, "grad_norm": 1.0, "lr": 1e-7} for i, v in enumerate(losses)
        ]
    }
    (verdict,) = diagnose_history(history, tiny_update_records(40))
    assert verdict.kind == "lr_too_small"
    assert "the loss rose 1.7%" in verdict.message and "fell only -" not in verdict.message


def linear_problem() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    return nn.Linear(4, 1), (x, x.sum(1, keepdim=True))


@pytest.mark.parametrize(
    ("bounds", "words"),
    [
        ({"end_lr": math.inf}, "'end_lr' parameter of lr_find must be a float > 0. Got inf"),
        ({"start_lr": math.nan}, "'start_lr'"),
        ({"num_steps": 2}, "'num_steps' parameter of lr_find must be an int >= 10. Got 2"),
    ],
)
def test_lr_find_refuses_non_finite_bounds_and_too_few_steps(bounds, words) -> None:
    model, data = linear_problem()
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(".", r"\.")):
        lr_find(model, data, nn.MSELoss(), batch_size=None, **bounds)


def test_lr_find_says_when_its_curve_is_too_short_to_suggest_anything() -> None:
    model, data = linear_problem()
    # Diverges within its first steps: nothing to read a valley from.
    result = lr_find(
        model, data, nn.MSELoss(), start_lr=50.0, end_lr=1e6, num_steps=20, batch_size=None
    )
    assert result.suggestions == {}
    assert "too short to suggest a learning rate" in result.note
    with pytest.raises(ValueError, match="No learning rate to apply"):
        result.apply(torch.optim.SGD(model.parameters(), lr=0.1))
