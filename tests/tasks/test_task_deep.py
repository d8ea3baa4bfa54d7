"""Vanishing gradients at initialisation: the sigmoid stack's first layer starves, the residual twin's does not."""

from __future__ import annotations

import pytest
import torch

from descend.tasks import get_task
from descend.tasks.deep import INITS


def _first_last_grad_norms(
    name: str, init: str, seed: int, depth: int | None = None
) -> tuple[float, float]:
    options = {"init": init} if depth is None else {"init": init, "depth": depth}
    task = get_task(name, **options)
    data = task.data(seed)
    model = task.model(seed)
    model.train()
    x, y = data.train
    task.loss(model(x[:128]), y[:128]).backward()
    # The linear layers' weights, in order from input to output.
    weights = [p for _, p in model.named_parameters() if p.dim() == 2]
    return weights[0].grad.norm().item(), weights[-1].grad.norm().item()


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("seed", [0, 1])
def test_sigmoid_first_layer_gradient_is_orders_of_magnitude_smaller(init: str, seed: int) -> None:
    first, last = _first_last_grad_norms("deep_sigmoid", init, seed)
    assert first > 0
    assert last / first >= 100, f"ratio {last / first:.3g}"


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("seed", [0, 1])
def test_residual_first_layer_gradient_is_comparable(init: str, seed: int) -> None:
    first, last = _first_last_grad_norms("deep_residual", init, seed)
    assert 0.1 <= last / first <= 10, f"ratio {last / first:.3g}"


def test_depth_20_sigmoid_vanishes_far_more() -> None:
    first8, last8 = _first_last_grad_norms("deep_sigmoid", "xavier", 0)
    first20, last20 = _first_last_grad_norms("deep_sigmoid", "xavier", 0, depth=20)
    assert last20 / first20 > 1e6 * (last8 / first8) > 1e8
    first, last = _first_last_grad_norms("deep_residual", "he", 0, depth=20)
    assert 0.1 <= last / first <= 10


def test_both_models_have_the_stated_depth() -> None:
    for name in ("deep_sigmoid", "deep_residual"):
        for depth in (8, 20):
            model = get_task(name, depth=depth).model(0)
            linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
            assert len(linears) == depth
