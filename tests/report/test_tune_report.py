"""The tuning report from plain trial dicts: figures, edge cases, escaping, best.yaml."""

from __future__ import annotations

from pathlib import Path

import yaml

from descend.report import sensitivity_figure, write_tune_run
from descend.report.tune_plots import history_figure, importance_figure, parallel_figure

SPACE = [{"name": "lr", "low": 1e-4, "high": 1.0, "log": True}]


def _trial(number: int, state: str, lr: float, value: float | None, **extra: object) -> dict:
    return {
        "number": number,
        "state": state,
        "value": value if state == "COMPLETE" else None,
        "last_value": value,
        "params": {"lr": lr},
        "seed": 0,
        "epochs_run": 3,
        "intermediate": {},
        "fail_reason": None,
        "lost": False,
        "retry_of": None,
        "worker": "h:1",
        "seconds": 1.0,
        **extra,
    }


def _study(trials: list[dict], best: dict | None) -> dict:
    settings = {
        "task": "digits",
        "optimizer": "sgd",
        "space": SPACE,
        "metric": "val_accuracy",
        "direction": "maximize",
        "epochs": 3,
        "batch_size": 64,
        "schedule": "constant",
        "seed": 0,
        "trials": len(trials),
        "pruner": "median",
    }
    return {
        "name": "digits-sgd",
        "storage": "x.journal",
        "settings": settings,
        "trials": trials,
        "best": best,
        "importances": {"lr": 1.0},
    }


def test_no_completed_trial_draws_no_figure_and_writes_no_best_yaml(tmp_path: Path) -> None:
    trials = [
        _trial(0, "FAIL", 10.0, None, fail_reason="diverged: <b>nan</b>"),
        _trial(1, "FAIL", 1.0, None, lost=True, fail_reason="worker lost"),
    ]
    assert history_figure(trials, metric="m", maximize=True) is None
    assert parallel_figure(trials, SPACE, metric="m") is None
    assert sensitivity_figure({"sgd": trials}, metric="m") is None
    assert importance_figure({}) is None
    written = write_tune_run(
        tmp_path, task={"name": "digits"}, study=_study(trials, None), best_config=None
    )
    assert "best" not in written and not (tmp_path / "best.yaml").exists()
    page = (tmp_path / "report.html").read_text()
    assert "&lt;b&gt;nan&lt;/b&gt;" in page and "<b>nan</b>" not in page  # user text escaped
    assert "1 of 2" in page  # the lost trial is listed but not counted


def test_a_study_with_pruned_and_completed_trials_gets_every_figure(tmp_path: Path) -> None:
    trials = [_trial(i, "COMPLETE", 10 ** (-3 + i / 2), 0.5 + i / 20) for i in range(6)]
    trials.append(_trial(6, "PRUNED", 0.3, 0.4))
    best = trials[5]
    config = {"task": "digits", "optimizer": "sgd", "lr": best["params"]["lr"]}
    written = write_tune_run(
        tmp_path,
        task={"name": "digits"},
        study=_study(trials, best),
        best_config=config,
        others={"adam": trials[:3]},
    )
    for key in ("history", "parallel", "importance", "sensitivity", "best", "trials", "report"):
        assert written[key].exists(), key
    assert yaml.safe_load((tmp_path / "best.yaml").read_text()) == config
    assert (tmp_path / "report.html").read_text().count("data:image/png;base64,") == 4
    rows = (tmp_path / "trials.csv").read_text().splitlines()
    assert rows[0].startswith("number,state,value,epochs_run,seed,lr") and len(rows) == 8
