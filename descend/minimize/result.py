"""What ``minimize`` returns: scipy's ``OptimizeResult`` fields plus the trajectory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

# Status codes. 0 is the only success.
CONVERGED = 0
MAX_ITER = 1
DIVERGED = 2
SADDLE = 3
FLAT = 4
TIME_BUDGET = 5
OTHER = 6


@dataclass(frozen=True)
class Trajectory:
    """Per-iteration record; row 0 is the start point, row ``t`` is after update ``t``.

    Attributes:
        x: points visited, shape ``(nit + 1, n)`` (flattened), or ``None`` when not kept.
        f: values, shape ``(nit + 1,)``, float64.
        grad_norm: gradient norms, shape ``(nit + 1,)``, float64.
    """

    x: Tensor | None
    f: Tensor
    grad_norm: Tensor


@dataclass(frozen=True)
class MinimizeResult:
    """The outcome of :func:`descend.minimize`, with the fields of scipy's ``OptimizeResult``.

    Attributes:
        x: the final point (detached, dtype and shape of ``x0``, always finite).
        fun: :math:`f(x)`.
        jac: :math:`\\nabla f(x)`.
        nit: accepted updates.
        nfev: evaluations of ``fun`` (each one also gives the gradient).
        success: ``True`` only when a tolerance was met at a point that is not a saddle.
        status: 0 converged, 1 max_iter, 2 diverged, 3 saddle, 4 flat region,
            5 time budget, 6 stopped by a user criterion or the callback.
        message: one sentence naming the criterion that fired and the numbers.
        criterion: the name of that criterion (``"gtol"``, ``"divergence"``, ...).
        trajectory: x, f and gradient norm per iteration.
        curvature: ``(smallest, largest)`` Hessian eigenvalue at ``x`` when the
            second-order check ran, else ``None``.
    """

    x: Tensor
    fun: float
    jac: Tensor
    nit: int
    nfev: int
    success: bool
    status: int
    message: str
    criterion: str
    trajectory: Trajectory
    curvature: tuple[float, float] | None = None

    def __getitem__(self, key: str) -> Any:
        # scipy's OptimizeResult is also a dict: result["x"] keeps working.
        return getattr(self, key)

    def __repr__(self) -> str:
        x = self.x.reshape(-1)
        shown = ", ".join(f"{float(v):.6g}" for v in x[:6]) + (", ..." if x.numel() > 6 else "")
        return (
            f"MinimizeResult(success={self.success}, status={self.status}, "
            f"message={self.message!r}, fun={self.fun:.6g}, x=[{shown}], "
            f"nit={self.nit}, nfev={self.nfev})"
        )
