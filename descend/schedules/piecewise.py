"""Joining schedules end to end (optax ``join_schedules``)."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

from descend._validation import Satisfies, validate
from descend.schedules.base import Schedule


def _is_schedules(value: Any) -> bool:
    return isinstance(value, tuple | list) and len(value) > 0 and all(callable(s) for s in value)


SCHEDULES = Satisfies(_is_schedules, "a non-empty sequence of schedules")


def _boundaries_fit(count: int) -> Satisfies:
    def fits(value: Any) -> bool:
        return (
            isinstance(value, tuple | list)
            and len(value) == count
            and all(isinstance(b, Integral) and not isinstance(b, bool) and b >= 0 for b in value)
            and all(a <= b for a, b in itertools.pairwise(value))
        )

    text = f"a non-decreasing sequence of ints >= 0 of length {count} (one fewer than schedules)"
    return Satisfies(fits, text)


@dataclass(frozen=True)
class Join(Schedule):
    """Schedules run one after the other; built by :func:`join`."""

    schedules: tuple[Callable[[int], float], ...]
    boundaries: tuple[int, ...]

    def __post_init__(self) -> None:
        # Two passes: the boundaries' allowed length depends on valid schedules.
        validate("join", {"schedules": self.schedules}, {"schedules": SCHEDULES})
        table = {"boundaries": _boundaries_fit(len(self.schedules) - 1)}
        validate("join", {"boundaries": self.boundaries}, table)
        object.__setattr__(self, "schedules", tuple(self.schedules))
        object.__setattr__(self, "boundaries", tuple(int(b) for b in self.boundaries))

    def __call__(self, step: int) -> float:
        # i = the number of boundaries already reached = the index of the piece in use.
        i = bisect.bisect_right(self.boundaries, step)
        if i == 0:
            return float(self.schedules[0](step))
        return float(self.schedules[i](step - self.boundaries[i - 1]))


def join(schedules: Sequence[Callable[[int], float]], boundaries: Sequence[int]) -> Join:
    r"""Run schedules one after the other, each counting its own steps from zero.

    With boundaries :math:`b_1 \le \dots \le b_{n-1}` (and :math:`b_0 = 0`),
    schedule :math:`i` is used from step :math:`b_i` and sees the step relative
    to its start:

    .. math::

        \eta_t = s_i(t - b_i), \qquad b_i \le t < b_{i+1}

    Args:
        schedules: :math:`s_0, \dots, s_{n-1}`, the pieces, each a :class:`Schedule`
            (or any picklable ``step -> lr`` callable).
        boundaries: :math:`b_1, \dots, b_{n-1}`, the steps at which the next
            piece takes over: ``len(schedules) - 1`` non-decreasing ints ``>= 0``.

    Returns:
        A :class:`Join` schedule.

    Example:
        >>> from descend.schedules import constant, exponential, join
        >>> s = join([constant(1.0), exponential(1.0, 0.5)], [2])
        >>> [s(t) for t in range(5)]
        [1.0, 1.0, 1.0, 0.5, 0.25]
    """
    given = tuple(schedules) if isinstance(schedules, Sequence) else schedules
    bounds = tuple(boundaries) if isinstance(boundaries, Sequence) else boundaries
    return Join(given, bounds)  # type: ignore[arg-type]
