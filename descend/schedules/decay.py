"""Decaying schedules: step, multi-step, exponential and cosine.

Each equals the closed form of its ``torch.optim.lr_scheduler`` namesake
(``StepLR``, ``MultiStepLR``, ``ExponentialLR``, ``CosineAnnealingLR``). torch
computes most of them recursively (``lr *= gamma``), which drifts from the
closed form by a few ulps; the closed form here is exact at every step.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass
from numbers import Integral
from typing import Any

from descend._validation import BOOL, Satisfies
from descend.schedules.base import POSITIVE, RATE, STEPS, Schedule, check, set_int


def _is_milestones(value: Any) -> bool:
    return isinstance(value, tuple | list) and all(
        isinstance(m, Integral) and not isinstance(m, bool) and m >= 0 for m in value
    )


MILESTONES = Satisfies(_is_milestones, "a sequence of ints >= 0")


@dataclass(frozen=True)
class StepDecay(Schedule):
    """Multiply by ``gamma`` every ``step_size`` steps; built by :func:`step_decay`."""

    init_value: float
    step_size: int
    gamma: float = 0.1

    def __post_init__(self) -> None:
        check("step_decay", self, {"init_value": RATE, "step_size": STEPS, "gamma": POSITIVE})
        set_int(self, "step_size")

    def __call__(self, step: int) -> float:
        return float(self.init_value * self.gamma ** (step // self.step_size))


def step_decay(init_value: float, step_size: int, *, gamma: float = 0.1) -> StepDecay:
    r"""Decay the learning rate by ``gamma`` every ``step_size`` steps (torch ``StepLR``).

    .. math::

        \eta_t = \eta_0 \, \gamma^{\lfloor t / s \rfloor}

    Args:
        init_value: :math:`\eta_0`, the learning rate of the first step, ``>= 0``.
        step_size: :math:`s`, the number of steps between decays, an int ``>= 1``.
        gamma: :math:`\gamma`, the factor applied at each decay, ``> 0``.

    Returns:
        A :class:`StepDecay` schedule.

    Example:
        >>> from descend.schedules import step_decay
        >>> s = step_decay(1.0, 10, gamma=0.5)
        >>> s(0), s(9), s(10), s(25)
        (1.0, 1.0, 0.5, 0.25)
    """
    return StepDecay(init_value, step_size, gamma)


@dataclass(frozen=True)
class MultiStep(Schedule):
    """Multiply by ``gamma`` at each milestone; built by :func:`multi_step`."""

    init_value: float
    milestones: tuple[int, ...]
    gamma: float = 0.1

    def __post_init__(self) -> None:
        check("multi_step", self, {"init_value": RATE, "milestones": MILESTONES, "gamma": POSITIVE})
        # Sorted so a binary search counts the milestones passed; a repeated
        # milestone decays twice, as in torch's MultiStepLR.
        object.__setattr__(self, "milestones", tuple(sorted(int(m) for m in self.milestones)))

    def __call__(self, step: int) -> float:
        return float(self.init_value * self.gamma ** bisect.bisect_right(self.milestones, step))


def multi_step(init_value: float, milestones: Iterable[int], *, gamma: float = 0.1) -> MultiStep:
    r"""Decay the learning rate by ``gamma`` at each milestone (torch ``MultiStepLR``).

    .. math::

        \eta_t = \eta_0 \, \gamma^{\#\{i \,:\, m_i \le t\}}

    Args:
        init_value: :math:`\eta_0`, the learning rate of the first step, ``>= 0``.
        milestones: :math:`m_i`, the steps from which one more factor applies,
            ints ``>= 0`` in any order.
        gamma: :math:`\gamma`, the factor applied at each milestone, ``> 0``.

    Returns:
        A :class:`MultiStep` schedule.

    Example:
        >>> from descend.schedules import multi_step
        >>> s = multi_step(1.0, [3, 5], gamma=0.5)
        >>> [s(t) for t in range(7)]
        [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """
    given = (
        tuple(milestones)
        if isinstance(milestones, Iterable) and not isinstance(milestones, str)
        else milestones
    )
    return MultiStep(init_value, given, gamma)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Exponential(Schedule):
    """Multiply by ``gamma`` every ``decay_steps`` steps, smoothly; built by :func:`exponential`."""

    init_value: float
    gamma: float
    decay_steps: int = 1
    staircase: bool = False

    def __post_init__(self) -> None:
        table = {"init_value": RATE, "gamma": POSITIVE, "decay_steps": STEPS, "staircase": BOOL}
        check("exponential", self, table)
        set_int(self, "decay_steps")

    def __call__(self, step: int) -> float:
        rate = step // self.decay_steps if self.staircase else step / self.decay_steps
        return float(self.init_value * self.gamma**rate)


def exponential(
    init_value: float, gamma: float, *, decay_steps: int = 1, staircase: bool = False
) -> Exponential:
    r"""Decay the learning rate geometrically (torch ``ExponentialLR`` when ``decay_steps=1``).

    .. math::

        \eta_t = \eta_0 \, \gamma^{r_t}, \qquad
        r_t = \begin{cases} \lfloor t / k \rfloor & \text{staircase} \\ t / k & \text{otherwise} \end{cases}

    Args:
        init_value: :math:`\eta_0`, the learning rate of the first step, ``>= 0``.
        gamma: :math:`\gamma`, the factor per ``decay_steps`` steps, ``> 0``.
        decay_steps: :math:`k`, the number of steps over which the learning rate
            is multiplied by ``gamma`` once, an int ``>= 1``.
        staircase: decay in whole jumps every ``decay_steps`` steps instead of
            a little at every step.

    Returns:
        An :class:`Exponential` schedule.

    Example:
        >>> from descend.schedules import exponential
        >>> s = exponential(1.0, 0.5)
        >>> s(0), s(1), s(3)
        (1.0, 0.5, 0.125)
    """
    return Exponential(init_value, gamma, decay_steps, staircase)


@dataclass(frozen=True)
class Cosine(Schedule):
    """Half a cosine from ``init_value`` to ``final_value``; built by :func:`cosine`."""

    init_value: float
    total_steps: int
    final_value: float = 0.0

    def __post_init__(self) -> None:
        check("cosine", self, {"init_value": RATE, "total_steps": STEPS, "final_value": RATE})
        set_int(self, "total_steps")

    def __call__(self, step: int) -> float:
        if step >= self.total_steps:
            return float(self.final_value)
        # Same operation order as torch's CosineAnnealingLR closed form, so the
        # two agree to the last bit.
        cos_out = 1 + math.cos(math.pi * step / self.total_steps)
        return float(self.final_value + (self.init_value - self.final_value) * cos_out / 2)


def cosine(init_value: float, total_steps: int, *, final_value: float = 0.0) -> Cosine:
    r"""Anneal the learning rate along half a cosine (torch ``CosineAnnealingLR``).

    .. math::

        \eta_t = \eta_T + \tfrac12 (\eta_0 - \eta_T)
                 \left(1 + \cos\frac{\pi \min(t, T)}{T}\right)

    Unlike torch's ``CosineAnnealingLR``, which climbs back up after ``T_max``,
    the learning rate stays at ``final_value`` from step ``total_steps`` on.

    Args:
        init_value: :math:`\eta_0`, the learning rate of the first step, ``>= 0``.
        total_steps: :math:`T`, the step at which ``final_value`` is reached, an int ``>= 1``.
        final_value: :math:`\eta_T`, the learning rate at and after step :math:`T`, ``>= 0``.

    Returns:
        A :class:`Cosine` schedule.

    Example:
        >>> from descend.schedules import cosine
        >>> s = cosine(0.1, 100)
        >>> s(0), round(s(50), 12), s(100), s(500)
        (0.1, 0.05, 0.0, 0.0)
    """
    return Cosine(init_value, total_steps, final_value)


__all__ = [
    "Cosine",
    "Exponential",
    "MultiStep",
    "StepDecay",
    "cosine",
    "exponential",
    "multi_step",
    "step_decay",
]
