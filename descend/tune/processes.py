"""Running a study's workers: here (:func:`run_worker`) or as N processes, with one progress bar."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from descend.tune.objective import run_trial
from descend.tune.study import StudyRef, study_handle
from descend.tune.workers import LOST_KEY, work


def run_worker(
    storage: Any,
    name: str,
    settings: dict[str, Any],
    worker: int,
    heartbeat: float,
    grace: float,
    progress: bool,
) -> None:
    """Be one worker of study ``name`` in this process until nothing is queued or running.

    ``worker`` is this worker's index (it seeds the sampler); ``progress`` shows a bar.
    """
    the_study = study_handle(storage, name, settings, worker)
    bar = _Bar(the_study, settings, progress)
    work(
        the_study,
        storage,
        lambda trial: run_trial(trial, settings),
        heartbeat=heartbeat,
        grace=grace,
        on_trial_end=bar.update,
    )
    bar.close()


def worker_command(
    storage: str,
    study: str,
    worker: int,
    heartbeat: float,
    grace: float,
    device: str = "cpu",
    precision: str = "fp32",
) -> list[str]:
    """The command line of one worker process (``python -m descend.tune.worker``)."""
    return [
        sys.executable,
        "-m",
        "descend.tune.worker",
        "--storage",
        storage,
        "--study",
        study,
        "--worker",
        str(worker),
        "--heartbeat",
        str(heartbeat),
        "--grace",
        str(grace),
        "--device",
        device,
        "--precision",
        precision,
    ]


def work_in_processes(
    ref: StudyRef,
    workers: int,
    out: str | os.PathLike[str] | None,
    heartbeat: float,
    grace: float,
    progress: bool,
) -> None:
    logs = Path(out) / "workers" if out is not None else None
    if logs is not None:
        logs.mkdir(parents=True, exist_ok=True)
    procs = []
    files = contextlib.ExitStack()
    for k in range(workers):
        log = (
            files.enter_context((logs / f"worker-{k}.log").open("wb"))
            if logs is not None
            else subprocess.DEVNULL
        )
        procs.append(
            subprocess.Popen(
                worker_command(ref.where, ref.name, k, heartbeat, grace, *_runtime(ref.settings)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        )
    bar = _Bar(study_handle(ref.storage, ref.name, ref.settings, workers), ref.settings, progress)
    try:
        while any(p.poll() is None for p in procs):
            bar.refresh()
            time.sleep(0.5)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
            p.wait()
        files.close()
    # Every worker gone (one killed with the others done, or all killed): finish here,
    # retrying whatever they left running once its heartbeat is stale.
    run_worker(ref.storage, ref.name, ref.settings, workers, heartbeat, grace, progress=False)
    bar.refresh()
    bar.close()


class _Bar:
    """One tqdm bar over the study's trials, with the best value so far."""

    def __init__(self, study: Any, settings: dict[str, Any], enabled: bool) -> None:
        self.study, self.settings = study, settings
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=settings["trials"], unit="trial", desc=f"tune {settings['optimizer']}"
            )
            self.refresh()

    def refresh(self) -> None:
        if self.bar is None:
            return
        done = [
            t
            for t in self.study.get_trials(deepcopy=False)
            if t.state.is_finished() and not t.system_attrs.get(LOST_KEY)
        ]
        self.bar.n = len(done)
        values = [t.value for t in done if t.values]
        if values:
            best = max(values) if self.settings["direction"] == "maximize" else min(values)
            self.bar.set_postfix_str(f"best {self.settings['metric']} {best:.4g}", refresh=False)
        self.bar.refresh()

    update = refresh

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _runtime(settings: dict[str, Any]) -> tuple[str, str]:
    # Where a worker trains is its own choice, not the study's: workers on several
    # machines share one study, and each runs on what it has.
    return settings.get("device", "cpu"), settings.get("precision", "fp32")
