"""The registry's ``muon`` (Muon on the matrices, AdamW on the rest) trains ``digits`` to
its target with the documented defaults: the task's adaptive-method lr (3e-3), weight
decay 0.01, momentum 0.95, Nesterov, 5 Newton–Schulz steps, AdamW-matched scale."""

from __future__ import annotations

from descend.tasks import get_task, run_task, summarize


def test_muon_trains_digits_to_its_target() -> None:
    task = get_task("digits")
    # Two of the recipe's five epochs: the target falls in the first (46 steps measured).
    result = run_task(task, "muon", seed=0, epochs=2, eval_train=False)
    summary = summarize(result, task)
    final = summary["final"][task.target.metric]
    assert summary["target_reached"] and task.target.reached(final), final
    assert summary["lr_source"] == "task default table"
