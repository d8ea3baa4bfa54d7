"""Constraints shared by several transforms (one definition each), and torch.optim's own
words for a value it refuses (its test suite matches them)."""

from __future__ import annotations

from collections.abc import Callable
from numbers import Real
from typing import Any

from torch import Tensor

from descend._validation import BOOL, Interval, Satisfies

# Finite: an infinite rate, decay or epsilon is never meant and only yields NaN later.
NON_NEGATIVE = Interval(0.0, None, closed="left", finite=True)
UNIT_OPEN = Interval(0.0, 1.0, closed="left")  # [0, 1): decay rates such as betas and alpha
FLAG = BOOL


def _is_schedule(value: object) -> bool:
    return callable(value) and not isinstance(value, Real | Tensor)


def _scalar(value: object) -> object:
    # A 1-element tensor stands for its value (torch.optim takes tensor lr, betas, decay).
    return value.item() if isinstance(value, Tensor) and value.numel() == 1 else value


def tensor_or(interval: Interval) -> tuple[Interval, Satisfies]:
    """``interval``, or a 1-element tensor whose value is in it."""
    return interval, Satisfies(
        lambda v: isinstance(v, Tensor) and v.numel() == 1 and interval.contains(v.item()),
        "a 1-element tensor holding one",
    )


LEARNING_RATE = (
    *tensor_or(NON_NEGATIVE),
    Satisfies(_is_schedule, "a schedule (a callable step -> lr)"),
)


def _is_beta_pair(value: object) -> bool:
    return (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(UNIT_OPEN.contains(_scalar(b)) for b in value)
    )


BETAS = Satisfies(_is_beta_pair, "a pair of floats (or 1-element tensors), each in [0, 1)")


def _betas_words(value: Any) -> str:
    if isinstance(value, tuple | list) and len(value) == 2:
        for i, b in enumerate(value):
            if not UNIT_OPEN.contains(_scalar(b)):
                return f"Invalid beta parameter at index {i}: {b}"
    return f"Invalid betas: {value}"


# What torch.optim says for the same refusal, added to descend's message so that code
# (and PyTorch's own tests) matching torch's words keeps working.
def _invalid(name: str) -> Callable[[Any], str]:
    return lambda v: f"torch.optim: Invalid {name} value: {v}"


def _etas_words(value: Any) -> str:
    if isinstance(value, tuple | list) and len(value) == 2:
        return f"Invalid eta values: {value[0]}, {value[1]}"
    return f"Invalid eta values: {value}"


def _eps_words(value: Any) -> str:
    # A pair is Adafactor's (eps1, eps2), which torch checks one at a time.
    if isinstance(value, tuple | list) and len(value) == 2:
        if value[0] is not None and not NON_NEGATIVE.contains(_scalar(value[0])):
            return f"epsilon1 should be >= 0 but is: {value[0]}"
        return f"epsilon2 should be >= 0 but is: {value[1]}"
    return f"Invalid epsilon value: {value}"


TORCH_WORDS: dict[str, Callable[[Any], str]] = {
    "etas": lambda v: f"torch.optim: {_etas_words(v)}",
    "lr": lambda v: f"torch.optim: Invalid learning rate: {v}",
    "eps": lambda v: f"torch.optim: {_eps_words(v)}",
    "beta2_decay": lambda v: f"torch.optim: beta2_decay should be <= 0 but is: {v}",
    "d": lambda v: f"torch.optim: Clipping threshold d should be >= 1 but is: {v}",
    "betas": lambda v: f"torch.optim: {_betas_words(v)}",
    "adjust_lr_fn": lambda v: f"torch.optim: Adjust learning rate function {v} is not supported",
    **{
        n: _invalid(n)
        for n in (
            "weight_decay",
            "momentum",
            "lr_decay",
            "alpha",
            "dampening",
            "momentum_decay",
            "rho",
        )
    },
}
