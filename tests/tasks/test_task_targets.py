"""Each task's default recipe reaches its stated target (seed 0, one CPU thread)."""

from __future__ import annotations

import pytest

from descend.tasks import get_task, run_task, summarize

FAST = ["linreg", "logreg", "digits", "deep_sigmoid", "deep_residual", "recommender", "vae", "gan"]
SLOW = ["mnist1d", "charlm", "transformer"]  # ~10 s, ~15 s and ~12 s on one busy core


def _reaches(name: str) -> None:
    task = get_task(name)
    # eval_train=False: the target is a validation metric; skip the train-set pass.
    result = run_task(task, seed=0, eval_train=False)  # the default optimizer
    assert result.optimizer == task.default_optimizer
    summary = summarize(result, task)
    final = summary["final"][task.target.metric]
    assert summary["target_reached"], f"{name}: {task.target.describe()} not reached, final {final}"
    # Not a lucky single epoch: the run ends at the target too.
    assert task.target.reached(final), f"{name}: final {task.target.metric} = {final}"
    assert summary["lr_source"] == "task default table"


@pytest.mark.parametrize("name", FAST)
def test_default_recipe_reaches_target(name: str) -> None:
    _reaches(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_default_recipe_reaches_target_slow(name: str) -> None:
    _reaches(name)
