"""Journal file against SQLite under several worker processes: the measurement behind the default.

W processes take N queued trials from one study the way descend's workers do (WAITING
-> RUNNING, then report 5 values and finish), with a trivial objective so that only
the storage is measured. Counted: wall time, trials run twice (two workers granted the
same trial), errors. Run: .venv/bin/python scripts/measure_tune_storage.py [N]
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from descend.tune.storage import open_storage


def _worker(where: str, out: mp.Queue) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = open_storage(where)
    study = optuna.load_study(study_name="s", storage=storage)
    study_id = storage.get_study_id_from_name("s")
    ran, errors = [], 0
    while True:
        taken = None
        for t in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,)):
            try:
                if storage.set_trial_state_values(t._trial_id, TrialState.RUNNING):
                    taken = t._trial_id
                    break
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
        if taken is None:
            break
        try:
            trial = optuna.trial.Trial(study, taken)
            x = trial.suggest_float("x", 1e-4, 1.0, log=True)
            for step in range(5):
                trial.report(x * step, step)
            study.tell(trial, x)
            ran.append(taken)
        except Exception:  # noqa: BLE001 - counted: a second tell of a trial run twice
            errors += 1
            ran.append(taken)
    out.put((ran, errors))


def measure(kind: str, workers: int, trials: int) -> str:
    folder = Path(tempfile.mkdtemp(prefix=f"descend-{kind}-"))
    where = str(folder / "s.journal") if kind == "journal" else f"sqlite:///{folder}/s.db"
    storage = open_storage(where)
    study = optuna.create_study(study_name="s", storage=storage)
    for _ in range(trials):
        study.enqueue_trial({})
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    start = time.perf_counter()
    procs = [ctx.Process(target=_worker, args=(where, queue)) for _ in range(workers)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    wall = time.perf_counter() - start
    ran = [t for r, _ in results for t in r]
    twice = len(ran) - len(set(ran))
    errors = sum(e for _, e in results)
    return (
        f"{kind:8s} {workers} workers, {trials} trials: {wall:5.1f} s, "
        f"{twice} trials run twice, {errors} errors"
    )


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    for workers in (2, 4):
        for kind in ("journal", "sqlite"):
            print(measure(kind, workers, n), flush=True)
