"""What a training run records: one row per update, one row per epoch, and why it ended."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from descend._validation import OneOf, validate


@dataclass
class History:
    """The record of a :func:`~descend.train.fit` run, as plain lists of dicts.

    Every row is a ``dict[str, float]`` (counters are ``int``), so a history
    converts to CSV, JSON or a checkpoint without translation.

    Attributes:
        steps: one row per update, with ``step`` (1-based), ``epoch`` (1-based),
            ``loss`` (the batch loss before the update), ``lr`` (of param group 0,
            as used by the update), ``grad_norm`` (global L2 norm of all gradients,
            before clipping) and ``time`` (seconds since ``fit`` started). Callbacks
            may add keys (``lr_group{i}`` from ``LearningRateMonitor``); the
            non-finite guard adds ``skipped`` when it is not ``"raise"``.
        epochs: one row per completed epoch, with ``epoch``, ``step`` (updates so
            far), ``time``, ``train_loss``, ``val_loss`` and ``train_<metric>`` /
            ``val_<metric>`` for each metric given to ``fit``.
        stop_reason: a sentence saying what ended the run.
        stop_success: whether the run ended as planned (a limit reached, a tolerance
            met, early stopping) rather than given up or interrupted.
        interrupted_by: the signal that ended the run (``"SIGINT"``, ``"SIGTERM"``),
            or ``""`` when none did.

    Example:
        >>> h = History(epochs=[{"epoch": 1, "val_loss": 0.5}, {"epoch": 2, "val_loss": 0.3}])
        >>> h.best("val_loss", mode="min")["epoch"]
        2
    """

    steps: list[dict[str, float]] = field(default_factory=list)
    epochs: list[dict[str, float]] = field(default_factory=list)
    stop_reason: str = ""
    stop_success: bool = True
    interrupted_by: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A copy made of lists, dicts, numbers and strings only (checkpoint and JSON safe)."""
        return {
            "steps": [dict(row) for row in self.steps],
            "epochs": [dict(row) for row in self.epochs],
            "stop_reason": self.stop_reason,
            "stop_success": self.stop_success,
            "interrupted_by": self.interrupted_by,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        """The inverse of :meth:`to_dict`."""
        return cls(
            steps=[dict(row) for row in d.get("steps", [])],
            epochs=[dict(row) for row in d.get("epochs", [])],
            stop_reason=str(d.get("stop_reason", "")),
            stop_success=bool(d.get("stop_success", True)),
            interrupted_by=str(d.get("interrupted_by", "")),
        )

    def best(self, key: str, mode: str = "max") -> dict[str, float]:
        """The epoch row with the best finite value of ``key`` (the first one on ties).

        Args:
            key: a column of :attr:`epochs`, e.g. ``"val_loss"`` or ``"val_accuracy"``.
            mode: ``"max"`` (higher is better) or ``"min"``.

        Raises:
            KeyError: when no epoch row has a finite value for ``key``.
        """
        validate("History.best", {"mode": mode}, {"mode": OneOf(("min", "max"))})
        rows = [r for r in self.epochs if key in r and math.isfinite(float(r[key]))]
        if not rows:
            columns = sorted({k for r in self.epochs for k in r})
            raise KeyError(
                f"No epoch row has a finite value for {key!r}. Columns: {', '.join(columns) or 'none'}."
            )
        pick = min if mode == "min" else max
        return pick(rows, key=lambda r: float(r[key]))
