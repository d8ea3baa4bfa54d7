"""Adafactor and SOAP train ``digits`` to its target with their registry defaults and the
task's learning-rate table (seed 0), as the default recipe does with Adam."""

from __future__ import annotations

import pytest

from descend.tasks import get_task, run_task, summarize


@pytest.mark.parametrize("optimizer", ["adafactor", "soap"])
def test_reaches_the_digits_target(optimizer: str) -> None:
    task = get_task("digits")
    result = run_task(task, optimizer, seed=0, eval_train=False)
    summary = summarize(result, task)
    final = summary["final"][task.target.metric]
    assert summary["target_reached"], f"{task.target.describe()} not reached, final {final}"
    assert task.target.reached(final)
