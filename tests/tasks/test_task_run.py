"""run_task, compare and summarize on the cheapest task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from descend._validation import InvalidParameterError
from descend.schedules import cosine
from descend.tasks import (
    LR_FROM_CALLER,
    LR_FROM_TASK,
    compare,
    get_task,
    run_task,
    summarize,
)


def test_run_task_uses_the_task_recipe_and_says_where_lr_came_from() -> None:
    task = get_task("linreg")
    result = run_task("linreg", "gd", epochs=5)
    assert result.lr_source == LR_FROM_TASK
    assert result.config["lr"] == task.lrs["gd"]
    assert result.config["batch_size"] is None and result.config["epochs"] == 5
    assert [r["epoch"] for r in result.history.epochs] == [1, 2, 3, 4, 5]
    assert all(r["lr"] == task.lrs["gd"] for r in result.history.steps)
    json.dumps(result.config)  # plain data

    given = run_task(task, "gd", lr=0.01, epochs=5)
    assert given.lr_source == LR_FROM_CALLER and given.config["lr"] == 0.01


def test_run_task_is_reproducible_per_seed() -> None:
    a = run_task("logreg", "sgd", epochs=2, seed=3, eval_train=False)
    b = run_task("logreg", "sgd", epochs=2, seed=3, eval_train=False)
    c = run_task("logreg", "sgd", epochs=2, seed=4, eval_train=False)
    losses = [[r["loss"] for r in x.history.steps] for x in (a, b, c)]
    assert losses[0] == losses[1] != losses[2]


def test_schedule_by_name_or_object_and_max_steps() -> None:
    named = run_task("linreg", "gd", epochs=10, schedule="cosine")
    lrs = [r["lr"] for r in named.history.steps]
    assert lrs[0] == pytest.approx(0.1) and lrs[-1] < lrs[0] / 10
    assert named.config["schedule"] == "cosine" and named.config["total_steps"] == 10

    obj = run_task("linreg", "gd", epochs=10, schedule=cosine(0.05, 10))
    assert obj.history.steps[0]["lr"] == pytest.approx(0.05)

    short = run_task("digits", "adam", max_steps=3, eval_train=False)
    assert len(short.history.steps) == 3


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidParameterError, match="'optimizer'"):
        run_task("linreg", "adamaxx")
    with pytest.raises(InvalidParameterError, match="'lr'"):
        run_task("linreg", "gd", lr=-1.0)
    with pytest.raises(InvalidParameterError, match="Unknown task"):
        run_task("linear", "gd")
    with pytest.raises(InvalidParameterError, match="Unknown optimizer"):
        compare("linreg", ["gd", "adamaxx"])


def test_compare_is_optimizer_major_and_paired() -> None:
    results = compare("linreg", ["gd", "adam"], seeds=(0, 1), epochs=3, lrs={"adam": 0.02})
    assert [(r.optimizer, r.seed) for r in results] == [
        ("gd", 0),
        ("gd", 1),
        ("adam", 0),
        ("adam", 1),
    ]
    assert [r.lr_source for r in results] == [
        LR_FROM_TASK,
        LR_FROM_TASK,
        LR_FROM_CALLER,
        LR_FROM_CALLER,
    ]
    # Same seed, same data and initial weights: the first batch loss is the same for every optimizer.
    assert results[0].history.steps[0]["loss"] == results[2].history.steps[0]["loss"]


def test_summarize_reports_final_best_and_time_to_target() -> None:
    task = get_task("linreg")
    result = run_task(task, "gd")
    s = summarize(result, task)
    assert s["target_reached"] is True
    hit = next(r for r in result.history.epochs if r["val_loss"] <= task.target.value)
    assert (s["epochs_to_target"], s["steps_to_target"]) == (hit["epoch"], hit["step"])
    assert s["time_to_target"] == hit["time"]
    assert s["final"]["val_loss"] == result.history.epochs[-1]["val_loss"]
    assert s["best"]["val_loss"] == min(r["val_loss"] for r in result.history.epochs)
    assert s["steps"] == task.epochs and s["seconds_per_step"] > 0
    json.dumps(s)

    never = summarize(run_task(task, "gd", epochs=1, lr=1e-6), task)
    assert never["target_reached"] is False and never["steps_to_target"] is None


def test_summarize_best_accuracy_is_a_maximum() -> None:
    task = get_task("logreg")
    result = run_task(task, "sgd", epochs=3, lr=0.001)
    s = summarize(result, task)
    assert s["best"]["val_accuracy"] == max(r["val_accuracy"] for r in result.history.epochs)
    assert s["best"]["val_loss"] == min(r["val_loss"] for r in result.history.epochs)


def test_checkpoint_and_resume(tmp_path: Path) -> None:
    full = run_task("logreg", "adam", epochs=4, eval_train=False)
    run_task("logreg", "adam", epochs=2, checkpoint_dir=tmp_path, eval_train=False)
    resumed = run_task(
        "logreg", "adam", epochs=4, checkpoint_dir=tmp_path, resume=True, eval_train=False
    )
    assert [r["loss"] for r in resumed.history.steps] == [r["loss"] for r in full.history.steps]
