"""Linear warm-up, and warm-up followed by cosine decay."""

from __future__ import annotations

from dataclasses import dataclass

from descend._validation import Satisfies, validate
from descend.schedules.base import COUNT, RATE, STEPS, Schedule, check, set_int
from descend.schedules.decay import Cosine
from descend.schedules.piecewise import Join


@dataclass(frozen=True)
class LinearWarmup(Schedule):
    """A straight line from ``init_value`` to ``peak_value``; built by :func:`linear_warmup`."""

    init_value: float
    peak_value: float
    warmup_steps: int

    def __post_init__(self) -> None:
        table = {"init_value": RATE, "peak_value": RATE, "warmup_steps": COUNT}
        check("linear_warmup", self, table)
        set_int(self, "warmup_steps")

    def __call__(self, step: int) -> float:
        if step >= self.warmup_steps:
            return float(self.peak_value)
        return float(
            self.init_value + (self.peak_value - self.init_value) * step / self.warmup_steps
        )


def linear_warmup(init_value: float, peak_value: float, warmup_steps: int) -> LinearWarmup:
    r"""Raise the learning rate linearly over the first steps, then hold it.

    .. math::

        \eta_t = \begin{cases}
            \eta_0 + (\eta_{\max} - \eta_0)\, t / W & t < W \\
            \eta_{\max} & t \ge W
        \end{cases}

    Args:
        init_value: :math:`\eta_0`, the learning rate of the first step, ``>= 0``.
        peak_value: :math:`\eta_{\max}`, reached at step :math:`W` and held, ``>= 0``.
        warmup_steps: :math:`W`, an int ``>= 0`` (``0``: no warm-up).

    Returns:
        A :class:`LinearWarmup` schedule.

    Example:
        >>> from descend.schedules import linear_warmup
        >>> s = linear_warmup(0.0, 1.0, 4)
        >>> [s(t) for t in range(6)]
        [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """
    return LinearWarmup(init_value, peak_value, warmup_steps)


def warmup_cosine(
    peak_value: float,
    warmup_steps: int,
    total_steps: int,
    *,
    init_value: float = 0.0,
    final_value: float = 0.0,
) -> Join:
    r"""Warm up linearly to ``peak_value``, then anneal along half a cosine (nanoGPT's schedule).

    With :math:`W` warm-up steps out of :math:`T` in all:

    .. math::

        \eta_t = \begin{cases}
            \eta_0 + (\eta_{\max} - \eta_0)\, t / W & t < W \\
            \eta_T + \tfrac12 (\eta_{\max} - \eta_T)
                \left(1 + \cos\frac{\pi (t - W)}{T - W}\right) & W \le t < T \\
            \eta_T & t \ge T
        \end{cases}

    Args:
        peak_value: :math:`\eta_{\max}`, the learning rate at step :math:`W`, ``>= 0``.
        warmup_steps: :math:`W`, an int in ``[0, total_steps)``.
        total_steps: :math:`T`, warm-up included: the step at which ``final_value``
            is reached, an int ``>= 1``.
        init_value: :math:`\eta_0`, the learning rate of the first step, ``>= 0``.
        final_value: :math:`\eta_T`, the learning rate from step :math:`T` on, ``>= 0``.

    Returns:
        A :class:`Join` of a :class:`LinearWarmup` and a :class:`Cosine`.

    Example:
        >>> from descend.schedules import warmup_cosine
        >>> s = warmup_cosine(1.0, 2, 6)
        >>> [round(s(t), 12) for t in range(7)]
        [0.0, 0.5, 1.0, 0.853553390593, 0.5, 0.146446609407, 0.0]
    """
    validate("warmup_cosine", {"total_steps": total_steps}, {"total_steps": STEPS})
    warmup = Satisfies(
        lambda w: COUNT.contains(w) and w < total_steps, f"an int in the range [0, {total_steps})"
    )
    validate("warmup_cosine", {"warmup_steps": warmup_steps}, {"warmup_steps": warmup})
    values = {"peak_value": peak_value, "init_value": init_value, "final_value": final_value}
    validate("warmup_cosine", values, dict.fromkeys(values, RATE))
    w, t = int(warmup_steps), int(total_steps)
    pieces = (LinearWarmup(init_value, peak_value, w), Cosine(peak_value, t - w, final_value))
    return Join(pieces, (w,))
