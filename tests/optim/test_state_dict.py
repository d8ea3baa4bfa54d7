"""State dicts: round trips continue bit-identically; torch.optim's load into descend and back."""

from __future__ import annotations

import io

import pytest
import torch

import descend
from tests.optim.problems import loss_fn, make_params

OPTIONS = {
    "SGD": {"lr": 0.01, "momentum": 0.9, "nesterov": True},
    "Adagrad": {"lr": 0.1, "lr_decay": 0.01},
    "RMSprop": {"lr": 0.01, "momentum": 0.5, "centered": True},
    "Adam": {"lr": 0.01, "amsgrad": True},
    "AdamW": {"lr": 0.01, "weight_decay": 0.1},
    "Adamax": {"lr": 0.01, "weight_decay": 0.1},
    "NAdam": {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
    "RAdam": {"lr": 0.01, "weight_decay": 0.1},
    "Adadelta": {"lr": 1.0, "rho": 0.8, "eps": 1e-4},
    "ASGD": {"lr": 0.01, "t0": 10, "lambd": 0.01},
    "Rprop": {"lr": 0.01, "etas": (0.4, 1.3)},
}


def _steps(params: list[torch.Tensor], opt: torch.optim.Optimizer, n: int) -> None:
    for _ in range(n):
        opt.zero_grad()
        loss_fn(params).backward()
        opt.step()


def _through_bytes(sd: dict) -> dict:
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.mark.parametrize("name", list(OPTIONS))
def test_round_trip_continues_bit_identically(name: str) -> None:
    cls = getattr(descend, name)
    params = make_params(torch.float64)
    opt = cls(params, **OPTIONS[name])
    _steps(params, opt, 20)
    saved_params = [p.detach().clone() for p in params]
    saved = _through_bytes(opt.state_dict())
    _steps(params, opt, 20)
    expected = [p.detach().clone() for p in params]

    resumed = [p.clone().detach().requires_grad_() for p in saved_params]
    fresh = cls(resumed, **OPTIONS[name])
    fresh.load_state_dict(saved)
    _steps(resumed, fresh, 20)
    for a, b in zip(resumed, expected, strict=True):
        assert torch.equal(a.detach(), b)


@pytest.mark.parametrize("name", list(OPTIONS))
@pytest.mark.parametrize("direction", ["torch->descend", "descend->torch"])
def test_state_dicts_interchange_with_torch(name: str, direction: str) -> None:
    src_cls, dst_cls = (getattr(torch.optim, name), getattr(descend, name))
    if direction == "descend->torch":
        src_cls, dst_cls = dst_cls, src_cls
    params = make_params(torch.float64)
    src = src_cls(params, **OPTIONS[name])
    _steps(params, src, 15)
    saved = src.state_dict()
    start = [p.detach().clone() for p in params]

    # Reference: the destination's own algorithm continued from the same state by torch.
    ref_params = [p.clone().requires_grad_() for p in start]
    ref = getattr(torch.optim, name)(ref_params, **OPTIONS[name])
    ref.load_state_dict(_through_bytes(saved))  # each load gets its own tensors
    _steps(ref_params, ref, 15)

    got_params = [p.clone().requires_grad_() for p in start]
    dst = dst_cls(got_params, **OPTIONS[name])
    dst.load_state_dict(_through_bytes(saved))
    _steps(got_params, dst, 15)
    for a, b in zip(got_params, ref_params, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    moved = max(float((a.detach() - s).abs().max()) for a, s in zip(got_params, start) if a.numel())
    assert moved > 1e-4


def test_schedule_position_is_saved_and_restored() -> None:
    from descend.schedules import step_decay

    x = torch.zeros(1, requires_grad=True)
    opt = descend.SGD([x], lr=step_decay(1.0, 3, gamma=0.5))
    for _ in range(4):
        x.grad = torch.ones(1)
        opt.step()
    saved = _through_bytes(opt.state_dict())
    assert saved["param_groups"][0]["lr_schedule_step"] == 4
    y = torch.zeros(1, requires_grad=True)
    again = descend.SGD([y], lr=step_decay(1.0, 3, gamma=0.5))
    again.load_state_dict(saved)
    y.grad = torch.ones(1)
    again.step()  # update index 4 uses 1.0 * 0.5 ** (4 // 3)
    assert again.param_groups[0]["lr"] == 0.5
