"""Several workers on one study: exactly the trials asked for, and a killed worker's trial retried.

The budgets are small (logreg, a few epochs a trial): what is tested is the
bookkeeping, which does not depend on how long a trial takes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("optuna")

from descend.tune import open_study, tune
from descend.tune.processes import worker_command
from descend.tune.result import collect

pytestmark = pytest.mark.slow


def _assert_exact(result, trials: int) -> None:
    counted = result.counted()
    states = Counter(t["state"] for t in result.trials)
    assert len(counted) == trials, states
    assert states["RUNNING"] == 0 and states["WAITING"] == 0
    assert {t["state"] for t in counted} <= {"COMPLETE", "PRUNED", "FAIL"}
    numbers = [t["number"] for t in result.trials]
    assert len(numbers) == len(set(numbers))  # no trial recorded twice
    assert all(t["worker"] for t in counted)  # every trial was run, by some worker


@pytest.mark.parametrize("workers", [2, 4])
def test_workers_on_a_journal_file_finish_exactly_the_trials(tmp_path: Path, workers: int) -> None:
    result = tune("logreg", "sgd", trials=10, epochs=2, workers=workers, out=tmp_path)
    _assert_exact(result, 10)
    assert (tmp_path / "study.journal").exists()
    assert len(list((tmp_path / "workers").glob("worker-*.log"))) == workers


@pytest.mark.parametrize("workers", [2, 4])
def test_workers_on_postgresql_finish_exactly_the_trials(
    postgres_url: str, tmp_path: Path, workers: int
) -> None:
    study = f"pg-{workers}"
    result = tune(
        "logreg",
        "sgd",
        trials=10,
        epochs=2,
        workers=workers,
        storage=postgres_url,
        study=study,
        out=tmp_path,
    )
    _assert_exact(result, 10)
    assert result.storage == postgres_url and not (tmp_path / "study.journal").exists()


def _running_trial_of(storage, name: str, pid: int, timeout: float = 120.0) -> int:
    from optuna.trial import TrialState

    study_id = storage.get_study_id_from_name(name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for t in storage.get_all_trials(study_id, states=(TrialState.RUNNING,)):
            # Its hyperparameters drawn: the worker is training, mid-trial.
            if str(t.user_attrs.get("worker", "")).endswith(f":{pid}") and t.params:
                return t.number
        time.sleep(0.1)
    raise AssertionError(f"worker {pid} never started a trial")


def test_a_sigkilled_worker_loses_only_its_trial_which_is_retried(tmp_path: Path) -> None:
    # Long enough trials (150 epochs of logreg at a tiny lr) that the kill lands mid-trial.
    settings = {"trials": 2, "epochs": 150, "pruner": "none", "space": "lr=1e-5:2e-5:log"}
    ref = open_study("logreg", "sgd", storage=tmp_path / "s.journal", **settings)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    worker = subprocess.Popen(worker_command(ref.where, ref.name, 0, 0.3, 2.0), env=env)
    try:
        lost = _running_trial_of(ref.storage, ref.name, worker.pid)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    left = collect(ref.storage, ref.name, ref.where)
    assert [t["state"] for t in left.trials if t["number"] == lost] == ["RUNNING"]

    # Another worker joins the study, fails the silent trial after the grace, runs its retry.
    result = tune(
        "logreg",
        "sgd",
        storage=tmp_path / "s.journal",
        study=ref.name,
        heartbeat=0.3,
        grace=2.0,
        **settings,
    )
    _assert_exact(result, 2)
    by_number = {t["number"]: t for t in result.trials}
    assert by_number[lost]["state"] == "FAIL" and by_number[lost]["lost"]
    assert "worker lost: no heartbeat" in by_number[lost]["fail_reason"]
    retries = [t for t in result.trials if t["retry_of"] == lost]
    assert len(retries) == 1 and retries[0]["state"] == "COMPLETE"
    assert retries[0]["params"] == by_number[lost]["params"]
    assert retries[0]["seed"] == by_number[lost]["seed"]
    assert len(result.trials) == 3  # the two of the budget and the lost one


def test_a_sigterm_gives_the_running_trial_back_at_once(tmp_path: Path) -> None:
    settings = {"trials": 2, "epochs": 150, "pruner": "none", "space": "lr=1e-5:2e-5:log"}
    ref = open_study("logreg", "sgd", storage=tmp_path / "s.journal", **settings)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    worker = subprocess.Popen(worker_command(ref.where, ref.name, 0, 0.3, 60.0), env=env)
    number = _running_trial_of(ref.storage, ref.name, worker.pid)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 130
    # No grace to wait for: the trial was failed as lost by its own worker and queued again.
    trials = {t["number"]: t for t in collect(ref.storage, ref.name, ref.where).trials}
    assert trials[number]["state"] == "FAIL" and trials[number]["lost"]
    assert trials[number]["fail_reason"] == "interrupted (SIGTERM); retried"
    retry = [t for t in trials.values() if t["retry_of"] == number]
    assert len(retry) == 1 and retry[0]["state"] == "WAITING"
    assert not [t for t in trials.values() if t["state"] == "RUNNING"]
