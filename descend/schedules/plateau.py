"""Reduce the learning rate when a monitored metric stops improving."""

from __future__ import annotations

import math
from typing import Any, SupportsFloat

from descend._validation import Interval, OneOf, validate
from descend.schedules.base import COUNT, RATE

_TABLE = {
    "mode": OneOf(("min", "max")),
    "factor": Interval(0, 1, closed="neither"),
    "patience": COUNT,
    "threshold": RATE,
    "threshold_mode": OneOf(("rel", "abs")),
    "cooldown": COUNT,
    "min_lr": RATE,
    "eps": RATE,
}

# What changes as metrics arrive; everything else is configuration.
_STATE = ("best", "num_bad_epochs", "cooldown_counter", "last_epoch")


class ReduceOnPlateau:
    r"""Multiply the learning rate by ``factor`` after ``patience`` evaluations without improvement.

    The rule of ``torch.optim.lr_scheduler.ReduceLROnPlateau``, without the
    optimizer: :meth:`update` takes the metric and the current learning rate and
    returns the next one. In ``"min"`` mode a metric :math:`m` improves on the
    best :math:`b` when

    .. math::

        m < b\,(1 - \varepsilon_{\text{th}}) \;\; (\text{rel}) \qquad
        m < b - \varepsilon_{\text{th}} \;\; (\text{abs})

    (mirrored in ``"max"`` mode). When more than ``patience`` evaluations in a
    row fail to improve, outside a cooldown,

    .. math::

        \eta \leftarrow \max(\eta \cdot f, \eta_{\min})
        \quad \text{if the decrease exceeds } \epsilon,

    then ``cooldown`` evaluations are ignored.

    Args:
        mode: ``"min"`` (lower is better, e.g. a loss) or ``"max"`` (e.g. an accuracy).
        factor: :math:`f`, in ``(0, 1)``.
        patience: evaluations without improvement tolerated, an int ``>= 0``.
        threshold: :math:`\varepsilon_{\text{th}}`, the least change that counts, ``>= 0``.
        threshold_mode: ``"rel"`` or ``"abs"``, as above.
        cooldown: evaluations to wait after a reduction before counting again, an int ``>= 0``.
        min_lr: :math:`\eta_{\min}`, ``>= 0``.
        eps: :math:`\epsilon`, reductions smaller than this are skipped, ``>= 0``.

    Example:
        >>> from descend.schedules import ReduceOnPlateau
        >>> plateau = ReduceOnPlateau(factor=0.5, patience=1)
        >>> lr = 1.0
        >>> for loss in [3.0, 2.0, 2.0, 2.0, 2.0, 2.0]:
        ...     lr = plateau.update(loss, lr)
        >>> lr
        0.25
    """

    def __init__(
        self,
        mode: str = "min",
        *,
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        settings = {
            "mode": mode,
            "factor": factor,
            "patience": patience,
            "threshold": threshold,
            "threshold_mode": threshold_mode,
            "cooldown": cooldown,
            "min_lr": min_lr,
            "eps": eps,
        }
        validate("ReduceOnPlateau", settings, _TABLE)
        self.mode = mode
        self.factor = float(factor)
        self.patience = int(patience)
        self.threshold = float(threshold)
        self.threshold_mode = threshold_mode
        self.cooldown = int(cooldown)
        self.min_lr = float(min_lr)
        self.eps = float(eps)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0

    def is_better(self, metric: float, best: float) -> bool:
        """Whether ``metric`` improves on ``best`` by more than the threshold."""
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return metric < best * (1.0 - self.threshold)
            return metric < best - self.threshold
        if self.threshold_mode == "rel":
            return metric > best * (self.threshold + 1.0)
        return metric > best + self.threshold

    def update(self, metric: SupportsFloat, lr: float) -> float:
        """Record one evaluation of the metric; return the learning rate to use next.

        Args:
            metric: the monitored value (a float or a 0-d tensor).
            lr: the learning rate in use.

        Returns:
            ``lr``, or ``lr`` reduced by ``factor`` when the metric has plateaued.
        """
        current = float(metric)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # evaluations during a cooldown do not count
        if self.num_bad_epochs > self.patience:
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
            new_lr = max(lr * self.factor, self.min_lr)
            if lr - new_lr > self.eps:
                return new_lr
        return lr

    def state_dict(self) -> dict[str, Any]:
        """The position in the metric sequence, as plain Python numbers (``weights_only`` safe)."""
        return {name: getattr(self, name) for name in _STATE}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict`; the settings stay those given to the constructor."""
        self.best = float(state_dict["best"])
        self.num_bad_epochs = int(state_dict["num_bad_epochs"])
        self.cooldown_counter = int(state_dict["cooldown_counter"])
        self.last_epoch = int(state_dict["last_epoch"])

    def __repr__(self) -> str:
        settings = ", ".join(f"{name}={getattr(self, name)!r}" for name in _TABLE)
        return f"ReduceOnPlateau({settings})"
