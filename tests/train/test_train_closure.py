"""fit with optimizers that step with a closure: SAM (two passes per step) and LBFGS."""

from __future__ import annotations

import pytest
import torch

import descend
from descend._validation import InvalidParameterError
from descend.train import fit
from descend.train.closure import check_closure_step, needs_closure
from tests.train.train_problems import mlp, regression

X, Y = regression(n=40, d=3, dtype=torch.float64)


def test_fit_drives_sam_as_the_documented_loop_does() -> None:
    """Full batch, 15 steps: fit's SAM run (its closure: the same batch again, at the
    perturbed weights) equals SAM's documented loop, bit for bit."""
    by_fit, by_hand = mlp().double(), mlp().double()
    fit_opt = descend.SAM(by_fit.parameters(), descend.SGD, rho=0.05, lr=0.1, momentum=0.9)
    fit(by_fit, (X, Y), torch.nn.MSELoss(), fit_opt, max_steps=15, progress=False)

    opt = descend.SAM(by_hand.parameters(), descend.SGD, rho=0.05, lr=0.1, momentum=0.9)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.MSELoss()(by_hand(X), Y)
        loss.backward()
        return loss

    for _ in range(15):
        closure()
        opt.step(closure)
    for a, b in zip(by_fit.parameters(), by_hand.parameters(), strict=True):
        assert torch.equal(a, b)
    # The closure really ran: SAM's step differs from its base optimizer's.
    plain = mlp().double()
    fit(
        plain,
        (X, Y),
        torch.nn.MSELoss(),
        descend.SGD(plain.parameters(), lr=0.1, momentum=0.9),
        max_steps=15,
        progress=False,
    )
    assert not torch.equal(next(plain.parameters()), next(by_fit.parameters()))


def test_fit_clips_both_of_sams_gradients() -> None:
    """clip_grad_norm with SAM clips the gradient at w (the perturbation's direction) and
    the one at w + eps (the one the base step uses), as a hand loop with torch's
    clip_grad_norm_ after each backward does. float64, 15 steps: within 1e-12 (the two
    norms are summed in another order: a few ulps per step); clipping only the first
    gradient ends elsewhere (checked, so the test can tell)."""
    limit = 0.05

    def by_hand(second: bool) -> torch.nn.Module:
        model = mlp().double()
        opt = descend.SAM(model.parameters(), descend.SGD, rho=0.05, lr=0.1, momentum=0.9)

        def closure(clip: bool) -> torch.Tensor:
            opt.zero_grad()
            loss = torch.nn.MSELoss()(model(X), Y)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), limit)
            return loss

        for _ in range(15):
            closure(True)
            opt.step(lambda: closure(second))
        return model

    model = mlp().double()
    opt = descend.SAM(model.parameters(), descend.SGD, rho=0.05, lr=0.1, momentum=0.9)
    history = fit(
        model, (X, Y), torch.nn.MSELoss(), opt, max_steps=15, clip_grad_norm=limit, progress=False
    )
    assert min(r["grad_norm"] for r in history.steps) > limit  # every step clipped
    both, first_only = by_hand(True), by_hand(False)
    for a, b, c in zip(model.parameters(), both.parameters(), first_only.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
        assert (a - c).abs().max() > 1e-6


def test_fit_drives_lbfgs_to_the_least_squares_solution() -> None:
    """A linear model, full batch: LBFGS (strong Wolfe line search, its closure evaluating
    the loss again and again) reaches the normal equations' solution within 1e-8."""
    model = torch.nn.Linear(3, 1, bias=False).double()
    opt = torch.optim.LBFGS(
        model.parameters(),
        lr=1,
        max_iter=50,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-14,
        tolerance_change=1e-16,
    )
    fit(model, (X, Y), torch.nn.MSELoss(), opt, max_steps=3, progress=False)
    exact = torch.linalg.lstsq(X, Y).solution.T
    torch.testing.assert_close(model.weight.detach(), exact, rtol=1e-8, atol=1e-10)


def test_which_optimizers_need_a_closure_and_what_is_refused() -> None:
    w = [torch.nn.Parameter(torch.ones(2))]
    assert needs_closure(torch.optim.LBFGS(w)) and needs_closure(
        descend.SAM(w, descend.SGD, lr=0.1)
    )
    assert not needs_closure(descend.SGD(w, lr=0.1)) and not needs_closure(torch.optim.Adam(w))
    with pytest.raises(InvalidParameterError, match="precision='fp16'; use 'bf16' or 'fp32'"):
        check_closure_step(descend.SAM(w, descend.SGD, lr=0.1), "fp16", 1)
    with pytest.raises(InvalidParameterError, match="LBFGS cannot run on 2 processes"):
        check_closure_step(torch.optim.LBFGS(w), "fp32", 2)
    with pytest.raises(InvalidParameterError, match="no effect on LBFGS"):
        check_closure_step(torch.optim.LBFGS(w), "fp32", 1, clipping=True)
    check_closure_step(descend.SAM(w, descend.SGD, lr=0.1), "bf16", 2, clipping=True)  # allowed
    model = torch.nn.Linear(3, 1).double()
    with pytest.raises(InvalidParameterError, match="no effect on LBFGS"):
        fit(
            model,
            (X, Y),
            torch.nn.MSELoss(),
            torch.optim.LBFGS(model.parameters()),
            max_steps=1,
            clip_grad_norm=1.0,
            progress=False,
        )
