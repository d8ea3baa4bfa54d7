"""Schedules by the names users type on the command line, with sensible defaults."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

from descend._validation import reject_unknown, unknown_choice, validate
from descend.schedules.base import RATE, STEPS, Schedule, constant
from descend.schedules.cycle import one_cycle
from descend.schedules.decay import cosine, exponential, multi_step, step_decay
from descend.schedules.warmup import linear_warmup, warmup_cosine

# Every builder takes (lr, total_steps) and its options keyword-only; the options'
# defaults are stated relative to the run's length.


def _constant(lr: float, total_steps: int) -> Schedule:
    return constant(lr)


def _step(
    lr: float, total_steps: int, *, step_size: int | None = None, gamma: float = 0.1
) -> Schedule:
    # Two decays over the run, as in the classic "divide by 10 twice" recipe.
    size = step_size if step_size is not None else max(1, total_steps // 3)
    return step_decay(lr, size, gamma=gamma)


def _multistep(
    lr: float, total_steps: int, *, milestones: Sequence[int] | None = None, gamma: float = 0.1
) -> Schedule:
    marks = milestones if milestones is not None else (total_steps // 2, 3 * total_steps // 4)
    return multi_step(lr, marks, gamma=gamma)


def _exponential(
    lr: float,
    total_steps: int,
    *,
    gamma: float | None = None,
    decay_steps: int = 1,
    staircase: bool = False,
) -> Schedule:
    # By default the rate ends the run 100 times smaller than it started.
    rate = gamma if gamma is not None else 0.01 ** (decay_steps / total_steps)
    return exponential(lr, rate, decay_steps=decay_steps, staircase=staircase)


def _cosine(lr: float, total_steps: int, *, final_value: float = 0.0) -> Schedule:
    return cosine(lr, total_steps, final_value=final_value)


def _warmup_default(total_steps: int) -> int:
    return int(0.05 * total_steps)  # 5% of the run, always < total_steps


def _warmup(
    lr: float, total_steps: int, *, warmup_steps: int | None = None, init_value: float = 0.0
) -> Schedule:
    steps = warmup_steps if warmup_steps is not None else _warmup_default(total_steps)
    return linear_warmup(init_value, lr, steps)


def _warmup_cosine(
    lr: float,
    total_steps: int,
    *,
    warmup_steps: int | None = None,
    init_value: float = 0.0,
    final_value: float = 0.0,
) -> Schedule:
    steps = warmup_steps if warmup_steps is not None else _warmup_default(total_steps)
    return warmup_cosine(lr, steps, total_steps, init_value=init_value, final_value=final_value)


def _onecycle(
    lr: float,
    total_steps: int,
    *,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal: str = "cos",
    three_phase: bool = False,
) -> Schedule:
    return one_cycle(
        lr,
        total_steps,
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        anneal=anneal,
        three_phase=three_phase,
    )


_BUILDERS: dict[str, Callable[..., Schedule]] = {
    "constant": _constant,
    "step": _step,
    "multistep": _multistep,
    "exponential": _exponential,
    "cosine": _cosine,
    "warmup": _warmup,
    "warmup_cosine": _warmup_cosine,
    "onecycle": _onecycle,
}

# Spellings of the library's own function names, accepted but not listed.
_ALIASES = {
    "step_decay": "step",
    "multi_step": "multistep",
    "linear_warmup": "warmup",
    "one_cycle": "onecycle",
}

SCHEDULE_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def options_of(name: str) -> tuple[str, ...]:
    """The options :func:`from_name` accepts for the schedule ``name`` (besides ``lr``, ``total_steps``)."""
    builder = _BUILDERS[_canonical(name)]
    params = inspect.signature(builder).parameters.values()
    return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def _canonical(name: str) -> str:
    key = name.strip().lower().replace("-", "_") if isinstance(name, str) else name
    key = _ALIASES.get(key, key)
    if key not in _BUILDERS:
        raise unknown_choice("schedule", str(name), SCHEDULE_NAMES)
    return key


def from_name(name: str, *, lr: float, total_steps: int, **options: object) -> Schedule:
    r"""Build a schedule from its command-line name, scaled to the run.

    ``lr`` is the schedule's characteristic rate (the constant, the start of a
    decay, the peak of a warm-up or of 1cycle) and ``total_steps`` the number of
    updates in the run; every other setting has a default relative to them:

    ================  ==========================================================
    name              schedule
    ================  ==========================================================
    ``constant``      ``constant(lr)``
    ``step``          ``step_decay(lr, step_size=total_steps // 3, gamma=0.1)``
    ``multistep``     ``multi_step(lr, [T // 2, 3T // 4], gamma=0.1)``
    ``exponential``   ``exponential(lr, gamma)`` with :math:`\gamma^T = 0.01`
    ``cosine``        ``cosine(lr, total_steps, final_value=0)``
    ``warmup``        ``linear_warmup(0, lr, warmup_steps=5% of T)``
    ``warmup_cosine`` ``warmup_cosine(lr, 5% of T, total_steps)``
    ``onecycle``      ``one_cycle(lr, total_steps)``
    ================  ==========================================================

    Args:
        name: one of :data:`SCHEDULE_NAMES` (case and ``-``/``_`` do not matter).
        lr: the learning rate the schedule is built around, ``>= 0``.
        total_steps: :math:`T`, the number of updates in the run, an int ``>= 1``.
        **options: settings of that schedule overriding the defaults
            (e.g. ``gamma=0.5``, ``warmup_steps=100``); see :func:`options_of`.

    Returns:
        The :class:`Schedule`.

    Example:
        >>> from descend.schedules import from_name
        >>> s = from_name("warmup_cosine", lr=0.1, total_steps=100)
        >>> s(0), s(5), s(100)
        (0.0, 0.1, 0.0)
    """
    key = _canonical(name)
    owner = f"schedule {key!r}"
    validate(owner, {"lr": lr, "total_steps": total_steps}, {"lr": RATE, "total_steps": STEPS})
    reject_unknown(owner, options, options_of(key))
    return _BUILDERS[key](lr, int(total_steps), **options)
