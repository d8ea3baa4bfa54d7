"""The learning-rate range test: suggestions inside the stable range, and nothing left changed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diag_problems import quadratic
from torch import nn

from descend.diagnose import SUGGESTIONS, lr_find, valley_index


def test_suggestions_on_a_quadratic_lie_in_the_stable_range():
    model, data, lam = quadratic()
    result = lr_find(model, data, nn.MSELoss(), "gd", batch_size=None)
    assert set(result.suggestions) == set(SUGGESTIONS)
    for name, lr in result.suggestions.items():
        assert 0 < lr < 2 / lam, name
    # Past the stable limit the loss grows: the sweep stops there.
    assert result.stop_reason.startswith("Diverged")
    assert result.lrs[-1] > 2 / lam
    assert len(result.lrs) == len(result.losses) == len(result.smoothed) < 100


def test_smoothing_is_a_bias_corrected_moving_average():
    model, data, _ = quadratic()
    r = lr_find(model, data, nn.MSELoss(), batch_size=None, num_steps=30, end_lr=1e-3, smooth=0.9)
    avg = 0.0
    for i, (loss, s) in enumerate(zip(r.losses, r.smoothed, strict=True)):
        avg = 0.9 * avg + 0.1 * loss
        assert s == pytest.approx(avg / (1 - 0.9 ** (i + 1)), rel=1e-12)
    assert r.lrs[0] == pytest.approx(1e-7) and r.lrs[-1] == pytest.approx(1e-3)
    assert r.stop_reason == "All 30 steps done."


def test_model_and_optimizer_state_are_restored_exactly():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    X, y = torch.randn(96, 4), torch.randint(0, 3, (96,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):  # give the optimizer moments and a step count
        opt.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        opt.step()
    model.eval()
    before_model = {k: v.clone() for k, v in model.state_dict().items()}
    before_opt = opt.state_dict()
    before_opt = {
        "state": {
            k: {n: t.clone() if torch.is_tensor(t) else t for n, t in s.items()}
            for k, s in before_opt["state"].items()
        },
        "lrs": [g["lr"] for g in opt.param_groups],
    }
    before_grads = [p.grad.clone() for p in model.parameters()]

    result = lr_find(model, (X, y), nn.functional.cross_entropy, opt, num_steps=40, batch_size=32)
    assert len(result.lrs) > 5

    after = model.state_dict()
    assert after.keys() == before_model.keys()
    for k, v in before_model.items():
        assert torch.equal(after[k], v), k
    assert not model.training
    state = opt.state_dict()["state"]
    for k, s in before_opt["state"].items():
        for n, t in s.items():
            assert torch.equal(torch.as_tensor(state[k][n]), torch.as_tensor(t)), (k, n)
    assert [g["lr"] for g in opt.param_groups] == before_opt["lrs"]
    for p, g in zip(model.parameters(), before_grads, strict=True):
        assert torch.equal(p.grad, g)


def test_apply_sets_every_group_only_when_asked():
    model, data, _ = quadratic()
    opt = torch.optim.SGD([{"params": [model.weight]}, {"params": [], "lr": 0.5}], lr=0.01)
    result = lr_find(model, data, nn.MSELoss(), opt, batch_size=None, num_steps=50)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.5]
    lr = result.apply(opt, which="steepest")
    assert lr == result.suggestions["steepest"]
    assert [g["lr"] for g in opt.param_groups] == [lr, lr]


def test_valley_is_the_middle_of_the_longest_descent():
    flat_then_down_then_up = np.array([5.0] * 10 + list(np.linspace(5.0, 1.0, 21)[1:]) + [2.0, 9.0])
    i = valley_index(flat_then_down_then_up)
    assert 10 + 7 <= i <= 10 + 13  # the middle of the 20-point descent, not its flat start


def test_bad_settings_are_refused():
    model, data, _ = quadratic()
    with pytest.raises(ValueError, match="end_lr > start_lr"):
        lr_find(model, data, nn.MSELoss(), start_lr=1.0, end_lr=0.1)
    with pytest.raises(ValueError, match="'smooth' parameter of lr_find"):
        lr_find(model, data, nn.MSELoss(), smooth=1.0)


def test_docstring_examples_run():
    import doctest
    import importlib

    # By module path: the package re-exports functions under the same names.
    for name in ("descend.diagnose.lr_find", "descend.diagnose.model_curvature"):
        failures, tried = doctest.testmod(importlib.import_module(name))
        assert tried > 0 and failures == 0, name
