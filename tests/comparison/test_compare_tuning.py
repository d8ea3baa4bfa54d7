"""--budget: every optimizer gets the same number of tuning trials, on data the comparison never scores."""

from __future__ import annotations

import json

import torch
import yaml

from descend.comparison import compare, resume
from descend.comparison.tuning import Tuned, lr_candidates, tuning_task
from descend.tasks import get_task


def test_the_tuning_split_is_part_of_the_training_set_and_never_the_validation_set() -> None:
    task = get_task("logreg")
    full, split = task.data(0), tuning_task(task).data(0)
    train_rows = {tuple(r.tolist()) for r in full.train[0]}
    val_rows = {tuple(r.tolist()) for r in full.val[0]}
    for part in (split.train[0], split.val[0]):
        rows = {tuple(r.tolist()) for r in part}
        assert rows <= train_rows and not rows & val_rows
    assert len(split.train[0]) + len(split.val[0]) == len(full.train[0])
    assert torch.equal(tuning_task(task).data(0).val[0], split.val[0])  # the same split every time


def test_the_grid_is_log_spaced_around_the_task_value() -> None:
    grid = lr_candidates(0.05, 5)
    assert len(grid) == 5 and abs(grid[2] - 0.05) < 1e-12
    assert abs(grid[0] - 0.005) < 1e-12 and abs(grid[-1] - 0.5) < 1e-12


def test_budget_tunes_each_optimizer_equally_and_the_runs_use_the_choice(tmp_path) -> None:
    out = tmp_path / "cmp"
    result = compare(
        "linreg", ["sgd", "adam"], out=out, seeds=[0, 1], epochs=10, budget=3, lrs={"adam": 0.05}
    )
    assert result.complete
    sgd = json.loads((out / "tuning" / "sgd.json").read_text())
    assert len(sgd["trials"]) == 3 and sgd["method"] == "lr grid (3 trials)"
    assert not (out / "tuning" / "adam.json").exists()  # given an lr: not tuned
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["budget"] == 3 and list(config["tuning"]) == ["sgd"]
    lrs = {
        (r["optimizer"], r["seed"]): r["config"]["hyperparameters"]["lr"] for r in config["runs"]
    }
    assert lrs[("sgd", 0)] == {"value": sgd["hyperparameters"]["lr"], "source": "tuned"}
    assert lrs[("sgd", 1)] == lrs[("sgd", 0)]
    assert lrs[("adam", 0)] == {"value": 0.05, "source": "command line"}
    assert (out / "tuning.png").exists() and "Tuning trials" in (out / "report.html").read_text()


def test_a_tuner_can_be_swapped_in_and_resume_does_not_tune_again(tmp_path) -> None:
    calls: list[tuple[str, int]] = []

    def fixed(task, optimizer, budget, *, recipe):
        calls.append((optimizer, budget))
        return Tuned({"lr": 0.02}, [{"hyperparameters": {"lr": 0.02}, "score": 1.0}], "fixed")

    out = tmp_path / "cmp"
    compare("linreg", ["sgd"], out=out, seeds=[0], epochs=5, budget=2, tuner=fixed)
    assert calls == [("sgd", 2)]
    (out / "runs" / "sgd-seed0.json").unlink()  # as if the run had been lost
    result = resume(out, tuner=fixed)
    assert calls == [("sgd", 2)]  # the saved choice is reused
    assert result.records[0]["lr"] == 0.02 and result.records[0]["lr_source"] == "tuned"


def test_tune_all_runs_an_optuna_study_and_the_runs_use_every_tuned_value(tmp_path) -> None:
    import pytest

    pytest.importorskip("optuna")
    out = tmp_path / "cmp"
    result = compare("logreg", ["adam"], out=out, seeds=[0], epochs=2, budget=2, tune="all")
    tuned = json.loads((out / "tuning" / "adam.json").read_text())
    assert len(tuned["trials"]) == 2 and tuned["method"] == "optuna, tune all (2 trials)"
    hyper = result.records[0]["config"]["hyperparameters"]
    assert hyper["lr"] == {"value": tuned["hyperparameters"]["lr"], "source": "tuned"}
    assert hyper["betas"] == {"value": tuned["hyperparameters"]["betas"], "source": "tuned"}
    assert (
        result.records[0]["config"]["optimizer_options"]["eps"] == tuned["hyperparameters"]["eps"]
    )


def test_a_signal_during_tuning_keeps_the_optimizers_already_tuned(tmp_path) -> None:
    from descend.comparison.tuning import TuningInterrupted

    calls: list[str] = []

    def stopped_at_adam(task, optimizer, budget, *, recipe):
        calls.append(optimizer)
        if optimizer == "adam":
            raise TuningInterrupted("SIGINT")  # as lr_grid does when a trial was interrupted
        return Tuned({"lr": 0.05}, [], "fixed")

    out = tmp_path / "cmp"
    result = compare(
        "linreg", ["sgd", "adam"], out=out, seeds=[0], epochs=3, budget=2, tuner=stopped_at_adam
    )
    assert result.interrupted_by == "SIGINT" and result.records == []
    assert result.missing == ["sgd-seed0", "adam-seed0"]
    assert (out / "tuning" / "sgd.json").exists() and not (out / "tuning" / "adam.json").exists()

    def fixed(task, optimizer, budget, *, recipe):
        calls.append(optimizer)
        return Tuned({"lr": 0.01}, [], "fixed")

    finished = resume(out, tuner=fixed)
    assert calls == ["sgd", "adam", "adam"]  # sgd's choice was kept, adam tuned again
    assert finished.complete
    assert [r["lr"] for r in finished.records] == [0.05, 0.01]
