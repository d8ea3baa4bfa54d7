"""Learning-rate schedules as pure functions of the step, and plateau reduction.

A schedule maps the 0-based index of an update to its learning rate: the first
update uses ``schedule(0)``. Schedules are frozen dataclasses with no state, so a
run resumes from the step count alone, and a schedule pickles, prints and
compares like a value::

    >>> from descend.schedules import warmup_cosine
    >>> s = warmup_cosine(1e-3, warmup_steps=100, total_steps=1000)
    >>> s(0), s(100), s(1000)
    (0.0, 0.001, 0.0)

Each decay equals the closed form of its ``torch.optim.lr_scheduler``
namesake (``StepLR``, ``MultiStepLR``, ``ExponentialLR``, ``CosineAnnealingLR``,
``OneCycleLR``); :func:`join` chains schedules as optax's ``join_schedules``;
:func:`from_name` builds one from a command-line name. :class:`ReduceOnPlateau`
is the one stateful rule: it follows a metric, as torch's ``ReduceLROnPlateau``
does, without holding an optimizer.
"""

from descend.schedules.base import Constant, Schedule, constant
from descend.schedules.cycle import OneCycle, one_cycle
from descend.schedules.decay import (
    Cosine,
    Exponential,
    MultiStep,
    StepDecay,
    cosine,
    exponential,
    multi_step,
    step_decay,
)
from descend.schedules.names import SCHEDULE_NAMES, from_name, options_of
from descend.schedules.piecewise import Join, join
from descend.schedules.plateau import ReduceOnPlateau
from descend.schedules.warmup import LinearWarmup, linear_warmup, warmup_cosine

__all__ = [
    "SCHEDULE_NAMES",
    "Constant",
    "Cosine",
    "Exponential",
    "Join",
    "LinearWarmup",
    "MultiStep",
    "OneCycle",
    "ReduceOnPlateau",
    "Schedule",
    "StepDecay",
    "constant",
    "cosine",
    "exponential",
    "from_name",
    "join",
    "linear_warmup",
    "multi_step",
    "one_cycle",
    "options_of",
    "step_decay",
    "warmup_cosine",
]
