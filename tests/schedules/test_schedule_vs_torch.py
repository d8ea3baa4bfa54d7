"""Each schedule reproduces the learning rates torch.optim.lr_scheduler feeds to SGD."""

import math
import warnings

import pytest
import torch
from torch.optim import lr_scheduler

from descend.schedules import cosine, exponential, multi_step, one_cycle, step_decay


def torch_lrs(make_scheduler, lr, steps):
    """The learning rate of each of ``steps`` SGD updates driven by a torch scheduler."""
    param = torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([param], lr=lr)
    sched = make_scheduler(opt)
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(steps):
            lrs.append(opt.param_groups[0]["lr"])
            param.grad = torch.ones_like(param)
            opt.step()
            sched.step()
    return lrs


def assert_same(schedule, expected, rel=1e-9):
    assert [schedule(t) for t in range(len(expected))] == pytest.approx(
        expected, rel=rel, abs=1e-15
    )


def test_step_lr():
    expected = torch_lrs(lambda o: lr_scheduler.StepLR(o, step_size=7, gamma=0.3), 0.2, 60)
    assert_same(step_decay(0.2, 7, gamma=0.3), expected)


def test_multi_step_lr():
    marks = [5, 20, 20, 41]
    expected = torch_lrs(
        lambda o: lr_scheduler.MultiStepLR(o, milestones=marks, gamma=0.5), 0.1, 60
    )
    assert_same(multi_step(0.1, marks, gamma=0.5), expected)


def test_exponential_lr():
    expected = torch_lrs(lambda o: lr_scheduler.ExponentialLR(o, gamma=0.93), 0.1, 80)
    assert_same(exponential(0.1, 0.93), expected)


@pytest.mark.parametrize(("total", "final"), [(50, 0.0), (13, 0.01)])
def test_cosine_annealing_lr(total, final):
    make = lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=total, eta_min=final)
    expected = torch_lrs(make, 0.1, total + 1)
    s = cosine(0.1, total, final_value=final)
    # torch's recursive update drifts a little from its own closed form: compare
    # to torch loosely and to the closed form tightly.
    assert_same(s, expected, rel=1e-9)
    closed = [
        final + (0.1 - final) * (1 + math.cos(math.pi * t / total)) / 2 for t in range(total + 1)
    ]
    assert_same(s, closed, rel=1e-12)


@pytest.mark.parametrize(
    ("total", "pct", "anneal", "three"),
    [
        (100, 0.3, "cos", False),
        (37, 0.25, "linear", False),
        (60, 0.4, "cos", True),
        (9, 0.5, "linear", True),
        (10, 0.05, "cos", False),  # the warm-up phase ends before step 0
        (1, 0.3, "cos", False),
    ],
)
def test_one_cycle_lr_bit_for_bit(total, pct, anneal, three):
    def make(opt):
        return lr_scheduler.OneCycleLR(
            opt,
            max_lr=0.5,
            total_steps=total,
            pct_start=pct,
            anneal_strategy=anneal,
            three_phase=three,
            div_factor=10.0,
            final_div_factor=50.0,
            cycle_momentum=False,
        )

    expected = torch_lrs(make, 0.5, total)
    s = one_cycle(
        0.5,
        total,
        pct_start=pct,
        anneal=anneal,
        three_phase=three,
        div_factor=10.0,
        final_div_factor=50.0,
    )
    assert [s(t) for t in range(total)] == expected
