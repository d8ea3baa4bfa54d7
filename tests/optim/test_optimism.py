"""The optimism transform: against a float64 reference, on a bilinear game, and its state."""

from __future__ import annotations

import copy

import torch

from descend.optim import Optimizer, chain, optimism, scale_by_adam, scale_by_lr

SHAPES = [(3,), (4, 5), (2, 3, 2)]


def _reference_ogd(x0: list[torch.Tensor], grads: list[list[torch.Tensor]], lr: list[float],
                   alpha: float) -> list[torch.Tensor]:  # fmt: skip
    # theta_{t+1} = theta_t - lr ((1 + alpha) g_t - alpha g_{t-1}), g_0 = g_1.
    x = [t.clone() for t in x0]
    prev = None
    for g in grads:
        last = g if prev is None else prev
        x = [xi - lr[i] * ((1 + alpha) * gi - alpha * li)
             for i, (xi, gi, li) in enumerate(zip(x, g, last))]  # fmt: skip
        prev = g
    return x


def test_optimistic_gd_matches_the_float64_reference_over_100_steps() -> None:
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(s, dtype=torch.float64, generator=gen) for s in SHAPES]
    x0 = [p.clone() for p in params]
    lrs = [0.05, 0.05, 0.01]  # two param groups: the last tensor has its own lr
    opt = Optimizer(
        [{"params": params[:2]}, {"params": params[2:], "lr": 0.01}],
        chain(optimism(), scale_by_lr()),
        lr=0.05,
        optimism=0.7,
    )
    grads = []
    for _ in range(100):
        g = [torch.randn(s, dtype=torch.float64, generator=gen) for s in SHAPES]
        grads.append(g)
        for p, gi in zip(params, g):
            p.grad = gi.clone()
        opt.step()
    want = _reference_ogd(x0, grads, lrs, 0.7)
    for p, w in zip(params, want):
        # The same operations in a different order: a few ulps per step, 100 steps.
        torch.testing.assert_close(p, w, rtol=1e-12, atol=1e-12)


def _bilinear(rule, steps: int = 2000, lr: float = 0.05) -> float:
    # min_x max_y x*y: simultaneous descent-ascent spirals out; optimism spirals in.
    x = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = Optimizer([x, y], rule, lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        x.grad = y.detach().clone()  # d(xy)/dx, x descends
        y.grad = -x.detach().clone()  # y ascends: descend on -xy
        opt.step()
    return float(torch.hypot(x, y).detach())


def test_optimism_converges_on_the_bilinear_game_where_plain_descent_spirals_out() -> None:
    # Plain: |z_{t+1}| = sqrt(1 + lr^2) |z_t|: from sqrt(2), 2000 steps give 1.41 * 12.2 = 17.2.
    assert _bilinear(scale_by_lr()) > 15
    # Optimistic: the modulus of the iteration's eigenvalues is about 1 - lr^2 / 2 (Mokhtari,
    # Ozdaglar, Pattathil, 2020), so about 1.41 * 0.082 = 0.12 after 2000 steps.
    assert _bilinear(chain(optimism(), scale_by_lr())) < 0.2


def test_state_dict_round_trips_bit_identically() -> None:
    p = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    opt = Optimizer([p], chain(optimism(), scale_by_adam(), scale_by_lr()), lr=1e-2)
    for i in range(3):
        p.grad = torch.full_like(p, float(i + 1))
        opt.step()
    saved = copy.deepcopy(opt.state_dict())
    assert torch.equal(saved["state"][0]["prev_grad"], torch.full_like(p, 3.0))
    q = p.detach().clone()
    other = Optimizer([q], chain(optimism(), scale_by_adam(), scale_by_lr()), lr=1e-2)
    other.load_state_dict(saved)
    for opt_, t in ((opt, p), (other, q)):
        t.grad = torch.full_like(t, -2.0)
        opt_.step()
    assert torch.equal(p, q)
