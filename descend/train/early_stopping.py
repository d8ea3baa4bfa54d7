"""Stop when a monitored epoch metric has stopped improving (Keras' and Lightning's EarlyStopping)."""

from __future__ import annotations

import math
from typing import Any

import torch

from descend._validation import BOOL, Interval, OneOf, validate
from descend.train.callback import Callback
from descend.train.state import TrainState


def monitored(state: TrainState, monitor: str, owner: str) -> float:
    """The value of ``monitor`` in the last epoch row; a clear error when it is not recorded."""
    row = state.history.epochs[-1]
    if monitor not in row:
        raise KeyError(
            f"{owner} monitors {monitor!r}, which the epoch rows do not have. "
            f"Recorded: {', '.join(sorted(row))}. Give fit val_data= for val_* keys, "
            "or metrics= for other names."
        )
    return float(row[monitor])


class EarlyStopping(Callback):
    """End the run when ``monitor`` has not improved for ``patience`` epochs in a row.

    An epoch improves when, with :math:`b` the best value so far and
    :math:`\\delta` = ``min_delta``,

    .. math::
        m < b - \\delta \\;\\; (\\text{mode="min"}) \\qquad m > b + \\delta \\;\\; (\\text{mode="max"}).

    A NaN never improves. The run stops at the end of the ``patience``-th epoch
    in a row without improvement (so ``patience=0`` stops at the first one).

    Args:
        monitor: a column of the epoch rows, e.g. ``"val_loss"`` or ``"val_accuracy"``.
        min_delta: the least absolute change that counts as an improvement, ``>= 0``.
        patience: epochs without improvement tolerated, an int ``>= 0``.
        mode: ``"min"`` (lower is better) or ``"max"``.
        restore_best_weights: load the weights of the best epoch back into the model
            when the run ends, whatever ended it.

    Attributes:
        best: the best value seen; best_epoch: its epoch (0 before any);
        stopped_epoch: the epoch this callback stopped the run at (0 if it did not).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 3,
        mode: str = "min",
        restore_best_weights: bool = False,
    ) -> None:
        validate(
            "EarlyStopping",
            {
                "min_delta": min_delta,
                "patience": patience,
                "mode": mode,
                "restore_best_weights": restore_best_weights,
            },
            {
                "min_delta": Interval(0, None, closed="left"),
                "patience": Interval(0, None, closed="left", integer=True),
                "mode": OneOf(("min", "max")),
                "restore_best_weights": BOOL,
            },
        )
        self.monitor = monitor
        self.min_delta = float(min_delta)
        self.patience = int(patience)
        self.mode = mode
        self.restore_best_weights = restore_best_weights
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = 0
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights: dict[str, torch.Tensor] | None = None

    def _improves(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, state: TrainState) -> None:
        value = monitored(state, self.monitor, "EarlyStopping")
        if self._improves(value):
            self.best, self.best_epoch, self.wait = value, state.epoch, 0
            if self.restore_best_weights:
                self.best_weights = {
                    k: v.detach().clone() for k, v in state.model.state_dict().items()
                }
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = state.epoch
            state.stop(
                f"Early stopping at epoch {state.epoch}: {self.monitor} did not improve by more "
                f"than {self.min_delta:g} for {self.wait} epoch(s); best {self.best:.6g} at "
                f"epoch {self.best_epoch}.",
                success=True,
            )

    def on_fit_end(self, state: TrainState) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            state.model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = float(state_dict["best"])
        self.best_epoch = int(state_dict["best_epoch"])
        self.wait = int(state_dict["wait"])
        self.stopped_epoch = int(state_dict["stopped_epoch"])
        self.best_weights = state_dict["best_weights"]
