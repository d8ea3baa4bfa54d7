"""``tune``: an Optuna study of one optimizer's hyperparameters on a task, by one call.

The search itself is Optuna's (TPE sampler, median or Hyperband pruner, its
storages); what is descend's is the search space of each optimizer
(:mod:`descend.tune.spaces`), the objective that trains a task
(:mod:`descend.tune.objective`) and the worker loop that keeps the count of trials
exact across processes and machines (:mod:`descend.tune.workers`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from descend._validation import InvalidParameterError, validate
from descend.tune.processes import run_worker, work_in_processes
from descend.tune.result import TuneResult, collect
from descend.tune.spaces import Param
from descend.tune.study import TABLE, open_study
from descend.tune.workers import DEFAULT_GRACE, DEFAULT_HEARTBEAT

JOURNAL_NAME = "study.journal"


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
    device: str = "cpu",
    precision: str = "fp32",
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
        device, precision: where this process's workers train and in which format, as in
            :func:`descend.tasks.run_task`; a worker's own choice, not a study setting
            (workers on other machines joining the study choose their own).

    Returns:
        The :class:`TuneResult`.

    Raises:
        InvalidParameterError: a bad setting or ``--space`` entry, an unreachable
            storage, or an existing study with other settings; raised before anything
            is written.
    """
    validate("tune", {"workers": workers, "heartbeat": heartbeat, "grace": grace}, TABLE)
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
    ref = dataclasses.replace(
        ref, settings={**ref.settings, "device": device, "precision": precision}
    )
    if workers == 1:
        run_worker(ref.storage, ref.name, ref.settings, 0, heartbeat, grace, progress)
    else:
        work_in_processes(ref, workers, out, heartbeat, grace, progress)
    return collect(ref.storage, ref.name, ref.where)
