"""RMSprop's scaling: divide by a running root-mean-square of the gradients."""

from __future__ import annotations

import torch
from torch import Tensor

from descend.optim._constraints import FLAG, NON_NEGATIVE, UNIT_OPEN
from descend.optim.apply import from_quotient
from descend.optim.transform import (
    Hyper,
    Quotient,
    State,
    Transform,
    owned,
    picklable,
)


@picklable
def scale_by_rms() -> Transform:
    r"""Divide by an exponential moving RMS of the gradients (Hinton, 2012), optionally centered.

    .. math::
        v_t &= \alpha\, v_{t-1} + (1 - \alpha)\, g_t^2 \\
        m_t &= \alpha\, m_{t-1} + (1 - \alpha)\, g_t \qquad \text{(centered only)}\\
        u_t &= \frac{g_t}{\sqrt{v_t - m_t^2} + \epsilon}
        \quad\text{or}\quad \frac{g_t}{\sqrt{v_t} + \epsilon}

    Symbols: :math:`\alpha` is ``alpha``, :math:`\epsilon` is ``eps`` (outside the root, as
    torch; Keras and optax put it inside), ``centered`` subtracts the squared mean so the
    denominator estimates the variance (clamped at 0 before the root: rounding can make
    :math:`v_t - m_t^2` slightly negative, where torch returns NaN). State ``square_avg`` (:math:`v`) and ``grad_avg``
    (:math:`m`). RMSprop's momentum is :func:`trace` applied *after* this transform.
    """

    def init(params: list[Tensor], hp: Hyper) -> State:
        zeros = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]
        state: State = {"square_avg": zeros}
        if hp["centered"]:
            state["grad_avg"] = [
                torch.zeros_like(p, memory_format=torch.preserve_format) for p in params
            ]
        return state

    def quotient(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> Quotient:
        alpha = hp["alpha"]
        sq = state["square_avg"]
        torch._foreach_mul_(sq, alpha)
        torch._foreach_addcmul_(sq, grads, grads, value=1 - alpha)
        if hp["centered"]:
            ga = state["grad_avg"]
            torch._foreach_lerp_(ga, grads, 1 - alpha)
            avg = torch._foreach_addcmul(sq, ga, ga, value=-1)
            # v − m² ≥ 0 in exact arithmetic; rounding can leave it a hair below zero (always
            # with alpha=0), where torch's sqrt gives NaN. Clamping changes nothing else.
            torch._foreach_clamp_min_(avg, 0.0)
            if torch.is_grad_enabled():  # a differentiable step: sqrt's backward reads its output
                avg = owned(torch._foreach_sqrt(avg))
            else:
                torch._foreach_sqrt_(avg)
        else:
            avg = owned(torch._foreach_sqrt(sq))
        torch._foreach_add_(avg, hp["eps"])
        return grads, avg, None

    return Transform(
        init,
        from_quotient(quotient),
        {"alpha": 0.99, "eps": 1e-8, "centered": False},
        {"alpha": UNIT_OPEN, "eps": NON_NEGATIVE, "centered": FLAG},
        True,
        "scale_by_rms",
        elementwise=True,
        quotient=quotient,
    )
