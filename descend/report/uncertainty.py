"""How sure a comparison can be: bootstrap intervals over seeds and paired differences.

Seeds are paired across optimizers (seed ``k`` gives every optimizer the same data
split, initial weights and batch order), so two optimizers are compared by the
per-seed *difference* of their final metric, which cancels what the seed does to
both. With differences :math:`d_1..d_n`, the percentile bootstrap draws :math:`B`
resamples of size :math:`n` with replacement and takes the :math:`\\alpha/2` and
:math:`1-\\alpha/2` quantiles of their means as the interval. An optimizer is
*separated* from the leader when that interval excludes 0; with fewer than two
paired seeds nothing is separated (one seed says nothing about the spread).

With 3 seeds, the 95% interval of a paired difference excludes 0 exactly when all
three differences have the same sign: a small-sample statement, and the report says
"tied" rather than overclaim.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

LEVEL = 0.95
RESAMPLES = 4000


def bootstrap_ci(
    values: Sequence[float], *, level: float = LEVEL, resamples: int = RESAMPLES, seed: int = 0
) -> list[float] | None:
    """Percentile-bootstrap interval ``[low, high]`` of the mean of ``values``; ``None`` for n < 2.

    Example:
        >>> bootstrap_ci([1.0, 2.0, 3.0])
        [1.0, 3.0]
        >>> bootstrap_ci([5.0]) is None
        True
    """
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if x.size < 2:
        return None
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    alpha = 1.0 - level
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return [float(low), float(high)]


def paired_difference(
    leader: Mapping[Any, float | None], other: Mapping[Any, float | None], *, higher_is_better: bool
) -> dict[str, Any]:
    """The leader's advantage over ``other`` on the seeds both have (positive = leader better).

    Returns:
        ``{"n", "mean", "ci", "separated"}``: ``ci`` the bootstrap interval of the mean
        difference (``None`` below two seeds); ``separated`` when it lies above 0.
    """
    sign = 1.0 if higher_is_better else -1.0
    diffs = []
    for k, mine in leader.items():
        if mine is None or not math.isfinite(float(mine)):
            continue
        theirs = other.get(k)
        if theirs is None or not math.isfinite(float(theirs)):
            # The other diverged (or has no value) on a seed the leader finished: a loss.
            diffs.append(math.inf)
        else:
            diffs.append(sign * (float(mine) - float(theirs)))
    finite = [d for d in diffs if math.isfinite(d)]
    if len(diffs) >= 2 and len(finite) < len(diffs):
        ci = (
            [min(finite) if finite else math.inf, math.inf]
            if min(diffs) > 0
            else bootstrap_ci(finite)
        )
    else:
        ci = bootstrap_ci(diffs)
    return {
        "n": len(diffs),
        "mean": float(np.mean(diffs)) if diffs else None,
        "ci": ci,
        "separated": ci is not None and ci[0] > 0.0,
    }
