"""Running a task: one optimizer (:func:`run_task`) or several across seeds (:func:`compare`).

The CLI stays thin because everything a run needs is resolved here: the
learning rate from the task's table unless one is given, a schedule by name,
the default recipe's epochs and batch size, and a plain-dict config that says
where each choice came from.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from descend._validation import Interval, OneOf, Satisfies, unknown_choice, validate
from descend.optim import make_optimizer
from descend.schedules import Schedule, from_name
from descend.tasks.registry import get_task
from descend.tasks.task import OPTIMIZER_NAMES, Task
from descend.train import Callback, History, fit

LR_FROM_TASK = "task default table"
LR_FROM_CALLER = "command line"

_NONE = Satisfies(lambda v: v is None, "None")
_COUNT = Interval(1, None, closed="left", integer=True)
_TABLE = {
    "lr": (Interval(0, None, closed="neither"), _NONE),
    "seed": Interval(0, 2**63 - 1, integer=True),
    "epochs": (_COUNT, _NONE),
    "batch_size": (_COUNT, _NONE),
    "max_steps": (_COUNT, _NONE),
    "optimizer": OneOf(OPTIMIZER_NAMES),
}


@dataclass
class RunResult:
    """One training run of a task: what was recorded, the trained model and the config used.

    Attributes:
        task: the task's name.
        optimizer: the optimizer's registry name.
        seed: the seed of data, initial weights and batch order.
        history: the :class:`~descend.train.History` returned by ``fit``.
        model: the trained model (on the run's device).
        config: every setting of the run as plain data (YAML/JSON safe).
        lr_source: ``"task default table"`` or ``"command line"`` (given by the caller).
    """

    task: str
    optimizer: str
    seed: int
    history: History
    model: nn.Module
    config: dict[str, Any]
    lr_source: str


def _resolve_task(task: Task | str) -> Task:
    return get_task(task) if isinstance(task, str) else task


def _steps_per_epoch(n: int, batch_size: int | None) -> int:
    return 1 if batch_size is None else math.ceil(n / batch_size)


def run_task(
    task: Task | str,
    optimizer: str | None = None,
    *,
    lr: float | None = None,
    seed: int = 0,
    epochs: int | None = None,
    batch_size: int | None = None,
    schedule: str | Schedule | None = None,
    max_steps: int | None = None,
    callbacks: Sequence[Callback] = (),
    checkpoint_dir: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    progress: bool = False,
    device: str = "cpu",
    precision: str = "fp32",
    eval_train: bool = True,
    on_nonfinite: str = "raise",
    optimizer_options: Mapping[str, Any] | None = None,
) -> RunResult:
    """Train ``task``'s model with ``optimizer`` by its default recipe, overriding what is given.

    Args:
        task: a :class:`Task` or a registry name.
        optimizer: a registry name (``gd``, ``sgd``, ``momentum``, ``nesterov``,
            ``adagrad``, ``rmsprop``, ``adam``, ``adamw``); ``None`` takes the
            task's ``default_optimizer`` (the one its target was measured with).
        lr: the learning rate; ``None`` takes ``task.lrs[optimizer]``.
        seed: seeds the data split, the initial weights and the batch order.
        epochs, batch_size: override the task's recipe (``batch_size=None`` keeps
            the recipe's; the recipe's own ``None`` means full batch).
        schedule: a schedule name (``"cosine"``, built with
            :func:`descend.schedules.from_name` around ``lr`` over the run's length)
            or a :class:`~descend.schedules.Schedule`; ``None`` keeps ``lr`` constant.
        max_steps: stop after this many updates. Without ``epochs`` the run lasts as
            many epochs as ``max_steps`` needs; with ``epochs`` both limits apply.
        callbacks, checkpoint_dir, checkpoint_every, resume, progress, device, precision,
        eval_train, on_nonfinite: passed to ``fit`` (``device="auto"``: CUDA when available).
        optimizer_options: the optimizer's other hyperparameters (``{"momentum": 0.95}``,
            ``{"betas": (0.9, 0.99)}``), over the task's ``optimizer_options`` for this
            optimizer and the registry's defaults; ``lr`` is given
            by ``lr``, never here.

    Returns:
        The :class:`RunResult`.
    """
    task = _resolve_task(task)
    optimizer = task.default_optimizer if optimizer is None else optimizer
    validate(
        f"run_task({task.name!r})",
        {
            "optimizer": optimizer,
            "lr": lr,
            "seed": seed,
            "epochs": epochs,
            "batch_size": batch_size,
            "max_steps": max_steps,
        },
        _TABLE,
    )
    # The task's recipe (Adam's betas for the GAN), then the caller's choices over it.
    options = {**task.optimizer_options.get(optimizer, {}), **(optimizer_options or {})}
    if "lr" in options:
        raise ValueError(
            "run_task takes the learning rate as lr=, not in optimizer_options; "
            f"got optimizer_options={options!r}."
        )
    lr_source = LR_FROM_TASK if lr is None else LR_FROM_CALLER
    lr = float(task.lrs[optimizer] if lr is None else lr)
    batch_size = task.batch_size if batch_size is None else batch_size

    data = task.data(seed)
    per_epoch = _steps_per_epoch(len(data.train[1]), batch_size)
    if epochs is None:
        epochs = task.epochs if max_steps is None else math.ceil(max_steps / per_epoch)
    total_steps = epochs * per_epoch
    if max_steps is not None:
        total_steps = min(total_steps, max_steps)
    if isinstance(schedule, str):
        schedule_obj: Schedule | None = from_name(schedule, lr=lr, total_steps=total_steps)
    else:
        schedule_obj = schedule

    model = task.model(seed)
    history = fit(
        model,
        data.train,
        task.loss,
        optimizer,
        optimizer_options={**options, "lr": lr},
        epochs=epochs,
        max_steps=max_steps,
        batch_size=batch_size,
        schedule=schedule_obj,
        callbacks=callbacks,
        val_data=data.val,
        metrics=task.metrics,
        seed=seed,
        device=device,
        precision=precision,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every,
        resume=resume,
        progress=progress,
        eval_train=eval_train,
        on_nonfinite=on_nonfinite,
    )
    config = {
        "task": task.name,
        "task_options": {k: _plain(v) for k, v in task.options.items()},
        "optimizer": optimizer,
        "lr": lr,
        "lr_source": lr_source,
        "optimizer_options": {k: _plain_option(v) for k, v in options.items()},
        "schedule": schedule if schedule is None or isinstance(schedule, str) else repr(schedule),
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "max_steps": max_steps,
        "total_steps": total_steps,
        "train_samples": len(data.train[1]),
        "device": str(next(model.parameters()).device),
        "precision": precision,
        "on_nonfinite": on_nonfinite,
        "target": task.target.describe(),
    }
    return RunResult(task.name, optimizer, seed, history, model, config, lr_source)


def _plain_option(value: Any) -> Any:
    # betas=(0.9, 0.999) is a tuple; the config is YAML/JSON, where it is a list.
    return [_plain(v) for v in value] if isinstance(value, tuple | list) else _plain(value)


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


def compare(
    task: Task | str,
    optimizers: Iterable[str],
    *,
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int | None = None,
    lrs: Mapping[str, float] | None = None,
    batch_size: int | None = None,
    schedule: str | Schedule | None = None,
    max_steps: int | None = None,
    progress: bool = False,
    device: str = "cpu",
    precision: str = "fp32",
    eval_train: bool = True,
    callbacks: Callable[[str, int], Sequence[Callback]] | None = None,
    on_nonfinite: str = "raise",
) -> list[RunResult]:
    """Run ``task`` once per optimizer and seed, everything else equal.

    Args:
        optimizers: registry names, run in the order given.
        seeds: each optimizer runs once per seed (same data and initial weights
            across optimizers for the same seed, so the comparison is paired).
        lrs: learning rates by optimizer name; missing names use the task's table.
        epochs, batch_size, schedule, max_steps, progress, device, precision, eval_train:
            as in :func:`run_task`.
        callbacks: ``(optimizer name, seed) -> callbacks`` for that run (fresh objects per
            run, e.g. a ``GradientHealth`` monitor whose records the caller keeps).

    Returns:
        The results, optimizer-major: all seeds of the first optimizer, then the next.
    """
    task = _resolve_task(task)
    optimizers = list(optimizers)
    lrs = dict(lrs or {})
    for name in [*optimizers, *lrs]:
        if name not in OPTIMIZER_NAMES:
            raise unknown_choice("optimizer", name, OPTIMIZER_NAMES)
    if not optimizers or not seeds:
        raise ValueError("compare needs at least one optimizer and one seed")
    warm_up(optimizers)
    return [
        run_task(
            task,
            name,
            lr=lrs.get(name),
            seed=seed,
            epochs=epochs,
            batch_size=batch_size,
            schedule=schedule,
            max_steps=max_steps,
            progress=progress,
            device=device,
            precision=precision,
            eval_train=eval_train,
            callbacks=() if callbacks is None else callbacks(name, seed),
            on_nonfinite=on_nonfinite,
        )
        for name in optimizers
        for seed in seeds
    ]


def warm_up(optimizers: Sequence[str]) -> None:
    """Pay one-time costs before any run is timed, so the first optimizer is not charged.

    The first torch optimizer built in a process imports ``torch._dynamo`` (about a
    second); without this, the first optimizer of a comparison would look slower to target.
    """
    for name in optimizers:
        p = torch.zeros(1, requires_grad=True)
        opt = make_optimizer(name, [p])
        p.grad = torch.zeros(1)
        opt.step()
