"""Lower the learning rate when a monitored epoch metric plateaus (Keras' ReduceLROnPlateau)."""

from __future__ import annotations

from typing import Any

import torch

from descend._validation import InvalidParameterError
from descend.schedules.plateau import ReduceOnPlateau
from descend.train.callback import Callback
from descend.train.early_stopping import monitored
from descend.train.state import TrainState


class ReduceLROnPlateau(Callback):
    """Multiply every param group's learning rate by ``factor`` when ``monitor`` plateaus.

    The rule is :class:`descend.schedules.ReduceOnPlateau` (that of
    ``torch.optim.lr_scheduler.ReduceLROnPlateau``, relative threshold), applied
    once per epoch to each param group. It sets the learning rate itself, so it
    cannot be combined with ``fit(..., schedule=...)``, which would overwrite it.

    Args:
        monitor: a column of the epoch rows, e.g. ``"val_loss"``.
        factor: the multiplier, in ``(0, 1)``.
        patience: epochs without improvement tolerated before a reduction.
        mode: ``"min"`` or ``"max"``.
        threshold: the least relative change that counts as an improvement.
        cooldown: epochs to wait after a reduction before counting again.
        min_lr: the learning rate never goes below this.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        mode: str = "min",
        threshold: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> None:
        self.monitor = monitor
        self._settings = {
            "mode": mode,
            "factor": factor,
            "patience": patience,
            "threshold": threshold,
            "threshold_mode": "rel",
            "cooldown": cooldown,
            "min_lr": min_lr,
        }
        ReduceOnPlateau(**self._settings)  # validates the settings now, not at the first epoch
        self._plateaus: list[ReduceOnPlateau] = []

    def on_fit_start(self, state: TrainState) -> None:
        scheduled = getattr(state.optimizer, "lr_schedules", None)
        if scheduled:
            raise InvalidParameterError(
                f"ReduceLROnPlateau sets the learning rate itself, and param group "
                f"{min(scheduled)} of the optimizer has a schedule as its lr, which sets it "
                "before every update. Use one or the other."
            )
        if state.has_schedule:
            raise InvalidParameterError(
                "ReduceLROnPlateau sets the learning rate itself and cannot be combined with "
                "fit(..., schedule=...), which sets it before every update. Use one or the other."
            )

    def on_epoch_end(self, state: TrainState) -> None:
        value = monitored(state, self.monitor, "ReduceLROnPlateau")
        groups = state.optimizer.param_groups
        while len(self._plateaus) < len(groups):
            self._plateaus.append(ReduceOnPlateau(**self._settings))
        for plateau, group in zip(self._plateaus, groups):
            lr = group["lr"]
            new = plateau.update(value, float(lr))
            if isinstance(lr, torch.Tensor):
                lr.fill_(new)
            else:
                group["lr"] = new

    def state_dict(self) -> dict[str, Any]:
        return {"plateaus": [p.state_dict() for p in self._plateaus]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._plateaus = []
        for saved in state_dict["plateaus"]:
            plateau = ReduceOnPlateau(**self._settings)
            plateau.load_state_dict(saved)
            self._plateaus.append(plateau)
