"""Prodigy against the authors' package (``prodigyopt``), against an independent float64
reference written from the paper's Algorithm, its state dicts and refusals."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import torch

import descend
from tests.optim.problems import loss_fn, make_params, run

prodigyopt = pytest.importorskip("prodigyopt")

EPS32 = torch.finfo(torch.float32).eps
STEPS = 120
CASES = [
    {},
    {"weight_decay": 0.1, "use_bias_correction": True, "growth_rate": 1.05},
    {"weight_decay": 0.05, "decouple": False, "safeguard_warmup": True, "d_coef": 0.5},
    {"betas": (0.0, 0.99), "beta3": 0.9, "slice_p": 3, "d0": 1e-4, "eps": 1e-6},
]
IDS = ["defaults", "decoupled-bias", "coupled-safeguard", "no-momentum-sliced"]


def _make(cls: Any, options: dict[str, Any]) -> Any:
    return lambda groups: cls(groups, **options)


def _relative(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(
        ((x - y).abs().max() / y.abs().max()).item() for x, y in zip(a, b, strict=True) if x.numel()
    )


@pytest.mark.parametrize("options", CASES, ids=IDS)
def test_matches_the_reference_in_float64(options: dict[str, Any]) -> None:
    """The same operations, except that descend sums the group's dot products and L1
    norms in one float64 reduction where the reference adds Python floats one by one:
    the estimate's relative error stays ~1e-15 per step; 1e-10 bounds 120 steps of it
    with room, since d's updates are monotone ratios of those sums."""
    ours, opt = run(_make(descend.Prodigy, options), torch.float64, steps=STEPS)
    theirs, ref = run(_make(prodigyopt.Prodigy, options), torch.float64, steps=STEPS)
    assert _relative(ours, theirs) < 1e-10
    assert opt.param_groups[0]["d"] > options.get("d0", 1e-6)  # the estimate moved
    for key in ("d", "d_max", "d_numerator", "d_hat", "k"):
        assert opt.param_groups[1][key] == pytest.approx(ref.param_groups[1][key], rel=1e-10)


def test_matches_the_reference_in_float32_within_rounding() -> None:
    # ~10 roundings of relative size eps per step, carried by the parameters and by d.
    ours, _ = run(_make(descend.Prodigy, {}), torch.float32, steps=STEPS)
    theirs, _ = run(_make(prodigyopt.Prodigy, {}), torch.float32, steps=STEPS)
    assert _relative(ours, theirs) < STEPS * 10 * EPS32


def _algorithm(params: list[torch.Tensor], steps: int, *, wd: float, d0: float = 1e-6) -> None:
    """Prodigy's Adam version (Algorithm 3 of the paper, with the package's d-scaled
    moments and decoupled decay), in float64, every sum over all parameters at once."""
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    beta3 = math.sqrt(beta2)
    flat0 = torch.cat([p.detach().reshape(-1) for p in params])
    m = torch.zeros_like(flat0)
    v = torch.zeros_like(flat0)
    s = torch.zeros_like(flat0)
    r, d, d_max = 0.0, d0, d0
    for _ in range(steps):
        for p in params:
            p.grad = None
        loss_fn(params).backward()
        g = torch.cat([p.grad.reshape(-1) for p in params])
        x = torch.cat([p.detach().reshape(-1) for p in params])
        dlr = d  # lr = 1
        r = beta3 * r + d / d0 * dlr * float(g @ (flat0 - x))
        m = beta1 * m + d * (1 - beta1) * g
        v = beta2 * v + d * d * (1 - beta2) * g * g
        s = beta3 * s + d / d0 * dlr * g
        d_hat = r / float(s.abs().sum())
        if d == d0:
            d = max(d, d_hat)
        d_max = max(d_max, d_hat)
        d = min(d_max, d * math.inf)
        new = x - dlr * (m / (v.sqrt() + d * eps) + wd * x)
        offset = 0
        with torch.no_grad():
            for p in params:
                p.copy_(new[offset : offset + p.numel()].reshape(p.shape))
                offset += p.numel()


def test_matches_an_independent_float64_reference() -> None:
    expected = make_params(torch.float64)
    _algorithm(expected, STEPS, wd=0.01)
    params = make_params(torch.float64)
    opt = descend.Prodigy([{"params": params[:3]}, {"params": params[3:]}], weight_decay=0.01)
    for _ in range(STEPS):
        opt.zero_grad()
        loss_fn(params).backward()
        opt.step()
    # Whole-vector sums here, per-tensor sums there: rounding only.
    assert _relative(params, expected) < 1e-10


def test_first_step_keeps_d_and_later_steps_raise_it() -> None:
    x = torch.ones(4, dtype=torch.float64, requires_grad=True)
    opt = descend.Prodigy([x])
    ds = []
    for _ in range(3):
        opt.zero_grad()
        (x**2).sum().backward()
        opt.step()
        ds.append(opt.param_groups[0]["d"])
    # Step 1: x = x0, so the numerator <g, x0 - x> is 0 and d_hat = 0 < d0.
    assert ds[0] == 1e-6 and ds[1] > 1e-6 and ds[2] >= ds[1]


def test_state_dict_round_trip_continues_bit_identically() -> None:
    params, opt = run(_make(descend.Prodigy, {"weight_decay": 0.1}), torch.float64, steps=30)
    saved = copy.deepcopy(opt.state_dict())
    twin = [p.detach().clone().requires_grad_() for p in params]
    other = descend.Prodigy([{"params": twin[:3]}, {"params": twin[3:]}], weight_decay=0.1)
    other.load_state_dict(saved)
    for ps, o in ((params, opt), (twin, other)):
        for _ in range(30):
            o.zero_grad()
            loss_fn(ps).backward()
            o.step()
    for a, b in zip(params, twin, strict=True):
        assert torch.equal(a, b)


def test_a_state_dict_of_the_reference_loads_and_continues_as_the_reference() -> None:
    theirs, ref = run(_make(prodigyopt.Prodigy, {}), torch.float64, steps=30)
    mine = [p.detach().clone().requires_grad_() for p in theirs]
    opt = descend.Prodigy([{"params": mine[:3]}, {"params": mine[3:]}])
    opt.load_state_dict(copy.deepcopy(ref.state_dict()))
    for ps, o in ((theirs, ref), (mine, opt)):
        for _ in range(30):
            o.zero_grad()
            loss_fn(ps).backward()
            o.step()
    assert _relative(mine, theirs) < 1e-10


def test_groups_with_different_learning_rates_are_refused() -> None:
    a, b = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    opt = descend.Prodigy([{"params": [a]}, {"params": [b], "lr": 0.5}])
    a.grad, b.grad = torch.ones(2), torch.ones(2)
    with pytest.raises(RuntimeError, match=r"largest one \(1.0\) or 0.*lr=0.5 in param group 1"):
        opt.step()


def test_a_group_with_lr_zero_stays_put() -> None:
    a, b = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    opt = descend.Prodigy([{"params": [a]}, {"params": [b], "lr": 0.0}], weight_decay=0.1)
    for _ in range(5):
        opt.zero_grad()
        ((a - 3) ** 2 + (b - 3) ** 2).sum().backward()
        opt.step()
    assert torch.equal(b.detach(), torch.ones(2)) and not torch.equal(a.detach(), torch.ones(2))


@pytest.mark.parametrize(
    ("options", "words"),
    [({"d0": 0.0}, "d0"), ({"slice_p": 0}, "slice_p"), ({"growth_rate": 0.5}, "growth_rate")],
)
def test_bad_hyperparameters_are_refused_by_name(options: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        descend.Prodigy([torch.zeros(2, requires_grad=True)], **options)
