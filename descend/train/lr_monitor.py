"""Record the learning rate of every param group at every update."""

from __future__ import annotations

from descend.train.callback import Callback
from descend.train.state import TrainState


class LearningRateMonitor(Callback):
    """Add ``lr_group{i}`` to every step row: the learning rate group ``i`` used for that update.

    The step rows always carry ``lr`` (group 0); this callback is for optimizers
    with several param groups (e.g. a lower rate for a pretrained backbone).
    """

    def on_step_end(self, state: TrainState) -> None:
        row = state.history.steps[-1]
        for i, lr in enumerate(state.lrs):
            row[f"lr_group{i}"] = lr
