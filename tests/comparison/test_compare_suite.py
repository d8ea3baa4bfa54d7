"""Across tasks: one comparison per task, steps to target per task and a performance profile."""

from __future__ import annotations

import json
import math

import pytest
import torch

from descend.cli.main import main
from descend.comparison.suite import compare_tasks
from descend.report.profiles import profile, ratios


def test_the_profile_counts_tasks_within_tau_of_the_best() -> None:
    costs = {
        "a": {"sgd": 100.0, "adam": 50.0, "rmsprop": 60.0},
        "b": {"sgd": 30.0, "adam": 90.0, "rmsprop": None},
        "c": {"sgd": None, "adam": None, "rmsprop": None},
    }
    assert ratios(costs)["a"] == {"sgd": 2.0, "adam": 1.0, "rmsprop": 1.2}
    assert all(math.isinf(v) for v in ratios(costs)["c"].values())
    curves = profile(costs, [1.0, 1.5, 3.0, 100.0])
    assert curves["sgd"] == [1 / 3, 1 / 3, 2 / 3, 2 / 3]
    assert curves["adam"] == [1 / 3, 1 / 3, 2 / 3, 2 / 3]
    assert curves["rmsprop"] == [0.0, 1 / 3, 1 / 3, 1 / 3]


def test_compare_tasks_writes_each_task_and_the_profile_and_resumes(tmp_path, capsys) -> None:
    out = tmp_path / "suite"
    args = ["compare", "--tasks", "linreg,logreg", "--optimizers", "sgd,adam", "--seeds", "2"]
    try:
        main([*args, "--epochs", "4", "--out", str(out), "--quiet", "--allow-divergence"])
    except SystemExit as exc:
        assert not exc.code
    printed = capsys.readouterr().out
    assert "linreg: " in printed and "logreg: " in printed and "report: " in printed
    for task in ("linreg", "logreg"):
        assert json.loads((out / task / "summary.json").read_text())["complete"]
    suite = json.loads((out / "suite.json").read_text())
    assert suite["complete"] and set(suite["steps_to_target"]) == {"linreg", "logreg"}
    assert set(suite["steps_to_target"]["logreg"]) == {"sgd", "adam"}
    assert (out / "profile.png").stat().st_size > 10_000
    page = (out / "report.html").read_text()
    assert 'href="logreg/report.html"' in page and "Performance profile" in page

    again = compare_tasks([], out=out, resume_suite=True)
    assert again.missing == [] and json.loads((out / "suite.json").read_text()) == suite


def test_tasks_and_a_task_argument_are_exclusive(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["compare", "digits", "--tasks", "linreg,logreg", "--out", str(tmp_path)])
    assert exc.value.code == 2 and "either a TASK or --tasks" in capsys.readouterr().err


def test_compare_with_no_arguments_runs_the_seed_optimizers_on_deep_sigmoid(
    tmp_path, monkeypatch
) -> None:
    import descend.comparison

    seen = {}

    def fake(task, optimizers, **kwargs):
        seen.update(task=task, optimizers=list(optimizers), **kwargs)
        raise SystemExit(0)

    monkeypatch.setattr(descend.comparison, "compare", fake)
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with pytest.raises(SystemExit):
            main(["compare", "--quiet"])
        assert torch.get_num_threads() == 1  # small models: one thread, no contention
    finally:
        torch.set_num_threads(threads)
    assert seen["task"] == "deep_sigmoid" and seen["seeds"] == [0, 1, 2]
    assert seen["optimizers"] == ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"]
