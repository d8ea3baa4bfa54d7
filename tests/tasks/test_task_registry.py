"""The Task description, Target and the registry."""

from __future__ import annotations

import math

import pytest
import torch

from descend._validation import InvalidParameterError
from descend.tasks import TASKS, Target, Task, get_task, task_names, task_options
from descend.tasks.task import OPTIMIZER_NAMES

EXPECTED = {
    "linreg", "logreg", "digits", "mnist1d", "deep_sigmoid", "deep_residual",
    "recommender", "charlm", "vae", "transformer", "gan", "speech",
}  # fmt: skip


def test_registry_lists_every_task() -> None:
    assert set(task_names()) == EXPECTED
    assert list(TASKS) == task_names()
    for name, task in TASKS.items():
        assert isinstance(task, Task) and task.name == name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_description_is_complete(name: str) -> None:
    task = get_task(name)
    assert task.summary and task.data_source and task.model_summary
    assert set(OPTIMIZER_NAMES) <= set(task.lrs)
    assert all(lr > 0 and math.isfinite(lr) for lr in task.lrs.values())
    assert task.default_optimizer in OPTIMIZER_NAMES
    assert task.epochs >= 1
    metric = task.target.metric
    assert metric == "val_loss" or metric.removeprefix("val_") in task.metrics
    described = task.describe()
    assert described["target"] == task.target.describe()
    assert described["lr"] == task.lrs[task.default_optimizer]


def test_unknown_task_lists_the_available_ones() -> None:
    with pytest.raises(InvalidParameterError, match="Unknown task 'digit'.*Did you mean 'digits'"):
        get_task("digit")


def test_unknown_option_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="no parameter 'int'.*'init'"):
        get_task("deep_sigmoid", int="he")
    assert task_options("deep_sigmoid") == {"init": "xavier", "depth": 8}


def test_bad_option_value_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="'init' parameter of deep_sigmoid"):
        get_task("deep_sigmoid", init="glorot")
    with pytest.raises(InvalidParameterError, match="'depth'"):
        get_task("deep_residual", depth=1)


def test_target_directions() -> None:
    up = Target("val_accuracy", 0.9, "max")
    down = Target("val_loss", 0.1, "min")
    assert up.reached(0.9) and not up.reached(0.89) and not up.reached(float("nan"))
    assert down.reached(0.05) and not down.reached(0.2) and not down.reached(None)
    assert up.describe() == "val_accuracy >= 0.9" and down.describe() == "val_loss <= 0.1"
    with pytest.raises(InvalidParameterError, match="'mode'"):
        Target("val_loss", 0.1, "lower")


def test_model_is_seeded_and_leaves_global_rng_alone() -> None:
    task = get_task("digits")
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b, c = task.model(0), task.model(0), task.model(1)
    assert torch.equal(torch.random.get_rng_state(), before)
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb)
    assert not torch.equal(pa, pc)
