"""descend.Muon against torch.optim.Muon, against a float64 reference written here (the
update rule, and Newton–Schulz's closed form on a known SVD), against Keller Jordan's
formulation; its errors, state dicts, and convergence on a matrix quadratic."""

from __future__ import annotations

import copy
import dataclasses
import math
from unittest import mock

import pytest
import torch

import descend
from descend.optim import (
    add_decayed_weights,
    chain,
    ema_trace,
    orthogonalize,
    scale_by_lr,
    scale_by_shape,
)
from descend.optim.transforms.orthogonalize import NS_COEFFICIENTS, newton_schulz
from descend.schedules import cosine

SHAPES = [(6, 4), (3, 8), (5, 5), (1, 7)]  # tall, wide, square, a single row
STEPS = 100


def _params(dtype: torch.dtype, seed: int = 0, shapes=SHAPES) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=dtype).requires_grad_() for s in shapes]


def _groups(params: list[torch.Tensor]) -> list[dict]:
    # Two groups: torch's defaults but lr, and the other lr scale, nesterov off, more decay.
    return [
        {"params": params[:2], "lr": 0.02},
        {
            "params": params[2:],
            "lr": 0.01,
            "nesterov": False,
            "weight_decay": 0.2,
            "adjust_lr_fn": "match_rms_adamw",
            "momentum": 0.9,
        },
    ]


def _drive(opt: torch.optim.Optimizer, params: list[torch.Tensor], *, feedback: bool) -> None:
    """100 steps. ``feedback``: gradients of a quadratic (they depend on the iterates);
    else seeded random gradients, the same for every optimizer whatever its iterates."""
    g = torch.Generator().manual_seed(1)
    targets = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]
    for _ in range(STEPS):
        for p, c in zip(params, targets, strict=True):
            noise = torch.randn(p.shape, generator=g, dtype=p.dtype)
            p.grad = (p.detach() - c + 0.1 * noise) if feedback else noise
        opt.step()


def _rel(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(((x - y).abs().max() / y.abs().max()).item() for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("feedback", [True, False])
def test_matches_torch_muon_bit_for_bit(feedback: bool, dtype: torch.dtype) -> None:
    """The same operations in the same order (lerp momentum, bfloat16 Newton–Schulz by
    addmm, then ``theta.mul_(1 - lr*wd)`` and ``theta.add_(O, alpha=-(lr*r))``): the same
    numbers, parameters and momentum buffers, over 100 steps of two groups."""
    ours, theirs = _params(dtype), _params(dtype)
    a = descend.Muon(_groups(ours))
    b = torch.optim.Muon(_groups(theirs))
    _drive(a, ours, feedback=feedback)
    _drive(b, theirs, feedback=feedback)
    assert all(torch.equal(p, q) for p, q in zip(ours, theirs, strict=True))
    for p, q in zip(ours, theirs, strict=True):
        assert torch.equal(a.state[p]["momentum_buffer"], b.state[q]["momentum_buffer"])


def test_the_materialized_update_matches_the_folded_step_within_rounding() -> None:
    """Where the step cannot fold (a compiled or differentiable one), the chain
    materializes u = r*O + wd*theta and adds -lr*u: float64, the same bfloat16 iteration
    inputs while the iterates agree to ~1e-16 (a difference that crosses a bfloat16
    rounding boundary has odds ~1e-16 / 2**-8 per element), then a few float64 roundings
    per step, far below 1e-10 after 100 steps."""
    folded, plain = _params(torch.float64), _params(torch.float64)
    a = descend.Muon(_groups(folded))
    b = descend.Muon(_groups(plain))
    b.transform = dataclasses.replace(b.transform, apply=None)
    decayed = mock.MagicMock(wraps=torch._foreach_add)
    with mock.patch.object(torch, "_foreach_add", decayed):
        _drive(a, folded, feedback=True)
    assert decayed.call_count == 0, "Muon should fold: u + wd * theta was computed"
    _drive(b, plain, feedback=True)
    assert _rel(folded, plain) < 1e-10


def _reference_step(theta, grad, buf, *, lr, wd, mu, nesterov, adjust, steps=5, eps=1e-7):
    """Muon in float64 from its definition (lerp-free, Newton–Schulz as a polynomial)."""
    buf = mu * buf + (1 - mu) * grad
    u = (1 - mu) * grad + mu * buf if nesterov else buf
    x = u.T if u.shape[0] > u.shape[1] else u
    x = x / max(torch.linalg.matrix_norm(x).item(), eps)
    a, b, c = NS_COEFFICIENTS
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + b * (gram @ x) + c * (gram @ (gram @ x))
    o = x.T if u.shape[0] > u.shape[1] else x
    rows, cols = theta.shape
    ratio = 0.2 * math.sqrt(max(rows, cols)) if adjust else math.sqrt(max(1, rows / cols))
    return theta - lr * wd * theta - lr * ratio * o, buf


def test_float64_matches_an_independent_reference() -> None:
    """descend's chain with Newton–Schulz in float64 against the definition above: the
    same arithmetic in another order (polynomial terms, lerp): per step a few roundings
    amplified by at most the iteration's largest slope, a = 3.4445 per step (3.4445**5 ~
    500): ~1e-13; the gradients do not depend on the iterates, so nothing compounds."""
    rule = chain(
        ema_trace(),
        orthogonalize(dtype=None),
        scale_by_shape(),
        add_decayed_weights(),
        scale_by_lr(),
    )
    params = _params(torch.float64)
    groups = _groups(params)
    opt = descend.Optimizer(groups, rule, lr=0.02, weight_decay=0.1)
    ref = [p.detach().clone() for p in params]
    bufs = [torch.zeros_like(p) for p in ref]
    g = torch.Generator().manual_seed(1)
    for _ in range(STEPS):
        for i, p in enumerate(params):
            p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)
            group = groups[0] if i < 2 else groups[1]
            ref[i], bufs[i] = _reference_step(
                ref[i],
                p.grad,
                bufs[i],
                lr=group["lr"],
                wd=group["weight_decay"],
                mu=group["momentum"],
                nesterov=group["nesterov"],
                adjust=group["adjust_lr_fn"] == "match_rms_adamw",
            )
        opt.step()
    assert _rel(params, ref) < 1e-10


@pytest.mark.parametrize("shape", [(4, 7), (7, 4)])
def test_newton_schulz_is_the_quintic_applied_to_the_singular_values(shape) -> None:
    """Closed form: for G = U diag(s) V^T the iteration maps each singular value through
    p(x) = a x + b x^3 + c x^5, five times, from s / ||G||_F, and keeps U and V."""
    g = torch.Generator().manual_seed(0)
    k = min(shape)
    u, _ = torch.linalg.qr(torch.randn(shape[0], k, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(shape[1], k, generator=g, dtype=torch.float64))
    s = torch.tensor([3.0, 1.0, 0.2, 0.01][:k], dtype=torch.float64)
    x = s / s.norm()
    a, b, c = NS_COEFFICIENTS
    for _ in range(5):
        x = a * x + b * x**3 + c * x**5
    expected = u @ torch.diag(x) @ v.T
    got = newton_schulz(u @ torch.diag(s) @ v.T, dtype=None)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    # bfloat16 (the default): torch's own routine, bit for bit (a private function, read
    # here only as the reference; bfloat16 rounding amplified by the quintic's slope at the
    # small singular values, ~500, leaves no useful closed-form tolerance).
    from torch.optim._muon import _zeropower_via_newtonschulz

    m = (u @ torch.diag(s) @ v.T).float()
    assert torch.equal(newton_schulz(m), _zeropower_via_newtonschulz(m, NS_COEFFICIENTS, 5, 1e-7))


# Keller Jordan's reference (github.com/KellerJordan/Muon, muon.py at 857d1ad, MIT), with
# the dtype and epsilon made arguments so it runs in float64 and with torch's epsilon.
def _kj_zeropower(G, steps, dtype, eps):
    a, b, c = (3.4445, -4.7750, 2.0315)
    X = G.to(dtype)
    if G.size(-2) > G.size(-1):
        X = X.mT
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + eps)
    for _ in range(steps):
        A = X @ X.mT
        B = b * A + c * A @ A
        X = a * X + B @ X
    if G.size(-2) > G.size(-1):
        X = X.mT
    return X


def _kj_muon_update(grad, momentum, beta, ns_steps, nesterov, dtype, eps):
    momentum.lerp_(grad, 1 - beta)
    update = grad.lerp_(momentum, beta) if nesterov else momentum
    if update.ndim == 4:  # for the case of conv filters
        update = update.view(len(update), -1)
    update = _kj_zeropower(update, ns_steps, dtype, eps)
    update *= max(1, grad.size(-2) / grad.size(-1)) ** 0.5
    return update


def test_matches_keller_jordans_formulation() -> None:
    """His SingleDeviceMuon step (lr=0.02, weight_decay=0.01, Nesterov), in float64 with
    epsilon 0 on both sides (he divides by norm + eps, torch by max(norm, eps): the only
    difference in the rule, a relative 1e-7 / ||G||). What is left is operation order.
    With a conv filter, flattened to (out, in*kh*kw) by his code and by FlatMuon's rule."""
    rule = chain(
        ema_trace(),
        orthogonalize(dtype=None, flatten=True),
        scale_by_shape(),
        add_decayed_weights(),
        scale_by_lr(),
    )
    shapes = [*SHAPES, (4, 2, 3, 3)]
    ours, theirs = _params(torch.float64, shapes=shapes), _params(torch.float64, shapes=shapes)
    opt = descend.Optimizer(ours, rule, lr=0.02, weight_decay=0.01, eps=0.0)
    bufs = [torch.zeros_like(p) for p in theirs]
    g = torch.Generator().manual_seed(1)
    for _ in range(STEPS):
        for p, q, buf in zip(ours, theirs, bufs, strict=True):
            grad = torch.randn(p.shape, generator=g, dtype=p.dtype)
            p.grad = grad.clone()
            update = _kj_muon_update(grad, buf, 0.95, 5, True, torch.float64, 0.0)  # his way
            with torch.no_grad():
                q.mul_(1 - 0.02 * 0.01)
                q.add_(update.reshape(q.shape), alpha=-0.02)
        opt.step()
    assert _rel(ours, theirs) < 1e-10


def test_state_dict_round_trips_and_loads_from_torch() -> None:
    """Save after 5 steps, load into a fresh optimizer, 5 more: bit-identical to an
    uninterrupted run; a torch.optim.Muon state dict loads and continues the same way."""

    def steps(opt, params, n, seed):
        g = torch.Generator().manual_seed(seed)
        for _ in range(n):
            for p in params:
                p.grad = torch.randn(p.shape, generator=g)
            opt.step()

    whole = _params(torch.float32)
    opt = descend.Muon(_groups(whole))
    steps(opt, whole, 5, 0)
    saved, at = copy.deepcopy(opt.state_dict()), [p.detach().clone() for p in whole]
    steps(opt, whole, 5, 1)
    for make in (descend.Muon, torch.optim.Muon):
        resumed = [p.clone().requires_grad_() for p in at]
        first = make(_groups(resumed))
        first.load_state_dict(copy.deepcopy(saved))  # loading shares the tensors
        assert first.state_dict()["param_groups"] == saved["param_groups"]
        again = descend.Muon(_groups(resumed))
        again.load_state_dict(first.state_dict())  # through torch's class and back
        steps(again, resumed, 5, 1)
        assert all(torch.equal(p, q) for p, q in zip(whole, resumed, strict=True))


@pytest.mark.parametrize("shape", [(4,), (2, 3, 4), ()])
def test_a_non_matrix_is_refused_by_name_and_shape(shape) -> None:
    w = torch.zeros(3, 3, requires_grad=True)
    odd = torch.zeros(shape, requires_grad=True)
    with pytest.raises(
        ValueError, match=rf"Muon only supports 2D.*'blocks.0.norm' of shape {re_shape(shape)}"
    ):
        descend.Muon([("w", w), ("blocks.0.norm", odd)])
    with pytest.raises(
        ValueError, match=rf"parameter 1 of shape {re_shape(shape)} in param group 0"
    ):
        descend.Muon([w, odd])
    opt = descend.Muon([w])
    with pytest.raises(ValueError, match="param group 1"):
        opt.add_param_group({"params": [odd]})
    assert len(opt.param_groups) == 1


def re_shape(shape) -> str:
    import re

    return re.escape(str(tuple(shape)))


def test_bad_hyperparameters_name_the_value_and_torch_words() -> None:
    w = torch.zeros(3, 3, requires_grad=True)
    with pytest.raises(
        ValueError, match="'adjust_lr_fn'.*Adjust learning rate function x is not supported"
    ):
        descend.Muon([w], adjust_lr_fn="x")
    with pytest.raises(ValueError, match=r"'ns_steps'.*an int in \[0, 100\). Got 100"):
        descend.Muon([w], ns_steps=100)
    with pytest.raises(ValueError, match="'ns_coefficients'.*three finite floats"):
        descend.Muon([w], ns_coefficients=(1.0, 2.0))
    c = torch.zeros(3, 3, dtype=torch.complex64, requires_grad=True)
    opt = descend.Muon([c])
    c.grad = torch.ones_like(c)
    with pytest.raises(RuntimeError, match="Muon does not support complex parameters"):
        opt.step()


def test_reaches_the_minimizer_of_an_ill_conditioned_matrix_quadratic() -> None:
    """L(W) = 1/2 sum_ij h_i (W - W*)_ij^2 with h from 1 to 100 down the rows (condition
    number 100). An orthogonalized step has spectral norm ~lr whatever the gradient's
    size, so a constant lr hovers ~lr away: a cosine decay to 0 brings it in. Newton–
    Schulz in float64 (dtype=None); tolerance 1e-3 on max |W - W*| (start: ~2)."""
    h = torch.logspace(0, 2, 10, dtype=torch.float64)[:, None]
    g = torch.Generator().manual_seed(0)
    target = torch.randn(10, 6, generator=g, dtype=torch.float64)
    w = torch.zeros(10, 6, dtype=torch.float64, requires_grad=True)
    rule = chain(
        ema_trace(),
        orthogonalize(dtype=None),
        scale_by_shape(),
        add_decayed_weights(),
        scale_by_lr(),
    )
    opt = descend.Optimizer([w], rule, lr=cosine(0.1, 1000), weight_decay=0.0)
    for _ in range(1000):
        opt.zero_grad()
        (0.5 * (h * (w - target) ** 2).sum()).backward()
        opt.step()
    assert (w - target).abs().max().item() < 1e-3
