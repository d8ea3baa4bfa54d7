"""``--space lr=1e-4:1e-1:log,weight_decay=0:0.1``: range overrides, parsed and checked.

Each comma-separated entry is ``NAME=LOW:HIGH`` (uniform) or ``NAME=LOW:HIGH:log``
(log-uniform). Every entry is checked before any trial runs, and a bad one is
refused with one message that names the entry, what is wrong, what is allowed and
what was given.
"""

from __future__ import annotations

import math

from descend._validation import InvalidParameterError
from descend.tune.spaces import SPACES, Param

_FORM = "NAME=LOW:HIGH or NAME=LOW:HIGH:log"


def _number(text: str, entry: str, which: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidParameterError(
            f"--space entry {entry!r}: {which} must be a number. Got {text!r} instead."
        ) from None
    if not math.isfinite(value):
        raise InvalidParameterError(
            f"--space entry {entry!r}: {which} must be finite. Got {text!r} instead."
        )
    return value


def _parse_entry(entry: str, optimizer: str) -> Param:
    known = {p.name: p for p in SPACES[optimizer]}
    name, sep, value = entry.partition("=")
    name = name.strip()
    parts = [part.strip() for part in value.split(":")]
    if not sep or len(parts) not in (2, 3):
        raise InvalidParameterError(
            f"--space entry {entry!r} must be {_FORM}. Got {entry!r} instead."
        )
    if name not in known:
        raise InvalidParameterError(
            f"--space entry {entry!r}: {optimizer} has no tunable hyperparameter {name!r}; "
            f"allowed: {', '.join(known)}. Got {name!r} instead."
        )
    log = len(parts) == 3
    if log and parts[2] != "log":
        raise InvalidParameterError(
            f"--space entry {entry!r}: the third field may only be 'log'. Got {parts[2]!r} instead."
        )
    low, high = _number(parts[0], entry, "LOW"), _number(parts[1], entry, "HIGH")
    if not low < high:
        raise InvalidParameterError(
            f"--space entry {entry!r}: the range is empty; LOW must be below HIGH. "
            f"Got {low:g}:{high:g} instead."
        )
    if log and low <= 0:
        raise InvalidParameterError(
            f"--space entry {entry!r}: a log range must lie above 0 (log 0 is -inf). "
            f"Got LOW {low:g} instead."
        )
    lowest, highest, closed = known[name].bounds
    if low < lowest or high > highest or (high == highest and not closed):
        top = f"{highest:g}]" if closed else f"{highest:g})"
        raise InvalidParameterError(
            f"--space entry {entry!r}: {optimizer}'s {name} must lie in [{lowest:g}, {top}. "
            f"Got {low:g}:{high:g} instead."
        )
    return Param(name, low, high, log=log, bounds=known[name].bounds)


def parse_space(text: str | None, optimizer: str) -> tuple[Param, ...]:
    """The overrides in ``text`` for ``optimizer``, checked.

    Raises:
        InvalidParameterError: naming the first bad entry: not ``NAME=LOW:HIGH[:log]``, a
            hyperparameter ``optimizer`` does not have, a bound that is not a number, an
            empty range (LOW >= HIGH), a log range touching 0, a range outside what the
            optimizer accepts (momentum 1 or more), or a name given twice.

    Example:
        >>> [p.describe() for p in parse_space("lr=1e-4:1e-1:log,weight_decay=0:0.1", "adamw")]
        ['lr in [0.0001, 0.1] (log)', 'weight_decay in [0, 0.1]']
        >>> parse_space("lr=0:1:log", "sgd")
        Traceback (most recent call last):
        ...
        descend._validation.InvalidParameterError: --space entry 'lr=0:1:log': a log range must lie above 0 (log 0 is -inf). Got LOW 0 instead.
    """
    from descend._validation import unknown_choice

    if optimizer not in SPACES:
        raise unknown_choice("optimizer", optimizer, SPACES)
    if text is None or not text.strip():
        return ()
    params: dict[str, Param] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            raise InvalidParameterError(
                f"--space has an empty entry; each entry must be {_FORM}. Got {text!r} instead."
            )
        param = _parse_entry(entry, optimizer)
        if param.name in params:
            raise InvalidParameterError(
                f"--space gives {param.name} twice; give each hyperparameter once. "
                f"Got {text!r} instead."
            )
        params[param.name] = param
    return tuple(params.values())
