"""The 1cycle policy (Smith & Topin), step for step as torch's ``OneCycleLR``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from descend._validation import BOOL, Interval, OneOf, Satisfies, validate
from descend.schedules.base import POSITIVE, RATE, STEPS, Schedule, check, set_int

# A phase: (last step, learning rate at its start, learning rate at its end).
Phase = tuple[float, float, float]


@dataclass(frozen=True)
class OneCycle(Schedule):
    """Up from ``max_value / div_factor`` to ``max_value``, then down; built by :func:`one_cycle`."""

    max_value: float
    total_steps: int
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    anneal: str = "cos"
    three_phase: bool = False
    _phases: tuple[Phase, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        table = {
            "max_value": RATE,
            "total_steps": STEPS,
            "pct_start": Interval(0, 1, closed="neither"),
            "div_factor": POSITIVE,
            "final_div_factor": POSITIVE,
            "anneal": OneOf(("cos", "linear")),
            "three_phase": BOOL,
        }
        check("one_cycle", self, table)
        if self.three_phase:
            # Past 0.5 the way down would end after the last step, and the third
            # phase would never run; torch accepts it silently.
            text = "a float in the range (0, 0.5] when three_phase=True"
            half = Satisfies(lambda p: p <= 0.5, text)
            validate("one_cycle", {"pct_start": self.pct_start}, {"pct_start": half})
        set_int(self, "total_steps")
        object.__setattr__(self, "_phases", self._make_phases())

    def _make_phases(self) -> tuple[Phase, ...]:
        # The end points are torch's, float arithmetic included, so the two agree bit for bit.
        initial = self.max_value / self.div_factor
        final = initial / self.final_div_factor
        up = float(self.pct_start * self.total_steps) - 1
        last = self.total_steps - 1
        if self.three_phase:
            down = float(2 * self.pct_start * self.total_steps) - 2
            return (
                (up, initial, self.max_value),
                (down, self.max_value, initial),
                (last, initial, final),
            )
        return (up, initial, self.max_value), (last, self.max_value, final)

    def __call__(self, step: int) -> float:
        step = min(step, self.total_steps - 1)
        # Walk to the first phase whose end is not behind us; the last one takes the rest.
        phases, i, start = self._phases, 0, 0.0
        while i < len(phases) - 1 and step > phases[i][0]:
            start = phases[i][0]
            i += 1
        end, lr_start, lr_end = phases[i]
        # A phase of length zero (pct_start * total_steps == 1) is already over
        # at its only step; torch divides by zero there.
        pct = (step - start) / (end - start) if end != start else 1.0
        if self.anneal == "cos":
            return float(lr_end + (lr_start - lr_end) / 2.0 * (math.cos(math.pi * pct) + 1))
        return float((lr_end - lr_start) * pct + lr_start)


def one_cycle(
    max_value: float,
    total_steps: int,
    *,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal: str = "cos",
    three_phase: bool = False,
) -> OneCycle:
    r"""The 1cycle policy: warm up to ``max_value``, then anneal far below the start.

    With :math:`\eta_0 = \eta_{\max} / d`, :math:`\eta_{\min} = \eta_0 / d_f`,
    phase ends :math:`e_1 = pT - 1`, :math:`e_2 = T - 1` and
    :math:`a(x, y, u) = y + \tfrac12 (x - y)(1 + \cos \pi u)` (cosine) or
    :math:`x + (y - x) u` (linear):

    .. math::

        \eta_t = \begin{cases}
            a(\eta_0, \eta_{\max}, t / e_1) & t \le e_1 \\
            a(\eta_{\max}, \eta_{\min}, (t - e_1) / (e_2 - e_1)) & e_1 < t
        \end{cases}

    With ``three_phase=True`` the way down is mirrored to :math:`\eta_0` by
    :math:`e_2 = 2pT - 2`, and a third phase anneals :math:`\eta_0 \to \eta_{\min}`
    by :math:`e_3 = T - 1`. From step :math:`T - 1` on the rate is :math:`\eta_{\min}`.
    The sequence equals ``torch.optim.lr_scheduler.OneCycleLR`` (learning rates
    only: momentum is not cycled here).

    Args:
        max_value: :math:`\eta_{\max}`, the peak learning rate, ``>= 0``.
        total_steps: :math:`T`, the length of the cycle, an int ``>= 1``.
        pct_start: :math:`p`, the fraction of the cycle spent warming up, in ``(0, 1)``
            (``(0, 0.5]`` with ``three_phase``).
        div_factor: :math:`d`, ``> 0``.
        final_div_factor: :math:`d_f`, ``> 0``.
        anneal: ``"cos"`` or ``"linear"``, the shape :math:`a` of every phase.
        three_phase: mirror the warm-up, then anneal in a third phase (the paper's
            form) instead of annealing straight to :math:`\eta_{\min}` (fastai's).

    Returns:
        A :class:`OneCycle` schedule.

    Example:
        >>> from descend.schedules import one_cycle
        >>> s = one_cycle(1.0, 10, pct_start=0.5, div_factor=10.0, anneal="linear")
        >>> [round(s(t), 6) for t in (0, 2, 4, 9)]
        [0.1, 0.55, 1.0, 1e-05]
    """
    return OneCycle(
        max_value, total_steps, pct_start, div_factor, final_div_factor, anneal, three_phase
    )
