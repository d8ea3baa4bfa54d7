"""``summarize``: the numbers a report or a table wants from one run of a task."""

from __future__ import annotations

import itertools
import math
import statistics
from typing import Any

from descend.tasks.run import RunResult
from descend.tasks.task import Task

_COUNTERS = ("epoch", "step", "time")


def direction(metric: str, task: Task) -> str:
    """``"max"`` or ``"min"``: the target's mode for its own metric; accuracies up, the rest down."""
    if metric == task.target.metric:
        return task.target.mode
    return "max" if metric.endswith("accuracy") else "min"


def seconds_per_step(result: RunResult) -> float | None:
    """The median wall time of an update, from consecutive step rows of the same epoch.

    Rows that straddle an epoch boundary include the epoch-end evaluation and are
    left out; full-batch runs (one update per epoch) fall back to total time / steps.
    """
    steps = result.history.steps
    gaps = [b["time"] - a["time"] for a, b in itertools.pairwise(steps) if a["epoch"] == b["epoch"]]
    if gaps:
        return statistics.median(gaps)
    if steps and steps[-1]["step"] > 0:
        return steps[-1]["time"] / steps[-1]["step"]
    return None


def examples_seen(steps: int, samples: int | None, batch_size: int | None) -> int | None:
    """Training examples the first ``steps`` updates used: whole epochs of ``samples``, then
    the batches of the epoch in progress (its last batch may be short).

    Example:
        >>> examples_seen(5, samples=100, batch_size=32)  # 4 batches/epoch: 100 + 32
        132
        >>> examples_seen(3, samples=100, batch_size=None)  # full batch
        300
    """
    if samples is None:
        return None
    if batch_size is None:
        return steps * samples
    per_epoch = math.ceil(samples / batch_size)
    epochs, rest = divmod(steps, per_epoch)
    return epochs * samples + min(rest * batch_size, samples)


def summarize(result: RunResult, task: Task) -> dict[str, Any]:
    """Final and best value of each logged metric, time to target, and speed.

    Returns:
        A plain dict: ``task``, ``optimizer``, ``seed``, ``lr``, ``lr_source``;
        ``final`` and ``best`` (``{column: value}`` for every loss/metric column of
        the epoch rows, best in each column's :func:`direction`); ``target`` (its
        description), ``target_reached``, and the first epoch row meeting it as
        ``epochs_to_target``, ``steps_to_target``, ``examples_to_target``, ``time_to_target`` (``None`` when
        never reached); ``epochs``, ``steps``, ``seconds`` (the run's wall time),
        ``seconds_per_step`` and ``stop_reason``.
    """
    rows = result.history.epochs
    columns = [k for k in (rows[-1] if rows else {}) if k not in _COUNTERS]
    final = {k: float(rows[-1][k]) for k in columns}
    best: dict[str, float] = {}
    for k in columns:
        pick = max if direction(k, task) == "max" else min
        values = [float(r[k]) for r in rows if k in r and not math.isnan(float(r[k]))]
        if values:
            best[k] = pick(values)
    hit = next((r for r in rows if task.target.reached(r.get(task.target.metric))), None)
    steps = result.history.steps
    return {
        "task": result.task,
        "optimizer": result.optimizer,
        "seed": result.seed,
        "lr": result.config.get("lr"),
        "lr_source": result.lr_source,
        "final": final,
        "best": best,
        "target": task.target.describe(),
        "target_reached": hit is not None,
        "epochs_to_target": None if hit is None else int(hit["epoch"]),
        "steps_to_target": None if hit is None else int(hit["step"]),
        # Steps are comparable only at one batch size; examples are, across batch sizes.
        "examples_to_target": None
        if hit is None
        else examples_seen(
            int(hit["step"]),
            result.config.get("train_samples"),
            result.config.get("batch_size"),
        ),
        "time_to_target": None if hit is None else float(hit["time"]),
        "epochs": len(rows),
        "steps": int(steps[-1]["step"]) if steps else 0,
        "seconds": float((rows or steps)[-1]["time"]) if (rows or steps) else 0.0,
        "seconds_per_step": seconds_per_step(result),
        "stop_reason": result.history.stop_reason,
    }
