"""Each optimizer at its best: the same tuning budget for every one, on data the comparison never scores.

A *tuner* is any function ``(task, optimizer name, budget) -> Tuned``: given the
optimizer and the number of trials it may spend, it returns the hyperparameters
to compare with and the trials behind them. :func:`lr_grid` is the built-in one:
``budget`` learning rates log-spaced over two decades around the task's table
value, each trained once (seed 0) on a *tuning split* carved out of the task's
training set, and scored by the target metric on the rest of it. The task's own
validation split, on which the comparison is judged, is never seen while tuning.

An Optuna-based tuner (the ``tune`` layer) fits the same signature and replaces it
by passing ``tuner=`` to :func:`descend.comparison.compare`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from descend.tasks import Task, TaskData, run_task
from descend.train import NonFiniteError

TUNING_FRACTION = 0.2
"""Share of the training set held out to score tuning trials."""
SPAN = 10.0
"""The lr grid spans the task's value divided and multiplied by this."""


@dataclass
class Tuned:
    """What a tuner chose for one optimizer.

    Attributes:
        hyperparameters: the chosen values (``{"lr": 0.01}``), passed to the runs.
        trials: one ``{"hyperparameters", "score", "diverged"}`` per trial, in order.
        method: how they were chosen, for the report (``"lr grid (5 trials)"``).
        metric: the tuning split's metric the scores are (``"val_accuracy"``).
    """

    hyperparameters: dict[str, Any]
    trials: list[dict[str, Any]] = field(default_factory=list)
    method: str = ""
    metric: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Tuned:
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


Tuner = Callable[..., Tuned]
"""``tuner(task, optimizer, budget, *, recipe) -> Tuned``; ``recipe`` holds epochs, batch_size,
schedule and max_steps (``None``: the task's)."""


class TuningInterrupted(Exception):
    """A signal stopped a tuning trial; nothing of that optimizer's tuning is kept."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(f"tuning interrupted by {signal_name}")
        self.signal_name = signal_name


def _take(x: Any, index: torch.Tensor) -> Any:
    if isinstance(x, torch.Tensor):
        return x[index]
    if isinstance(x, tuple | list):
        return type(x)(_take(v, index) for v in x)
    raise TypeError(
        f"tuning needs training data made of tensors (or tuples of them). Got {type(x).__name__}."
    )


def _length(x: Any) -> int:
    return len(x) if isinstance(x, torch.Tensor) else _length(x[0])


def tuning_task(task: Task, fraction: float = TUNING_FRACTION) -> Task:
    """``task`` whose data is its training set split in two: train on one part, score the other.

    The split is drawn from the seed, so every trial and every optimizer sees the same one.
    """

    def data(seed: int) -> TaskData:
        full = task.data(seed)
        inputs, targets = full.train
        n = _length(targets)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(10_000 + seed))
        held = max(1, round(fraction * n))
        fit_part, held_part = order[held:], order[:held]
        return TaskData(
            train=(_take(inputs, fit_part), _take(targets, fit_part)),
            val=(_take(inputs, held_part), _take(targets, held_part)),
            meta=full.meta,
        )

    return dataclasses.replace(task, make_data=data)


def lr_candidates(center: float, budget: int, span: float = SPAN) -> list[float]:
    """``budget`` learning rates log-spaced from ``center / span`` to ``center * span``.

    Example:
        >>> [f"{x:g}" for x in lr_candidates(0.01, 3)]
        ['0.001', '0.01', '0.1']
        >>> lr_candidates(0.01, 1)
        [0.01]
    """
    if budget == 1:
        return [float(center)]
    return [float(x) for x in np.geomspace(center / span, center * span, budget)]


def _score(task: Task, result: Any) -> float | None:
    rows = result.history.epochs
    value = rows[-1].get(task.target.metric) if rows else None
    return None if value is None or not math.isfinite(float(value)) else float(value)


def lr_grid(task: Task, optimizer: str, budget: int, *, recipe: Mapping[str, Any]) -> Tuned:
    """The built-in tuner: ``budget`` learning rates on a log grid; the best tuning-split score wins.

    A trial that diverges (a non-finite loss, or no finite score) scores worst; ties go to
    the smaller rate, the safer one.
    """
    split = tuning_task(task)
    mode = task.target.mode
    trials: list[dict[str, Any]] = []
    for lr in lr_candidates(float(task.lrs[optimizer]), budget):
        try:
            result = run_task(split, optimizer, lr=lr, seed=0, **recipe)
        except NonFiniteError:
            trials.append({"hyperparameters": {"lr": lr}, "score": None, "diverged": True})
            continue
        if result.history.interrupted_by:
            raise TuningInterrupted(result.history.interrupted_by)
        score = _score(task, result)
        trials.append({"hyperparameters": {"lr": lr}, "score": score, "diverged": score is None})
    scored = [t for t in trials if t["score"] is not None]
    if scored:
        sign = -1.0 if mode == "max" else 1.0
        best = min(scored, key=lambda t: (sign * t["score"], t["hyperparameters"]["lr"]))
        chosen = dict(best["hyperparameters"])
    else:  # every trial diverged: keep the task's value, and the trials say why
        chosen = {"lr": float(task.lrs[optimizer])}
    return Tuned(chosen, trials, f"lr grid ({budget} trials)", task.target.metric)


def optuna_tuner(tune: str = "lr") -> Tuner:
    """A tuner that runs an Optuna study of the ``tune`` layer (:func:`descend.tune.tune`).

    ``tune="lr"`` tunes the learning rate; ``"all"`` every hyperparameter the optimizer's
    search space declares (momentum, betas, eps, ...). The study scores trials on the
    task's validation split (the tune layer's objective), unlike :func:`lr_grid`, which
    holds out part of the training set. Needs Optuna (``pip install 'descend[tune]'``).
    """

    def tuner(task: Task, optimizer: str, budget: int, *, recipe: Mapping[str, Any]) -> Tuned:
        from descend.tune import optimizer_options
        from descend.tune import tune as run_study

        result = run_study(
            task.name,
            optimizer,
            trials=budget,
            tune=tune,
            seed=0,
            epochs=recipe.get("epochs"),
            batch_size=recipe.get("batch_size"),
            schedule=recipe.get("schedule") or "constant",
            task_options=dict(task.options) or None,
        )
        trials = [
            {
                "hyperparameters": dict(t["params"]),
                "score": t["value"],
                "diverged": t["value"] is None,
                "state": t["state"],
            }
            for t in result.counted()
        ]
        params = result.best_params
        if not params:  # no trial completed: keep the task's rate; the trials say why
            chosen: dict[str, Any] = {"lr": float(task.lrs[optimizer])}
        else:
            options = {
                k: list(v) if isinstance(v, tuple) else v
                for k, v in optimizer_options(params).items()
            }
            chosen = {"lr": float(params["lr"]), **options}
        return Tuned(chosen, trials, f"optuna, tune {tune} ({budget} trials)", task.target.metric)

    return tuner
