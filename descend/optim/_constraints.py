"""Constraints shared by several transforms (one definition each)."""

from numbers import Real

from descend._validation import BOOL, Interval, Satisfies

# Finite: an infinite rate, decay or epsilon is never meant and only yields NaN later.
NON_NEGATIVE = Interval(0.0, None, closed="left", finite=True)
UNIT_OPEN = Interval(0.0, 1.0, closed="left")  # [0, 1): decay rates such as betas and alpha
FLAG = BOOL


def _is_schedule(value: object) -> bool:
    return callable(value) and not isinstance(value, Real)


LEARNING_RATE = (NON_NEGATIVE, Satisfies(_is_schedule, "a schedule (a callable step -> lr)"))


def _is_beta_pair(value: object) -> bool:
    return (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(UNIT_OPEN.contains(b) for b in value)
    )


BETAS = Satisfies(_is_beta_pair, "a pair of floats, each in the range [0, 1)")
