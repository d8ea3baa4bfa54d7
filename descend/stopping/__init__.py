"""Stopping criteria shared by ``minimize`` and the training loop.

A loop reports a :class:`Progress` after each update; a :class:`Criterion` answers
``None`` (go on) or a :class:`Stop` naming itself, with a message and ``success``.
Combine criteria with :class:`AnyOf`; the first that fires, in the order given, wins.
"""

from descend.stopping.base import AnyOf, Criterion, Progress, Stop
from descend.stopping.criteria import (
    Divergence,
    FunctionTolerance,
    GradientTolerance,
    MaxIter,
    StepTolerance,
    TimeBudget,
)

__all__ = [
    "AnyOf",
    "Criterion",
    "Divergence",
    "FunctionTolerance",
    "GradientTolerance",
    "MaxIter",
    "Progress",
    "StepTolerance",
    "Stop",
    "TimeBudget",
]
