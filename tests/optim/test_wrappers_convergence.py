"""lookahead, ema and SAM on the κ=100 quadratic and Rosenbrock of test_convergence
(float64; learning rates, budgets and tolerances stated per case)."""

from __future__ import annotations

import torch

import descend
from descend.optim import averaged_weights, chain, ema, lookahead, scale_by_adam, scale_by_lr
from tests.optim.test_convergence import quadratic, rosenbrock

ADAM = chain(scale_by_adam(), scale_by_lr())


def _descend(f, x0: list[float], opt_of, steps: int):
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = opt_of([x])
    for _ in range(steps):
        opt.zero_grad()
        f(x).backward()
        opt.step()
    return x, opt


def test_lookahead_adam_reaches_both_minima() -> None:
    # Adam's settings of test_convergence (lr 0.05 quadratic, 0.02 Rosenbrock); pulling back
    # half-way every 5 steps slows progress along Rosenbrock's valley: twice Adam's budget.
    x, _ = _descend(
        quadratic, [1.0] * 10, lambda p: descend.Optimizer(p, lookahead(ADAM), lr=0.05), 1000
    )
    assert x.abs().max() < 1e-8
    x, _ = _descend(
        rosenbrock, [-1.2, 1.0], lambda p: descend.Optimizer(p, lookahead(ADAM), lr=0.02), 8000
    )
    assert (x - 1).abs().max() < 1e-4


def test_the_ema_of_gd_reaches_the_minimum() -> None:
    # gd at lr 0.015 < 2/λmax (as test_convergence); the average trails the iterates by
    # ~1/(1 - decay) = 10 steps, each contracting by at least 1 - 0.015 (λmin = 1).
    x, opt = _descend(
        quadratic,
        [1.0] * 10,
        lambda p: descend.Optimizer(p, ema(descend.SGD.transform, 0.9), lr=0.015),
        1000,
    )
    with averaged_weights(opt):
        assert x.abs().max() < 1e-5


def test_sam_settles_within_rho_of_the_minimum() -> None:
    """SAM's perturbation has length ρ at every step, however small the gradient, so on a
    quadratic it does not stop at the minimizer: it ends in a cycle (here of period 2,
    along the stiffest axis) at a distance of order ρ (measured 0.018 for ρ = 0.05, 0.010
    to 0.012 for ρ = 0.01, with momentum 0.9). ρ → 0 is SGD."""
    for rho in (0.05, 0.01):
        last = _sam_norms(rho, settle=1000, keep=10)
        assert rho / 10 < min(last) and max(last) <= 2 * rho


def _sam_norms(rho: float, settle: int, keep: int) -> list[float]:
    """|x| over ``keep`` SAM(SGD, momentum 0.9) steps after ``settle`` on the quadratic."""
    x = torch.ones(10, dtype=torch.float64, requires_grad=True)
    opt = descend.SAM([x], descend.SGD, rho=rho, lr=0.01, momentum=0.9)

    def closure():
        opt.zero_grad()
        loss = quadratic(x)
        loss.backward()
        return loss

    for _ in range(settle):
        opt.step(closure)
    last = []
    for _ in range(keep):
        opt.step(closure)
        last.append(float(x.detach().norm()))
    return last
