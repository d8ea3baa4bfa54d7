"""Is a point where descent stopped a minimum? The second-order test by Lanczos.

At a stationary point, a Hessian eigenvalue clearly below zero means a saddle (or a
maximum); all eigenvalues near zero means a flat region where the test cannot
confirm a minimum. "Clearly" and "near" are relative to the largest curvature:

.. math::
    \\lambda_{\\min} < -\\tau \\max(1, |\\lambda_{\\max}|) \\;\\Rightarrow\\; \\text{saddle},
    \\qquad
    \\max |\\lambda| \\le \\tau \\;\\Rightarrow\\; \\text{flat}.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from descend.curvature import hvp_operator, lanczos


@dataclass(frozen=True)
class Verdict:
    """The second-order verdict: ``"minimum"``, ``"saddle"`` or ``"flat"``, with the eigenvalues."""

    kind: str
    smallest: float
    largest: float


def classify(
    fun: Callable[[Tensor], Tensor] | None,
    x: Tensor,
    *,
    grad_fun: Callable[[Tensor], Tensor] | None = None,
    tol: float | None = None,
    iters: int = 30,
) -> Verdict:
    """Classify ``x`` by the extreme Hessian eigenvalues of ``fun`` (or of ``grad_fun``'s Jacobian).

    Args:
        fun: scalar function; its Hessian-vector products come from double backward.
        x: the point.
        grad_fun: used instead of ``fun`` when only the gradient is available
            (``jac=True``): products by central differences of the gradient.
        tol: :math:`\\tau`; default :math:`\\sqrt{\\epsilon}` of the dtype.
        iters: Lanczos steps.

    Returns:
        The :class:`Verdict`.
    """
    tau = float(torch.finfo(x.dtype).eps) ** 0.5 if tol is None else tol
    shape = x.shape
    if grad_fun is not None:
        matvec = _finite_difference_hvp(grad_fun, x)
    elif fun is not None:
        matvec = hvp_operator(fun, x)
    else:
        raise ValueError("classify needs fun or grad_fun.")

    def flat(v: Tensor) -> Tensor:
        return matvec(v.reshape(shape)).reshape(-1)

    values = lanczos(flat, x.numel(), iters=iters, dtype=x.dtype, device=x.device)
    lo, hi = float(values[0]), float(values[-1])
    if lo < -tau * max(1.0, abs(hi)):
        kind = "saddle"
    elif max(abs(lo), abs(hi)) <= tau:
        kind = "flat"
    else:
        kind = "minimum"
    return Verdict(kind, lo, hi)


def _finite_difference_hvp(
    grad_fun: Callable[[Tensor], Tensor], x: Tensor
) -> Callable[[Tensor], Tensor]:
    # Central differences: error O(h^2); h ~ eps^(1/3) balances truncation and rounding.
    h = float(torch.finfo(x.dtype).eps) ** (1 / 3) * max(1.0, float(x.abs().max()))

    def matvec(v: Tensor) -> Tensor:
        return (grad_fun(x + h * v) - grad_fun(x - h * v)) / (2 * h)

    return matvec
