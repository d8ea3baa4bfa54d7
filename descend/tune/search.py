"""``tune``: an Optuna study of one optimizer's hyperparameters on a task, by one call.

The search itself is Optuna's (TPE sampler, median or Hyperband pruner, its
storages); what is descend's is the search space of each optimizer
(:mod:`descend.tune.spaces`), the objective that trains a task
(:mod:`descend.tune.objective`) and the worker loop that keeps the count of trials
exact across processes and machines (:mod:`descend.tune.workers`).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from descend._validation import Interval, InvalidParameterError, OneOf, Satisfies, validate
from descend.schedules import SCHEDULE_NAMES
from descend.tasks import get_task
from descend.tune.objective import objective_metric, run_trial
from descend.tune.overrides import parse_space
from descend.tune.spaces import Param, search_space, space_to_dicts
from descend.tune.storage import (
    create_or_join,
    is_url,
    open_storage,
    optuna_module,
    redact,
    study_settings,
)
from descend.tune.trials import trial_records
from descend.tune.workers import DEFAULT_GRACE, DEFAULT_HEARTBEAT, LOST_KEY, queue_trials, work

PRUNERS = ("median", "hyperband", "none")
JOURNAL_NAME = "study.journal"

_COUNT = Interval(1, None, closed="left", integer=True)
_POSITIVE = Interval(0, None, closed="neither")
_TABLE = {
    "trials": _COUNT,
    "workers": _COUNT,
    "seed": Interval(0, 2**31 - 1, integer=True),
    "pruner": OneOf(PRUNERS),
    "heartbeat": _POSITIVE,
    "grace": _POSITIVE,
    "epochs": (_COUNT, Satisfies(lambda v: v is None, "None")),
    "batch_size": (_COUNT, Satisfies(lambda v: v is None, "None")),
    "schedule": OneOf(SCHEDULE_NAMES),
}


@dataclass
class TuneResult:
    """What a study found.

    Attributes:
        study: the study's name; ``storage``: where it lives (password hidden).
        settings: the study's settings (task, optimizer, space, metric, direction,
            epochs, batch size, schedule, seed, trials, pruner).
        trials: one plain dict per trial (see :func:`descend.tune.trials.trial_records`).
        best: the best finished trial's record, ``None`` when no trial completed.
        importances: hyperparameter -> importance (Optuna's fANOVA), empty when
            fewer than two trials completed.
    """

    study: str
    storage: str
    settings: dict[str, Any]
    trials: list[dict[str, Any]]
    best: dict[str, Any] | None
    importances: dict[str, float] = field(default_factory=dict)

    @property
    def best_params(self) -> dict[str, float]:
        """The best trial's hyperparameters (``{}`` when none completed)."""
        return dict(self.best["params"]) if self.best else {}

    @property
    def best_value(self) -> float | None:
        return None if self.best is None else self.best["value"]

    def counted(self) -> list[dict[str, Any]]:
        """The trials of the budget: all but lost ones (each lost trial was run again)."""
        return [t for t in self.trials if not t["lost"]]

    def best_config(self) -> dict[str, Any]:
        """The best trial as the settings of ``descend train --config`` (``best.yaml``)."""
        if self.best is None:
            raise ValueError(f"study {self.study!r} has no completed trial, so no best settings")
        from descend.tune.spaces import optimizer_options

        s, params = self.settings, self.best["params"]
        options = {
            k: list(v) if isinstance(v, tuple) else v for k, v in optimizer_options(params).items()
        }
        return {
            "task": s["task"],
            "optimizer": s["optimizer"],
            "lr": params["lr"],
            "optimizer_options": options,
            "seed": self.best["seed"],
            "epochs": s["epochs"],
            "batch_size": s["batch_size"],
            "schedule": s["schedule"],
        }


def make_pruner(name: str, epochs: int) -> Any:
    """Optuna's pruner for ``name``: median (default), hyperband over epochs, or none."""
    optuna = optuna_module()
    if name == "median":
        # Optuna's defaults: judge from the 6th trial on, at every epoch.
        return optuna.pruners.MedianPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    return optuna.pruners.NopPruner()


def make_sampler(seed: int, worker: int) -> Any:
    """TPE, seeded per worker (two workers with one seed would propose the same values);
    ``constant_liar`` counts running trials as bad so parallel workers spread out."""
    return optuna_module().samplers.TPESampler(seed=seed + 1000 * worker, constant_liar=True)


def study_handle(storage: Any, name: str, settings: dict[str, Any], worker: int) -> Any:
    """The study ``name`` loaded with this process's sampler and pruner."""
    return optuna_module().load_study(
        study_name=name,
        storage=storage,
        sampler=make_sampler(settings["seed"], worker),
        pruner=make_pruner(settings["pruner"], settings["epochs"]),
    )


def _settings(
    task_name: str,
    task_options: dict[str, Any],
    optimizer: str,
    tune: str,
    space: tuple[Param, ...],
    *,
    trials: int,
    seed: int,
    epochs: int | None,
    batch_size: int | None,
    schedule: str,
    pruner: str,
) -> dict[str, Any]:
    task = get_task(task_name, **task_options)
    metric, direction = objective_metric(task)
    return {
        "task": task.name,
        "task_options": dict(task_options),
        "optimizer": optimizer,
        "tune": tune,
        "space": space_to_dicts(space),
        "metric": metric,
        "direction": direction,
        "epochs": task.epochs if epochs is None else epochs,
        "batch_size": task.batch_size if batch_size is None else batch_size,
        "schedule": schedule,
        "seed": seed,
        "trials": trials,
        "pruner": pruner,
    }


def tune(
    task: str,
    optimizer: str,
    *,
    trials: int = 40,
    tune: str = "lr",
    space: str | Sequence[Param] | None = None,
    seed: int = 0,
    epochs: int | None = None,
    batch_size: int | None = None,
    schedule: str = "constant",
    pruner: str = "median",
    storage: str | os.PathLike[str] | None = None,
    study: str | None = None,
    workers: int = 1,
    out: str | os.PathLike[str] | None = None,
    heartbeat: float = DEFAULT_HEARTBEAT,
    grace: float = DEFAULT_GRACE,
    progress: bool = False,
    task_options: dict[str, Any] | None = None,
) -> TuneResult:
    """Tune ``optimizer``'s hyperparameters on ``task`` with ``trials`` Optuna trials.

    Args:
        task: a task name (``descend tasks``).
        optimizer: a registry name (``gd`` ... ``adamw``).
        trials: the budget: the study ends with exactly this many trials (pruned and
            diverged ones included; a trial lost with its worker is run again and
            counted once).
        tune: ``"lr"`` or ``"all"`` (see :func:`~descend.tune.spaces.search_space`).
        space: range overrides, as ``--space`` text or :class:`Param` objects.
        seed: the seed of every trial (data split, initial weights, batch order) and
            of the sampler.
        epochs, batch_size, schedule: the training recipe (default: the task's,
            constant learning rate).
        pruner: ``"median"``, ``"hyperband"`` or ``"none"``.
        storage: a journal file path or a database URL; default
            ``out/study.journal``, or in memory when ``out`` is ``None`` too.
        study: the study's name (default ``TASK-OPTIMIZER``); an existing study of
            that name is joined, and must have the same settings.
        workers: processes on this machine (each runs one trial at a time).
        out: a folder for the journal and the workers' logs.
        heartbeat, grace: seconds between a running trial's heartbeats; silence after
            which another worker fails it and queues it again.
        progress: one bar over the trials, with the best value so far.

    Returns:
        The :class:`TuneResult`.

    Raises:
        InvalidParameterError: a bad setting or ``--space`` entry, an unreachable
            storage, or an existing study with other settings; raised before anything
            is written.
    """
    validate("tune", {"workers": workers, "heartbeat": heartbeat, "grace": grace}, _TABLE)
    if workers > 1 and storage is None and out is None:
        raise InvalidParameterError(
            "tune with workers > 1 needs a storage they share: give storage= or out=."
        )
    if workers > 1 and storage is not None and str(storage).startswith("sqlite"):
        raise InvalidParameterError(
            "tune with workers > 1 cannot share a SQLite storage: SQLite has no row locks, and "
            "two workers can take the same queued trial (docs/tuning.md); use the default "
            f"journal file or PostgreSQL. Got {storage!r}."
        )
    if storage is None and out is not None:
        storage = Path(out) / JOURNAL_NAME
    ref = open_study(
        task,
        optimizer,
        trials=trials,
        tune=tune,
        space=space,
        seed=seed,
        epochs=epochs,
        batch_size=batch_size,
        schedule=schedule,
        pruner=pruner,
        storage=storage,
        study=study,
        task_options=task_options,
    )
    if workers == 1:
        _work_here(ref.storage, ref.name, ref.settings, 0, heartbeat, grace, progress)
    else:
        _work_in_processes(ref, workers, out, heartbeat, grace, progress)
    return collect(ref.storage, ref.name, ref.where)


@dataclass
class StudyRef:
    """An opened study: its storage object, where it lives (path or URL), name and settings."""

    storage: Any
    where: str
    name: str
    settings: dict[str, Any]
    created: bool


def open_study(
    task: str,
    optimizer: str,
    *,
    trials: int = 40,
    tune: str = "lr",
    space: str | Sequence[Param] | None = None,
    seed: int = 0,
    epochs: int | None = None,
    batch_size: int | None = None,
    schedule: str = "constant",
    pruner: str = "median",
    storage: str | os.PathLike[str] | None = None,
    study: str | None = None,
    task_options: dict[str, Any] | None = None,
) -> StudyRef:
    """Create the study, with its ``trials`` queued, or join the existing one; run nothing.

    The arguments are :func:`tune`'s; ``storage=None`` is in memory. Every argument is
    checked before the storage is opened, and the storage before anything is written.
    """
    validate(
        "tune",
        {
            "trials": trials,
            "seed": seed,
            "pruner": pruner,
            "epochs": epochs,
            "batch_size": batch_size,
            "schedule": schedule,
        },
        _TABLE,
    )
    overrides = parse_space(space, optimizer) if isinstance(space, str | None) else tuple(space)
    chosen = search_space(optimizer, tune, overrides)
    settings = _settings(
        task,
        dict(task_options or {}),
        optimizer,
        tune,
        chosen,
        trials=trials,
        seed=seed,
        epochs=epochs,
        batch_size=batch_size,
        schedule=schedule,
        pruner=pruner,
    )
    if storage is None:
        where, handle = "memory", optuna_module().storages.InMemoryStorage()
    else:
        where = str(storage)
        where = where if is_url(where) else str(Path(where).resolve())
        handle = open_storage(where)  # an unreachable database fails here
    name = study or f"{settings['task']}-{optimizer}"
    the_study, created = create_or_join(handle, name, settings, direction=settings["direction"])
    if created:
        queue_trials(the_study, trials, seed)
    return StudyRef(handle, where, name, study_settings(the_study), created)


def _work_here(
    storage: Any,
    name: str,
    settings: dict[str, Any],
    worker: int,
    heartbeat: float,
    grace: float,
    progress: bool,
) -> None:
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
    storage: str, study: str, worker: int, heartbeat: float, grace: float
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
    ]


def _work_in_processes(
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
                worker_command(ref.where, ref.name, k, heartbeat, grace),
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
    _work_here(ref.storage, ref.name, ref.settings, workers, heartbeat, grace, progress=False)
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


def collect(storage: Any, name: str, where: str) -> TuneResult:
    """The :class:`TuneResult` of study ``name`` as its storage holds it now."""
    optuna = optuna_module()
    the_study = optuna.load_study(study_name=name, storage=storage)
    settings = study_settings(the_study)
    records = trial_records(the_study)
    done = [t for t in records if t["state"] == "COMPLETE"]
    best = None
    if done:
        pick = max if settings["direction"] == "maximize" else min
        best = pick(done, key=lambda t: t["value"])
    return TuneResult(
        study=name,
        storage=redact(where),
        settings=settings,
        trials=records,
        best=best,
        importances=importances(the_study, settings["seed"]),
    )


def importances(study: Any, seed: int) -> dict[str, float]:
    """Optuna's fANOVA importances over completed trials; ``{}`` when they cannot be computed."""
    optuna = optuna_module()
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
        found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError):
        return {}  # e.g. every completed trial has the same values
    return {k: float(v) for k, v in found.items()}
