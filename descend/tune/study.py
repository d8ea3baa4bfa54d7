"""A study's settings, its sampler and pruner, and :func:`open_study` (create or join, run nothing)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from descend._validation import Interval, OneOf, Satisfies, validate
from descend.schedules import SCHEDULE_NAMES
from descend.tasks import get_task
from descend.tune.objective import objective_metric
from descend.tune.overrides import parse_space
from descend.tune.spaces import Param, search_space, space_to_dicts
from descend.tune.storage import create_or_join, is_url, open_storage, optuna_module, study_settings
from descend.tune.workers import queue_trials

PRUNERS = ("median", "hyperband", "none")

_COUNT = Interval(1, None, closed="left", integer=True)
_POSITIVE = Interval(0, None, closed="neither")
TABLE = {
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
"""The checks of :func:`descend.tune.tune`'s numeric and named settings."""


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
        TABLE,
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
