"""Schedule-Free and Prodigy train ``digits`` to its target with their documented defaults
(the task's learning-rate rules: Schedule-Free AdamW at AdamW's rate, Schedule-Free SGD at
10x momentum's, Prodigy at lr=1), evaluated in eval mode (the average x)."""

from __future__ import annotations

import pytest

from descend.tasks import get_task, run_task, summarize


@pytest.mark.parametrize("name", ["schedulefree_adamw", "schedulefree_sgd", "prodigy"])
def test_digits_reaches_its_target(name: str) -> None:
    task = get_task("digits")
    result = run_task(task, optimizer=name, seed=0, eval_train=False)
    summary = summarize(result, task)
    final = summary["final"][task.target.metric]
    assert summary["target_reached"], f"{name}: {task.target.describe()} not reached, final {final}"
    assert task.target.reached(final), f"{name}: final {task.target.metric} = {final}"
