"""The ``Schedule`` base class and the constant schedule.

A schedule is a pure function of the step: ``schedule(t)`` is the learning rate
of the update with 0-based index ``t``. It holds no state, so the same object can
be shared, pickled, compared and printed, and resuming a run only needs ``t``.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from descend._validation import Constraint, Interval, validate

# The tables below are shared by every schedule, so that "a learning rate" and
# "a number of steps" are described with the same words in every message.
RATE = Interval(0, None, closed="left", finite=True)  # an infinite rate is never meant
POSITIVE = Interval(0, None, closed="neither")
STEPS = Interval(1, None, closed="left", integer=True)
COUNT = Interval(0, None, closed="left", integer=True)


class Schedule(abc.ABC):
    """A learning rate as a pure function of the 0-based update index.

    Concrete schedules are frozen dataclasses: picklable, hashable, with a
    readable ``repr``. ``schedule(t)`` must be cheap, since an optimizer calls it
    once per step.
    """

    @abc.abstractmethod
    def __call__(self, step: int) -> float:
        """The learning rate of the update with 0-based index ``step``."""


def check(
    owner: str, schedule: Any, table: Mapping[str, Constraint | tuple[Constraint, ...]]
) -> None:
    """Validate a dataclass's fields against ``table`` (messages name ``owner``)."""
    validate(owner, {name: getattr(schedule, name) for name in table}, table)


def set_int(schedule: Any, *names: str) -> None:
    """Store validated integral fields as ``int`` (``3.0`` steps becomes ``3``)."""
    for name in names:
        object.__setattr__(schedule, name, int(getattr(schedule, name)))


@dataclass(frozen=True)
class Constant(Schedule):
    """The same learning rate at every step; built by :func:`constant`."""

    value: float

    def __post_init__(self) -> None:
        check("constant", self, {"value": RATE})

    def __call__(self, step: int) -> float:
        return float(self.value)


def constant(value: float) -> Constant:
    r"""A learning rate that never changes.

    .. math::

        \eta_t = \eta

    Args:
        value: the learning rate :math:`\eta`, ``>= 0``.

    Returns:
        A :class:`Constant` schedule.

    Example:
        >>> from descend.schedules import constant
        >>> s = constant(0.1)
        >>> s(0), s(1000)
        (0.1, 0.1)
    """
    return Constant(value)
