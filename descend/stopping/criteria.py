"""The stopping criteria: iteration cap, tolerances on f, the gradient and the step, time, divergence.

Tolerances mean "converged" (``success=True``); the iteration cap and the time budget
mean "gave up" (``success=False``), as in scipy; divergence is a failure whose message
tells the user what to change.
"""

from __future__ import annotations

import math
from collections import deque

from descend._validation import Interval, validate
from descend.stopping.base import Criterion, Progress, Stop

_POSITIVE = Interval(0, None, closed="neither")
_NONNEGATIVE = Interval(0, None, closed="left")


class MaxIter(Criterion):
    """Stop after ``n`` updates: :math:`t \\ge n`. Not a convergence (``success=False``).

    Example:
        >>> MaxIter(2).check(Progress(step=2, value=0.0)).success
        False
    """

    name = "max_iter"

    def __init__(self, n: int) -> None:
        validate("MaxIter", {"n": n}, {"n": Interval(0, None, closed="left", integer=True)})
        self.n = int(n)

    def check(self, p: Progress) -> Stop | None:
        if p.step < self.n:
            return None
        return Stop(
            self.name,
            f"Stopped by max_iter: reached the maximum of {self.n} iterations before any "
            "tolerance was met.",
            success=False,
        )


class FunctionTolerance(Criterion):
    """Stop when the value stops changing over a window of updates.

    With :math:`f_t` the value after update :math:`t` and :math:`w` the window,

    .. math::
        |f_{t-w} - f_t| \\le \\mathrm{atol} + \\mathrm{rtol} \\cdot \\max(|f_{t-w}|, |f_t|).

    A window longer than one step ignores single lucky steps of noisy or oscillating
    descents. Non-finite values never count as converged.

    Args:
        atol: absolute tolerance on the change.
        rtol: relative tolerance on the change.
        window: number of updates the change is measured over.

    Example:
        >>> c = FunctionTolerance(atol=1e-3, window=1)
        >>> c.check(Progress(step=1, value=1.0)) is None
        True
        >>> c.check(Progress(step=2, value=1.0005)).criterion
        'ftol'
    """

    name = "ftol"

    def __init__(self, atol: float = 0.0, rtol: float = 1e-9, *, window: int = 1) -> None:
        validate(
            "FunctionTolerance",
            {"atol": atol, "rtol": rtol, "window": window},
            {"atol": _NONNEGATIVE, "rtol": _NONNEGATIVE, "window": Interval(1, None, integer=True)},
        )
        self.atol, self.rtol, self.window = float(atol), float(rtol), int(window)
        self._values: deque[float] = deque(maxlen=self.window + 1)

    def reset(self) -> None:
        self._values.clear()

    def state_dict(self) -> dict:
        return {"values": list(self._values)}

    def load_state_dict(self, state: dict) -> None:
        self._values.clear()
        self._values.extend(float(v) for v in state["values"])

    def check(self, p: Progress) -> Stop | None:
        v = float(p.value)
        if not math.isfinite(v):
            self._values.clear()
            return None
        self._values.append(v)
        if len(self._values) <= self.window:
            return None
        old = self._values[0]
        change = abs(old - v)
        if change > self.atol + self.rtol * max(abs(old), abs(v)):
            return None
        return Stop(
            self.name,
            f"Converged by ftol: the value changed by {change:.3g} over the last {self.window} "
            f"iteration(s), within atol={self.atol:g} + rtol={self.rtol:g}·|f|.",
            success=True,
        )


class GradientTolerance(Criterion):
    """Stop when the gradient is small: :math:`\\lVert \\nabla f(x_t) \\rVert \\le \\mathrm{gtol}`.

    Example:
        >>> GradientTolerance(1e-3).check(Progress(step=5, value=0.1, grad_norm=1e-4)).success
        True
    """

    name = "gtol"

    def __init__(self, gtol: float) -> None:
        validate("GradientTolerance", {"gtol": gtol}, {"gtol": _NONNEGATIVE})
        self.gtol = float(gtol)

    def check(self, p: Progress) -> Stop | None:
        if p.grad_norm is None or not p.grad_norm <= self.gtol:
            return None
        return Stop(
            self.name,
            f"Converged by gtol: gradient norm {p.grad_norm:.3g} <= gtol={self.gtol:g}.",
            success=True,
        )


class StepTolerance(Criterion):
    """Stop when an update barely moves: :math:`\\lVert x_t - x_{t-1} \\rVert \\le \\mathrm{xtol}`.

    Example:
        >>> StepTolerance(1e-8).check(Progress(step=5, value=0.1, step_norm=0.0)).criterion
        'xtol'
    """

    name = "xtol"

    def __init__(self, xtol: float) -> None:
        validate("StepTolerance", {"xtol": xtol}, {"xtol": _NONNEGATIVE})
        self.xtol = float(xtol)

    def check(self, p: Progress) -> Stop | None:
        if p.step_norm is None or not p.step_norm <= self.xtol:
            return None
        return Stop(
            self.name,
            f"Converged by xtol: the last step had norm {p.step_norm:.3g} <= xtol={self.xtol:g}.",
            success=True,
        )


class TimeBudget(Criterion):
    """Stop once the wall-clock budget is spent: :math:`\\mathrm{elapsed} \\ge \\mathrm{seconds}`.

    Example:
        >>> TimeBudget(1.0).check(Progress(step=9, value=0.1, elapsed=1.5)).success
        False
    """

    name = "time_budget"

    def __init__(self, seconds: float) -> None:
        validate("TimeBudget", {"seconds": seconds}, {"seconds": _NONNEGATIVE})
        self.seconds = float(seconds)

    def check(self, p: Progress) -> Stop | None:
        if p.elapsed < self.seconds:
            return None
        return Stop(
            self.name,
            f"Stopped by time_budget: {p.elapsed:.3g} s elapsed, budget {self.seconds:g} s.",
            success=False,
        )


class Divergence(Criterion):
    """Fail when the value (or gradient) is non-finite or explodes past the first finite value.

    With :math:`f_0` the first finite value seen, the run diverged when

    .. math::
        f_t \\notin \\mathbb{R} \\;\\lor\\; \\lVert \\nabla f_t \\rVert \\notin \\mathbb{R}
        \\;\\lor\\; f_t > f_0 + \\mathrm{factor} \\cdot (|f_0| + 1).

    The ``+ 1`` keeps the guard meaningful when :math:`f_0 = 0`. Only growth counts:
    a value falling without bound is the function's business, unless it reaches -inf.

    Args:
        factor: how many times :math:`|f_0| + 1` the value may rise above :math:`f_0`.

    Example:
        >>> d = Divergence(factor=10.0)
        >>> d.check(Progress(step=1, value=1.0)) is None
        True
        >>> "learning rate is likely too large" in d.check(Progress(step=2, value=50.0)).message
        True
    """

    name = "divergence"

    def __init__(self, factor: float = 1e6) -> None:
        validate("Divergence", {"factor": factor}, {"factor": _POSITIVE})
        self.factor = float(factor)
        self._reference: float | None = None

    def reset(self) -> None:
        self._reference = None

    def state_dict(self) -> dict:
        return {"reference": self._reference}

    def load_state_dict(self, state: dict) -> None:
        self._reference = state["reference"]

    def check(self, p: Progress) -> Stop | None:
        v = float(p.value)
        g = p.grad_norm
        if not math.isfinite(v) or (g is not None and not math.isfinite(g)):
            what = f"value {v}" if not math.isfinite(v) else f"gradient norm {g}"
            hint = " (the function may be unbounded below)" if v == -math.inf else ""
            return self._stop(
                f"Diverged at iteration {p.step}: the {what} is not finite{hint}; "
                "the learning rate is likely too large."
            )
        if self._reference is None:
            self._reference = v
            return None
        ref = self._reference
        if v > ref + self.factor * (abs(ref) + 1.0):
            return self._stop(
                f"Diverged at iteration {p.step}: the value {v:.3g} exploded from {ref:.3g} "
                f"(more than factor={self.factor:g} × (|f0| + 1) above it); "
                "the learning rate is likely too large."
            )
        return None

    def _stop(self, message: str) -> Stop:
        return Stop(self.name, message, success=False)
