"""LAMB and cautious() against pytorch-optimizer where they compute the same steps, and
against float64 references written here from the papers; state dicts of the new
optimizers round-trip bit-identically."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import pytorch_optimizer
import torch

import descend
from descend.optim import (
    add_decayed_weights,
    cautious,
    chain,
    maximize,
    scale_by_adam,
    scale_by_lion,
    scale_by_lr,
)
from tests.optim.problems import loss_fn, make_params, run

F32_STEPS, OPS = 40, 16  # LAMB's per-tensor norms add a few roundings per coordinate
F32_TOL = F32_STEPS * OPS * torch.finfo(torch.float32).eps / 2


def _close(got: list, ref: list, dtype: torch.dtype) -> None:
    tol = (1e-10, 1e-12) if dtype == torch.float64 else (F32_TOL, F32_TOL)
    for p, q in zip(got, ref, strict=True):
        torch.testing.assert_close(p, q, rtol=tol[0], atol=tol[1])


def _steps(params: list[torch.Tensor], opt: torch.optim.Optimizer, n: int) -> None:
    for _ in range(n):
        opt.zero_grad()
        loss_fn(params).backward()
        opt.step()


# -- LAMB --------------------------------------------------------------------------------
# With betas=(0, 0) LAMB is a normalised sign-like step that, once it hovers around the
# minimum, doubles a rounding difference every few steps (lr=2e-2, eps=1e-4: 1e-16 apart at
# step 60, 1e-7 at 150): the learning rates keep these runs approaching it for 150 steps.
@pytest.mark.parametrize(
    "opts", [{"lr": 1e-2}, {"lr": 1e-2, "weight_decay": 0.3}, {"lr": 5e-3, "eps": 1e-4}], ids=str
)
@pytest.mark.parametrize("clamp", [10.0, 0.5])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_lamb_matches_pytorch_optimizer_without_averages(
    opts: dict, clamp: float, dtype: torch.dtype
) -> None:
    """With betas=(0, 0) there is nothing to bias-correct, and pytorch-optimizer's Lamb with
    the decay inside the trust ratio (weight_decouple=False) is the paper's rule: the
    same operations (norms, clamp, eps, zero-norm rule), float64 within 1e-10 over 150
    steps. clamp 0.5 is below every weight norm here, so the cap acts."""
    steps = 150 if dtype == torch.float64 else F32_STEPS
    second = {"lr": opts["lr"] / 2, "weight_decay": 0.05}

    def reference(groups: list) -> torch.optim.Optimizer:
        opt = pytorch_optimizer.Lamb(
            groups, betas=(0.0, 0.0), weight_decouple=False, foreach=False, **opts
        )
        opt.clamp = clamp
        return opt

    ref, _ = run(reference, dtype, steps=steps, group_options=({}, second))
    got, _ = run(
        lambda g: descend.LAMB(g, betas=(0.0, 0.0), clamp_value=clamp, **opts),
        dtype,
        steps=steps,
        group_options=({}, second),
    )
    _close(got, ref, dtype)


def _lamb_reference(params, steps, lr, b1, b2, eps, wd, clamp):
    """The paper's Algorithm 2 (bias-corrected moments, decay inside the ratio, phi = min(.,
    clamp)), float64, per-parameter steps; parameter j skips steps with (t + j) % 7 == 0."""
    xs = [p.detach().clone() for p in params]
    ms, vs = [torch.zeros_like(x) for x in xs], [torch.zeros_like(x) for x in xs]
    count = [0] * len(xs)
    for t in range(steps):
        xr = [x.clone().requires_grad_() for x in xs]
        grads = torch.autograd.grad(loss_fn(xr), xr)
        for j, g in enumerate(grads):
            if (t + j) % 7 == 0:
                continue
            count[j] += 1
            s = count[j]
            ms[j] = b1 * ms[j] + (1 - b1) * g
            vs[j] = b2 * vs[j] + (1 - b2) * g * g
            r = (ms[j] / (1 - b1**s)) / ((vs[j] / (1 - b2**s)).sqrt() + eps) + wd * xs[j]
            w, n = min(float(xs[j].norm()), clamp), float(r.norm())
            ratio = w / (n + eps) if w > 0 and n > 0 else 1.0
            xs[j] = xs[j] - lr * ratio * r
    return xs


@pytest.mark.parametrize(
    "opts", [{}, {"weight_decay": 0.1, "betas": (0.8, 0.99), "clamp_value": 1.0}]
)
def test_lamb_matches_the_papers_rule_in_float64(opts: dict) -> None:
    full = {
        "lr": 1e-2,
        "betas": (0.9, 0.999),
        "eps": 1e-6,
        "weight_decay": 0.0,
        "clamp_value": 10.0,
        **opts,
    }
    b1, b2 = full["betas"]
    expected = _lamb_reference(
        make_params(torch.float64),
        150,
        full["lr"],
        b1,
        b2,
        full["eps"],
        full["weight_decay"],
        full["clamp_value"],
    )
    got, _ = run(lambda g: descend.LAMB(g, **full), torch.float64, steps=150)
    _close(got, expected, torch.float64)


def test_lamb_moves_a_zero_initialised_tensor() -> None:
    """A zero weight norm leaves the update unscaled (trust ratio 1), so a bias at 0 moves."""
    b = torch.zeros(3, requires_grad=True)
    opt = descend.LAMB([b], lr=0.1)
    (b - 1).pow(2).sum().backward()
    opt.step()
    torch.testing.assert_close(b.detach(), torch.full((3,), 0.1), rtol=1e-5, atol=0)


# -- cautious ----------------------------------------------------------------------------
_C_LION = chain(maximize(), cautious(scale_by_lion()), add_decayed_weights(), scale_by_lr())


@pytest.mark.parametrize("maximizing", [False, True])
def test_cautious_lion_matches_pytorch_optimizer(maximizing: bool) -> None:
    """pytorch-optimizer's Lion(cautious=True) masks sign(c) against the gradient with the
    paper's d / (nnz + 1): the same operations, float64 within 1e-10 over 300 steps."""
    opts = {"lr": 2e-3, "betas": (0.9, 0.99), "weight_decay": 0.1, "maximize": maximizing}
    ref, _ = run(
        lambda g: pytorch_optimizer.Lion(g, cautious=True, **opts),
        torch.float64,
        maximize=maximizing,
    )
    got, _ = run(
        lambda g: descend.Optimizer(g, _C_LION, **opts), torch.float64, maximize=maximizing
    )
    plain, _ = run(lambda g: descend.Lion(g, **opts), torch.float64, maximize=maximizing)
    _close(got, ref, torch.float64)
    assert max(float((p - q).detach().abs().max()) for p, q in zip(got, plain) if p.numel()) > 1e-3


def _cautious_adamw_reference(params, steps, lr, b1, b2, eps, wd):
    """C-AdamW (the paper's Algorithm 2 on torch's AdamW): the mask of m_t * g_t > 0,
    rescaled by d / (nnz + 1), applied to the Adam direction; decay not masked."""
    xs = [p.detach().clone() for p in params]
    ms, vs = [torch.zeros_like(x) for x in xs], [torch.zeros_like(x) for x in xs]
    for s in range(1, steps + 1):
        xr = [x.clone().requires_grad_() for x in xs]
        grads = torch.autograd.grad(loss_fn(xr), xr)
        for j, g in enumerate(grads):
            ms[j] = b1 * ms[j] + (1 - b1) * g
            vs[j] = b2 * vs[j] + (1 - b2) * g * g
            u = (ms[j] / (1 - b1**s)) / ((vs[j] / (1 - b2**s)).sqrt() + eps)
            phi = (u * g > 0).double()
            u = u * phi * (phi.numel() / (phi.sum() + 1))
            xs[j] = xs[j] * (1 - lr * wd) - lr * u
    return xs


def test_cautious_adamw_matches_the_papers_rule_in_float64() -> None:
    c_adamw = chain(maximize(), cautious(scale_by_adam()), add_decayed_weights(), scale_by_lr())
    params = make_params(torch.float64)
    expected = _cautious_adamw_reference(params, 150, 1e-2, 0.9, 0.999, 1e-8, 0.1)
    opt = descend.Optimizer(params, c_adamw, lr=1e-2, weight_decay=0.1)
    _steps(params, opt, 150)
    _close(params, expected, torch.float64)


def test_cautious_refuses_a_transform_that_already_applied_the_learning_rate() -> None:
    with pytest.raises(ValueError, match="before scale_by_lr.*Got scale_by_adam -> scale_by_lr"):
        cautious(chain(scale_by_adam(), scale_by_lr()))


def test_cautious_chain_pickles_and_deep_copies() -> None:
    x = torch.ones(3, requires_grad=True)
    opt = descend.Optimizer([x], _C_LION, lr=0.1)
    for clone in (pickle.loads(pickle.dumps(opt)), copy.deepcopy(opt)):
        assert clone.transform.name == _C_LION.name


# -- state dicts -------------------------------------------------------------------------
ROUND_TRIP = {
    "Lion": lambda p: descend.Lion(p, lr=1e-3, weight_decay=0.1),
    "AdEMAMix": lambda p: descend.AdEMAMix(p, lr=1e-2, alpha=5.0, alpha_warmup=30, beta3_warmup=30),
    "LAMB": lambda p: descend.LAMB(p, lr=1e-2, weight_decay=0.1),
    "cautious Lion": lambda p: descend.Optimizer(p, _C_LION, lr=1e-3),
}


@pytest.mark.parametrize("name", list(ROUND_TRIP))
def test_round_trip_continues_bit_identically(name: str) -> None:
    make = ROUND_TRIP[name]
    params = make_params(torch.float64)
    opt = make(params)
    _steps(params, opt, 20)
    saved_params = [p.detach().clone() for p in params]
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    _steps(params, opt, 20)
    resumed = [p.clone().detach().requires_grad_() for p in saved_params]
    fresh = make(resumed)
    buf.seek(0)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    _steps(resumed, fresh, 20)
    for a, b in zip(resumed, params, strict=True):
        assert torch.equal(a.detach(), b.detach())
