"""Turning ``fit``'s arguments into the loop's parts: the optimizer, the schedule, the callbacks."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from descend._validation import InvalidParameterError
from descend.train.callback import Callback
from descend.train.clipping import GradientClipping
from descend.train.model_checkpoint import ModelCheckpoint
from descend.train.progress import ProgressBar


def build_optimizer(
    optimizer: torch.optim.Optimizer | str | type[torch.optim.Optimizer],
    model: torch.nn.Module,
    options: Mapping[str, Any] | None,
) -> torch.optim.Optimizer:
    """The optimizer given, or one built from a registry name or class over ``model``'s parameters."""
    if isinstance(optimizer, torch.optim.Optimizer):
        if options:
            raise InvalidParameterError(
                "optimizer_options= only applies when optimizer is a name or a class; "
                "this optimizer is already built."
            )
        return optimizer
    if isinstance(optimizer, str) or (
        isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer)
    ):
        from descend.optim import make_optimizer

        return make_optimizer(optimizer, model.parameters(), **dict(options or {}))
    raise InvalidParameterError(
        "The 'optimizer' parameter of fit must be a torch.optim.Optimizer, a registry name "
        f"or an Optimizer class. Got {type(optimizer).__name__} instead."
    )


def split_schedule(
    schedule: Any, optimizer: torch.optim.Optimizer
) -> tuple[Callable[[int], float] | None, Any]:
    """Tell the two kinds of ``schedule=`` apart: (step -> lr function or None, LRScheduler or None)."""
    lr_scheduler = torch.optim.lr_scheduler
    if schedule is None:
        return None, None
    scheduled = getattr(optimizer, "lr_schedules", None)
    if scheduled:
        raise InvalidParameterError(
            f"The learning rate is given twice: param group {min(scheduled)} of the optimizer "
            f"has a schedule as its lr, and fit got schedule={schedule!r}. Give one: a "
            "schedule as the optimizer's lr, or a float lr and fit's schedule=."
        )
    if isinstance(schedule, lr_scheduler.ReduceLROnPlateau):
        raise InvalidParameterError(
            "torch's ReduceLROnPlateau needs a metric; use the callback "
            "descend.train.ReduceLROnPlateau(monitor=...) instead of schedule=."
        )
    if isinstance(schedule, lr_scheduler.LRScheduler):
        if schedule.optimizer is not optimizer:
            raise InvalidParameterError(
                "The LRScheduler given as schedule= drives another optimizer than fit's."
            )
        return None, schedule
    if callable(schedule):
        return schedule, None
    raise InvalidParameterError(
        "The 'schedule' parameter of fit must be a callable step -> lr, a torch LRScheduler "
        f"or None. Got {type(schedule).__name__} instead."
    )


def arrange_callbacks(
    callbacks: Sequence[Callback],
    clip_grad_norm: float | None,
    progress: bool | None,
    log_dir: str | os.PathLike[str] | None,
) -> list[Callback]:
    """The user's callbacks plus the automatic ones, ModelCheckpoints last."""
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise InvalidParameterError(
                "The 'callbacks' parameter of fit must hold Callback instances. "
                f"Got {type(cb).__name__} instead."
            )
    arranged = [GradientClipping(clip_grad_norm)] if clip_grad_norm is not None else []
    arranged += [cb for cb in callbacks if not isinstance(cb, ModelCheckpoint)]
    if log_dir is not None:
        from descend.train.tensorboard import tensorboard_logger

        logger = tensorboard_logger(log_dir)
        if logger is not None:
            arranged.append(logger)
    if progress is not False and not any(isinstance(cb, ProgressBar) for cb in callbacks):
        arranged.append(ProgressBar(disable=None if progress is None else False))
    arranged += [cb for cb in callbacks if isinstance(cb, ModelCheckpoint)]
    return arranged
