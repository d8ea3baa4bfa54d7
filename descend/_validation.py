"""Declared hyperparameter constraints, checked in one place with one message format.

Every public constructor that takes numeric settings declares a table
``{"lr": Interval(0, None, closed="left"), ...}`` and calls :func:`validate`.
The message always names the parameter, the owner, the allowed values and the
value given::

    The 'lr' parameter of Adam must be a float >= 0. Got -1 instead.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Any


class InvalidParameterError(ValueError):
    """A setting outside its allowed values. Subclasses ValueError, as torch.optim raises."""


@dataclass(frozen=True)
class Interval:
    """A real interval; ``None`` is an open end. ``closed`` in {'left', 'right', 'both', 'neither'}.

    An open end admits infinity unless ``finite=True`` (a learning rate of ``inf`` is
    never meant; a clipping threshold of ``inf`` means "no clipping").
    """

    low: float | None
    high: float | None
    closed: str = "both"
    integer: bool = False
    finite: bool = False

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, Real):
            return False
        if self.integer and (not math.isfinite(float(value)) or int(value) != value):
            return False
        v = float(value)
        if math.isnan(v) or (self.finite and math.isinf(v)):
            return False
        below = self.low is not None and (
            v < self.low or (v == self.low and self.closed not in ("left", "both"))
        )
        above = self.high is not None and (
            v > self.high or (v == self.high and self.closed not in ("right", "both"))
        )
        return not (below or above)

    def describe(self) -> str:
        # ``finite`` does not change the wording: "a float >= 0. Got inf instead." is clear.
        kind = "an int" if self.integer else "a float"
        lo = None if self.low is None else (">=" if self.closed in ("left", "both") else ">")
        hi = None if self.high is None else ("<=" if self.closed in ("right", "both") else "<")
        if lo and hi:
            left = "[" if lo == ">=" else "("
            right = "]" if hi == "<=" else ")"
            return f"{kind} in the range {left}{_num(self.low)}, {_num(self.high)}{right}"
        if lo:
            return f"{kind} {lo} {_num(self.low)}"
        if hi:
            return f"{kind} {hi} {_num(self.high)}"
        return kind


@dataclass(frozen=True)
class OneOf:
    """A value from a fixed set."""

    options: tuple[Any, ...]

    def contains(self, value: Any) -> bool:
        return any(value is o or (type(value) is type(o) and value == o) for o in self.options)

    def describe(self) -> str:
        return "one of {" + ", ".join(repr(o) for o in self.options) + "}"


@dataclass(frozen=True)
class Satisfies:
    """A value accepted by a predicate; ``text`` says what is allowed."""

    predicate: Callable[[Any], bool]
    text: str

    def contains(self, value: Any) -> bool:
        try:
            return bool(self.predicate(value))
        except (TypeError, ValueError):
            return False

    def describe(self) -> str:
        return self.text


Constraint = Interval | OneOf | Satisfies

BOOL = OneOf((True, False))


def _num(x: float | None) -> str:
    return repr(x) if x is None else (f"{x:g}")


def validate(
    owner: str,
    values: Mapping[str, Any],
    table: Mapping[str, Constraint | Iterable[Constraint]],
    words: Mapping[str, Callable[[Any], str]] | None = None,
) -> None:
    """Check each named value against its declared constraint(s); raise on the first violation.

    A value passes when any of its constraints accepts it. Names absent from
    ``values`` are skipped (they keep their defaults). ``words[name](value)``, when given,
    is another library's wording of the same refusal, added in parentheses (torch.optim's,
    which code written for torch may match).
    """
    for name, constraints in table.items():
        if name not in values:
            continue
        cs = (
            (constraints,)
            if isinstance(constraints, Interval | OneOf | Satisfies)
            else tuple(constraints)
        )
        value = values[name]
        if not any(c.contains(value) for c in cs):
            allowed = " or ".join(c.describe() for c in cs)
            said = words.get(name) if words else None
            raise InvalidParameterError(
                f"The {name!r} parameter of {owner} must be {allowed}. Got {value!r} instead."
                + (f" ({said(value)})" if said else "")
            )


def reject_unknown(owner: str, given: Iterable[str], known: Iterable[str]) -> None:
    """Refuse names that are not settings of ``owner``, suggesting the closest valid one."""
    known = list(known)
    for name in given:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise InvalidParameterError(
                f"{owner} has no parameter {name!r}.{hint} Valid parameters: {', '.join(sorted(known))}."
            )


def reject_unknown_keywords(
    owner: str, func: Callable[..., Any], given: Iterable[str], *, skip: Iterable[str] = ("params",)
) -> None:
    """Like :func:`reject_unknown`, with the keyword names ``func`` (a function or class) accepts.

    Lets a factory that forwards ``**kwargs`` (``make_optimizer("adam", params, betas1=...)``)
    answer a misspelt name with the closest valid one instead of Python's bare TypeError.
    A ``func`` that itself takes ``**kwargs`` accepts every name.
    """
    import inspect

    params = inspect.signature(func).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    skipped = set(skip)
    known = [
        p.name
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in skipped
    ]
    reject_unknown(owner, given, known)


def unknown_choice(kind: str, given: str, options: Iterable[str]) -> InvalidParameterError:
    """The error for an unknown name (task, optimizer, schedule, ...): lists what exists."""
    options = sorted(options)
    close = difflib.get_close_matches(given, options, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return InvalidParameterError(
        f"Unknown {kind} {given!r}.{hint} Available: {', '.join(options)}."
    )


@dataclass(frozen=True)
class Rule:
    """A constraint between several settings, e.g. Nesterov needs momentum and no dampening.

    ``predicate`` receives the mapping of all settings; ``text`` completes
    "The '<name>' parameter of <owner> must be ...".
    """

    name: str
    predicate: Callable[[Mapping[str, Any]], bool]
    text: str
    shows: tuple[str, ...] = ()

    def check(self, owner: str, values: Mapping[str, Any]) -> None:
        if self.name in values and not self.predicate(values):
            others = "".join(
                f" with {k}={values.get(k)!r}" if i == 0 else f" and {k}={values.get(k)!r}"
                for i, k in enumerate(self.shows)
            )
            raise InvalidParameterError(
                f"The {self.name!r} parameter of {owner} must be {self.text}. "
                f"Got {self.name}={values[self.name]!r}{others} instead."
            )
