"""Curvature of a model from Hessian-vector products, against the explicit Hessian."""

from __future__ import annotations

import pytest
import torch
from diag_problems import quadratic
from torch import nn

from descend.curvature import hessian_eigenvalues
from descend.diagnose import curvature, flat_loss


def _small_net() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    X = torch.randn(20, 3, dtype=torch.float64)
    y = torch.randn(20, 2, dtype=torch.float64)
    return model, (X, y)


def test_eigenvalues_match_the_explicit_hessian_of_a_small_network():
    model, data = _small_net()
    f, theta = flat_loss(model, data, nn.MSELoss())
    n = theta.numel()  # 26 parameters
    H = torch.autograd.functional.hessian(f, theta)
    exact = torch.linalg.eigvalsh(H)
    assert exact[0] < 0 < exact[-1]  # a non-convex point: both ends are tested
    c = curvature(model, data, nn.MSELoss(), iters=n)
    assert c.largest == pytest.approx(float(exact[-1]), rel=1e-4)
    assert c.smallest == pytest.approx(float(exact[0]), rel=1e-4)
    assert c.stability_lr == pytest.approx(2 / float(exact[-1]), rel=1e-4)
    ritz = hessian_eigenvalues(f, theta, iters=n)
    torch.testing.assert_close(ritz, exact, rtol=1e-4, atol=1e-8)
    # With the default 20 steps the largest eigenvalue has converged already.
    assert curvature(model, data, nn.MSELoss()).largest == pytest.approx(float(exact[-1]), rel=1e-4)


class _Saddle(nn.Module):
    """The loss x^2 - y^2 of the parameter (x, y), whatever the batch."""

    def __init__(self) -> None:
        super().__init__()
        self.xy = nn.Parameter(torch.zeros(2, dtype=torch.float64))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return (self.xy[0] ** 2 - self.xy[1] ** 2).expand(inputs.shape[0])


def test_smallest_eigenvalue_at_the_saddle_of_x2_minus_y2_is_minus_two():
    c = curvature(_Saddle(), (torch.zeros(3, 1), torch.zeros(3)), lambda out, y: out.mean())
    assert c.smallest == pytest.approx(-2.0, abs=1e-10)
    assert c.largest == pytest.approx(2.0, abs=1e-10)
    assert c.grad_norm == pytest.approx(0.0, abs=1e-12)
    assert [v.kind for v in c.verdicts()] == ["saddle"]


def test_sharpness_of_a_quadratic_and_the_stability_limit():
    model, data, lam = quadratic()
    c = curvature(model, data, nn.MSELoss())
    assert c.largest == pytest.approx(lam, rel=1e-4)
    kinds = [v.kind for v in c.verdicts(lr=10 * c.stability_lr)]
    assert kinds == ["lr_too_large"]
    assert [v.kind for v in c.verdicts(lr=0.5 * c.stability_lr)] == ["healthy"]


def test_batchnorm_is_evaluated_in_eval_mode_and_the_mode_restored():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 1)).double()
    X, y = torch.randn(16, 3, dtype=torch.float64), torch.randn(16, 1, dtype=torch.float64)
    model.train()
    stats = model[1].running_mean.clone()
    got = curvature(model, (X, y), nn.MSELoss(), iters=40)
    assert model.training
    assert torch.equal(model[1].running_mean, stats)  # eval mode: running stats untouched
    model.eval()
    f, theta = flat_loss(model, (X, y), nn.MSELoss())
    exact = torch.linalg.eigvalsh(torch.autograd.functional.hessian(f, theta))
    assert got.largest == pytest.approx(float(exact[-1]), rel=1e-4)
