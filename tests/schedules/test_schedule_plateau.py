"""ReduceOnPlateau follows torch's ReduceLROnPlateau and resumes from a weights-only checkpoint."""

import io
import math
import random

import pytest
import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

from descend.schedules import ReduceOnPlateau


def metrics(n=80, seed=0):
    """A noisy loss that falls, stalls, falls again, then stalls for good."""
    rng = random.Random(seed)
    level = [
        max(1.0, 3.0 - 0.1 * t) if t < 40 else max(0.5, 1.0 - 0.05 * (t - 40)) for t in range(n)
    ]
    return [v + rng.uniform(-0.02, 0.02) for v in level]


def torch_sequence(values, lr, **settings):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = ReduceLROnPlateau(opt, **settings)
    lrs = []
    for v in values:
        sched.step(v)
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


def our_sequence(values, lr, plateau):
    lrs = []
    for v in values:
        lr = plateau.update(v, lr)
        lrs.append(lr)
    return lrs


SETTINGS = [
    {},
    {"patience": 2, "factor": 0.5},
    {"patience": 1, "cooldown": 3, "factor": 0.3, "min_lr": 0.02},
    {"mode": "max", "threshold_mode": "abs", "threshold": 0.05, "patience": 0},
    {"threshold_mode": "abs", "threshold": 0.01, "patience": 3, "eps": 0.05},
]


@pytest.mark.parametrize("settings", SETTINGS)
def test_same_learning_rates_as_torch(settings):
    values = metrics()
    if settings.get("mode") == "max":
        values = [-v for v in values]
    expected = torch_sequence(values, 1.0, **settings)
    got = our_sequence(values, 1.0, ReduceOnPlateau(**settings))
    assert got == expected
    assert got[-1] < 1.0  # the metric sequence does plateau: a reduction happened


def test_tensor_metric_and_nan_count_as_given():
    plateau = ReduceOnPlateau(patience=0, factor=0.5)
    assert plateau.update(torch.tensor(2.0), 1.0) == 1.0
    assert plateau.update(math.nan, 1.0) == 0.5  # NaN never improves


def test_state_dict_resumes_exactly_through_a_weights_only_checkpoint():
    values = metrics(seed=1)
    settings = {"patience": 2, "cooldown": 1, "factor": 0.5}
    whole = our_sequence(values, 1.0, ReduceOnPlateau(**settings))

    first = ReduceOnPlateau(**settings)
    head = our_sequence(values[:30], 1.0, first)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert all(type(v) in (int, float) for v in state.values())

    second = ReduceOnPlateau(**settings)
    second.load_state_dict(state)
    tail = our_sequence(values[30:], head[-1], second)
    assert head + tail == whole
    assert second.last_epoch == len(values)


def test_fresh_state_starts_from_the_worst_best():
    assert ReduceOnPlateau().state_dict() == {
        "best": math.inf,
        "num_bad_epochs": 0,
        "cooldown_counter": 0,
        "last_epoch": 0,
    }
    assert ReduceOnPlateau("max").state_dict()["best"] == -math.inf
    assert "factor=0.1" in repr(ReduceOnPlateau())
