"""The loop's state as callbacks see it: the model, the optimizer, the counters, and how to stop."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from descend.train.history import History


@dataclass
class TrainState:
    """What :func:`~descend.train.fit` shares with its callbacks.

    Attributes:
        model: the model being trained.
        optimizer: the optimizer taking the updates.
        history: the run's record so far; the last step row is the current update's.
        step: updates completed (1 after the first update).
        epoch: the 1-based epoch in progress (in ``on_epoch_end``: the one just ended;
            in ``on_fit_end`` after a completed epoch: the next one).
        batch: batches of the current epoch completed.
        batches_per_epoch: updates per epoch (1 for batch gradient descent).
        max_epochs, max_steps: the run's limits (``None`` when not set).
        loss: the last batch loss, as a float.
        grad_norm: the last global gradient norm, before clipping, as a float.
        grads: the gradients of the current update (valid in ``on_before_optimizer_step``).
        lrs: the learning rate of every param group used by the last update.
        has_schedule: whether ``fit`` sets the learning rate before every update.
        should_stop: set by :meth:`stop`; the loop ends after the current update.
        stop_reason, stop_success: what :meth:`stop` was told.
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    history: History
    batches_per_epoch: int
    max_epochs: int | None = None
    max_steps: int | None = None
    step: int = 0
    epoch: int = 1
    batch: int = 0
    loss: float = math.nan
    grad_norm: float | None = math.nan  # None when fit(track_grad_norm=False)
    grads: list[torch.Tensor] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    has_schedule: bool = False
    should_stop: bool = False
    stop_reason: str = ""
    stop_success: bool = True
    # Filled in by fit: builds the resumable checkpoint payload of this moment.
    payload_fn: Callable[[], dict[str, Any]] | None = field(default=None, repr=False)

    def stop(self, reason: str, *, success: bool = True) -> None:
        """Ask the loop to end after the current update; the first reason given is kept."""
        if not self.should_stop:
            self.should_stop = True
            self.stop_reason = reason
            self.stop_success = success

    def checkpoint_payload(self) -> dict[str, Any]:
        """Everything needed to continue the run exactly from this moment (see ``fit``)."""
        if self.payload_fn is None:
            raise RuntimeError("checkpoint_payload() is only available while fit is running.")
        return self.payload_fn()
