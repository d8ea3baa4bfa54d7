"""``descend.tune.tune``: exact budgets, reproducible trials, diverged trials, pruning, joining."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("optuna")

from descend._validation import InvalidParameterError
from descend.tasks import run_task
from descend.tune import open_study, tune


def _final(config: dict, seed: int | None = None) -> float:
    options = dict(config["optimizer_options"])
    if "betas" in options:
        options["betas"] = tuple(options["betas"])
    result = run_task(
        config["task"],
        config["optimizer"],
        lr=config["lr"],
        optimizer_options=options,
        seed=config["seed"] if seed is None else seed,
        epochs=config["epochs"],
        batch_size=config["batch_size"],
        schedule=config["schedule"],
        eval_train=False,
    )
    return result.history.epochs[-1]["val_accuracy"]


def test_a_study_runs_exactly_its_trials_and_its_best_trial_reruns_exactly() -> None:
    result = tune("logreg", "adam", trials=6, epochs=2, tune="all", seed=3)
    assert len(result.trials) == 6 == len(result.counted())
    assert {t["state"] for t in result.trials} <= {"COMPLETE", "PRUNED"}
    assert all(t["seed"] == 3 for t in result.trials)
    config = result.best_config()
    assert set(result.best_params) == {"lr", "beta1", "beta2", "eps", "weight_decay"}
    assert config["optimizer_options"]["betas"] == [
        result.best_params["beta1"],
        result.best_params["beta2"],
    ]
    # The seed is part of the trial: the best trial's settings give its value again.
    assert _final(config) == result.best_value
    assert (
        result.settings["metric"] == "val_accuracy" and result.settings["direction"] == "maximize"
    )
    assert set(result.importances) == set(result.best_params)
    assert math.isclose(sum(result.importances.values()), 1.0, rel_tol=1e-6)


def test_a_diverging_trial_is_failed_with_its_reason_and_the_study_goes_on() -> None:
    result = tune("linreg", "sgd", trials=2, epochs=20, space="lr=1e3:1e4:log", pruner="none")
    assert [t["state"] for t in result.trials] == ["FAIL", "FAIL"]
    assert all(t["fail_reason"].startswith("diverged: ") for t in result.trials)
    assert result.best is None
    with pytest.raises(ValueError, match="no completed trial"):
        result.best_config()


def test_hyperband_prunes_on_epochs() -> None:
    result = tune("logreg", "sgd", trials=8, epochs=4, pruner="hyperband")
    assert len(result.trials) == 8 and result.settings["pruner"] == "hyperband"


def test_joining_a_study_with_other_settings_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    journal = tmp_path / "study.journal"
    open_study("logreg", "sgd", trials=3, epochs=2, storage=journal, study="s")
    size = journal.stat().st_size
    with pytest.raises(InvalidParameterError, match=r"study 's' searches something else.*space"):
        open_study(
            "logreg",
            "sgd",
            trials=3,
            epochs=2,
            storage=journal,
            study="s",
            space="lr=1e-3:1e-1:log",
        )
    with pytest.raises(InvalidParameterError, match="epochs: study 2, command 3"):
        open_study("logreg", "sgd", trials=3, epochs=3, storage=journal, study="s")
    assert journal.stat().st_size == size
    # The same settings join: the queued trials are the study's, none are added.
    ref = open_study("logreg", "sgd", trials=3, epochs=2, storage=journal, study="s")
    assert not ref.created and len(ref.storage.get_all_trials(0)) == 3


def test_an_unreachable_database_is_one_error_without_the_password(tmp_path: Path) -> None:
    url = "postgresql://user:secret@127.0.0.1:1/nowhere"
    with pytest.raises(InvalidParameterError, match="cannot be reached") as info:
        tune("logreg", "sgd", trials=2, storage=url, out=tmp_path / "run")
    assert "secret" not in str(info.value) and "***" in str(info.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"trials": 0}, "'trials' parameter of tune"),
        ({"pruner": "asha"}, "'pruner' parameter of tune"),
        ({"schedule": "wobbly"}, "'schedule' parameter of tune"),
        ({"workers": 2}, "needs a storage they share"),
        ({"workers": 2, "storage": "sqlite:///x.db"}, "cannot share a SQLite storage"),
        ({"tune": "most"}, "Unknown --tune value 'most'"),
        ({"space": "lr=1:0"}, "the range is empty"),
    ],
)
def test_bad_settings_are_refused_before_any_trial(kwargs: dict, says: str) -> None:
    with pytest.raises(InvalidParameterError, match=says):
        tune("logreg", "sgd", **{"trials": 2, **kwargs})


def _seed_spread(config: dict, seeds=(0, 1, 2)) -> tuple[float, float]:
    values = [_final(config, seed) for seed in seeds]
    return float(np.mean(values)), max(values) - min(values)


@pytest.mark.slow
def test_median_pruning_cuts_the_epochs_of_a_30_trial_study_and_keeps_the_best() -> None:
    # Budget: 30 trials of logreg (sgd, lr only), 6 epochs each, seed 0; without and with pruning.
    full = tune("logreg", "sgd", trials=30, epochs=6, pruner="none")
    pruned = tune("logreg", "sgd", trials=30, epochs=6, pruner="median")
    epochs_full = sum(t["epochs_run"] for t in full.trials)
    epochs_pruned = sum(t["epochs_run"] for t in pruned.trials)
    assert epochs_full == 30 * 6
    # Measured: 180 -> 124 epochs (31% fewer); asked: at least 20% fewer.
    assert epochs_pruned <= 0.8 * epochs_full, (epochs_pruned, epochs_full)
    _, spread = _seed_spread(full.best_config())
    assert abs(pruned.best_value - full.best_value) <= max(spread, 1e-9)


@pytest.mark.slow
def test_tuning_sgd_on_digits_matches_a_dense_grid_within_the_seed_spread() -> None:
    # Budget: 20 trials of sgd on digits (lr in [1e-4, 1], log), 3 epochs each, median pruning;
    # against a grid of 13 learning rates (3 per decade over the same range), 3 epochs each.
    epochs = 3
    result = tune("digits", "sgd", trials=20, epochs=epochs, seed=0)
    grid = np.logspace(-4, 0, 13)
    base = {**result.best_config(), "optimizer_options": {}}
    scores = [_final({**base, "lr": float(lr)}) for lr in grid]
    best_lr = float(grid[int(np.argmax(scores))])
    _, spread = _seed_spread({**base, "lr": best_lr})
    assert result.best_value >= max(scores) - spread, (result.best_value, max(scores), spread)
