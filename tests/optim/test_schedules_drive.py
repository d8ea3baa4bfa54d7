"""Learning rates from schedules: ``lr=schedule`` and torch.optim.lr_scheduler classes."""

from __future__ import annotations

import pytest
import torch

import descend
from descend.schedules import cosine, warmup_cosine
from tests.optim.problems import loss_fn, make_params

SCHEDULERS = {
    "StepLR": lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5),
    "CosineAnnealingLR": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=40),
    # OneCycleLR also cycles Adam's betas / SGD's momentum: hyperparameters are read per step.
    "OneCycleLR": lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=40),
    "LambdaLR": lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda t: 1 / (1 + t)),
}


@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
@pytest.mark.parametrize(
    "name,opts", [("SGD", {"lr": 0.01, "momentum": 0.9}), ("Adam", {"lr": 0.01})]
)
def test_torch_scheduler_drives_descend_like_torch(scheduler: str, name: str, opts: dict) -> None:
    def go(cls: type) -> tuple[list[torch.Tensor], list[float]]:
        params = make_params(torch.float64)
        opt = cls(params, **opts)
        sched = SCHEDULERS[scheduler](opt)
        lrs = []
        for _ in range(40):
            opt.zero_grad()
            loss_fn(params).backward()
            opt.step()
            sched.step()
            lrs.append(opt.param_groups[0]["lr"])
        return params, lrs

    got, got_lrs = go(getattr(descend, name))
    ref, ref_lrs = go(getattr(torch.optim, name))
    assert got_lrs == ref_lrs
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_lr_schedule_equals_setting_lr_by_hand() -> None:
    schedule = warmup_cosine(0.05, warmup_steps=5, total_steps=30)
    auto = make_params(torch.float64)
    by_hand = make_params(torch.float64)
    opt_auto = descend.Adam(auto, lr=schedule)
    opt_hand = descend.Adam(by_hand, lr=0.0)
    for t in range(30):
        for params, opt in [(auto, opt_auto), (by_hand, opt_hand)]:
            if opt is opt_hand:
                opt.param_groups[0]["lr"] = schedule(t)
            opt.zero_grad()
            loss_fn(params).backward()
            opt.step()
        assert opt_auto.param_groups[0]["lr"] == schedule(t)
    for a, b in zip(auto, by_hand, strict=True):
        assert torch.equal(a, b)


def test_per_group_schedules() -> None:
    a, b = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    opt = descend.SGD([{"params": [a], "lr": cosine(1.0, 10)}, {"params": [b], "lr": 0.1}])
    seen = []
    for _ in range(3):
        a.grad, b.grad = torch.ones(1), torch.ones(1)
        opt.step()
        seen.append((opt.param_groups[0]["lr"], opt.param_groups[1]["lr"]))
    assert [s[1] for s in seen] == [0.1, 0.1, 0.1]
    assert [s[0] for s in seen] == [cosine(1.0, 10)(t) for t in range(3)]
    assert a.item() == pytest.approx(-sum(cosine(1.0, 10)(t) for t in range(3)))


def test_a_scheduled_lr_written_by_something_else_is_replaced_with_a_warning() -> None:
    x = torch.zeros(2, requires_grad=True)
    x.grad = torch.ones(2)
    opt = descend.SGD([x], lr=cosine(0.1, total_steps=10))
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    opt.step()
    scheduler.step()  # writes 0.5 x the schedule's value into the group
    with pytest.warns(UserWarning, match="param group 0 of SGD is a schedule"):
        opt.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(cosine(0.1, total_steps=10)(1))
    assert opt.lr_schedules == {0: cosine(0.1, total_steps=10)}


def test_fit_refuses_a_second_learning_rate_mechanism() -> None:
    from descend._validation import InvalidParameterError
    from descend.train import ReduceLROnPlateau, fit

    model = torch.nn.Linear(2, 1)
    data = (torch.randn(8, 2), torch.randn(8, 1))
    scheduled = descend.SGD(model.parameters(), lr=cosine(0.1, total_steps=10))
    with pytest.raises(InvalidParameterError, match="The learning rate is given twice"):
        fit(model, data, torch.nn.functional.mse_loss, scheduled, epochs=1, schedule=cosine(0.1, 4))
    with pytest.raises(InvalidParameterError, match="ReduceLROnPlateau sets the learning rate"):
        fit(
            model,
            data,
            torch.nn.functional.mse_loss,
            scheduled,
            epochs=1,
            val_data=data,
            callbacks=[ReduceLROnPlateau(monitor="val_loss")],
        )
