"""TensorBoard event files for a run, when tensorboard is installed."""

from __future__ import annotations

import os
from typing import Any

from descend.train.callback import Callback
from descend.train.state import TrainState


class TensorBoardLogger(Callback):
    """Write every step row and epoch row as TensorBoard scalars under ``log_dir``.

    Step rows go under ``step/<key>`` at the update number, epoch rows under
    ``epoch/<key>`` at the epoch number. Needs the ``tensorboard`` package
    (``pip install descend[tensorboard]``); build it with :func:`tensorboard_logger`
    to skip silently when it is missing.
    """

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = str(log_dir)
        self._writer: Any = None
        self._writer_cls = SummaryWriter

    def on_fit_start(self, state: TrainState) -> None:
        self._writer = self._writer_cls(log_dir=self.log_dir)

    def on_step_end(self, state: TrainState) -> None:
        row = state.history.steps[-1]
        for key, value in row.items():
            if key not in ("step", "epoch"):
                self._writer.add_scalar(f"step/{key}", value, state.step)

    def on_epoch_end(self, state: TrainState) -> None:
        row = state.history.epochs[-1]
        for key, value in row.items():
            if key != "epoch":
                self._writer.add_scalar(f"epoch/{key}", value, state.epoch)

    def on_fit_end(self, state: TrainState) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def tensorboard_logger(log_dir: str | os.PathLike[str]) -> TensorBoardLogger | None:
    """A :class:`TensorBoardLogger`, or ``None`` when tensorboard is not installed."""
    try:
        return TensorBoardLogger(log_dir)
    except ImportError:
        return None
