"""A study's trials as plain dicts: what the report, ``trials.csv`` and the tests read."""

from __future__ import annotations

import math
from typing import Any

from descend.tune.workers import LOST_KEY


def trial_record(trial: Any) -> dict[str, Any]:
    """One trial as plain data.

    Keys: ``number``; ``state`` (``COMPLETE``, ``PRUNED``, ``FAIL``, ``RUNNING``,
    ``WAITING``); ``value`` (the final metric, ``None`` unless complete);
    ``last_value`` (the last metric reported, also for pruned trials); ``params``;
    ``seed``; ``epochs_run``; ``intermediate`` (epoch -> metric); ``fail_reason``;
    ``lost`` (failed because its worker stopped beating; run again as a new trial);
    ``retry_of`` (the number of the lost trial this one repeats, else ``None``);
    ``worker`` (``host:pid``); ``seconds`` (wall time, ``None`` unless finished).
    """
    value = trial.value if trial.values and trial.state.name == "COMPLETE" else None
    steps = sorted(trial.intermediate_values)
    last = trial.intermediate_values[steps[-1]] if steps else value
    seconds = None
    if trial.datetime_start is not None and trial.datetime_complete is not None:
        seconds = (trial.datetime_complete - trial.datetime_start).total_seconds()
    return {
        "number": trial.number,
        "state": trial.state.name,
        "value": value if value is None or math.isfinite(value) else None,
        "last_value": last,
        "params": dict(trial.params),
        "seed": trial.user_attrs.get("seed"),
        "epochs_run": trial.user_attrs.get("epochs_run", len(steps)),
        "intermediate": {int(k): float(v) for k, v in trial.intermediate_values.items()},
        "fail_reason": trial.user_attrs.get("fail_reason"),
        "lost": bool(trial.system_attrs.get(LOST_KEY)),
        "retry_of": trial.system_attrs.get("failed_trial"),
        "worker": trial.user_attrs.get("worker"),
        "seconds": seconds,
    }


def trial_records(study: Any) -> list[dict[str, Any]]:
    """Every trial of ``study``, by number."""
    return [
        trial_record(t) for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    ]
