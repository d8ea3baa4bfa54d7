"""Rprop: per-coordinate step sizes adapted from the sign agreement of successive gradients."""

from __future__ import annotations

import torch
from torch import Tensor

from descend._validation import Satisfies
from descend.optim._constraints import LEARNING_RATE
from descend.optim.sharded import is_sharded
from descend.optim.transform import Hyper, State, Transform, picklable


def _is_eta_pair(value: object) -> bool:
    return (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(isinstance(e, int | float) for e in value)
        and 0.0 < value[0] < 1.0 < value[1]
    )


def _is_size_pair(value: object) -> bool:
    return (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(isinstance(s, int | float) for s in value)
        and 0.0 <= value[0] <= value[1]
    )


ETAS = Satisfies(_is_eta_pair, "a pair (eta_minus, eta_plus) with 0 < eta_minus < 1 < eta_plus")
STEP_SIZES = Satisfies(_is_size_pair, "a pair (min, max) with 0 <= min <= max")


@picklable
def scale_by_rprop() -> Transform:
    r"""Resilient backpropagation (Riedmiller & Braun, 1993), as ``torch.optim.Rprop``: only
    the sign of each gradient coordinate is used; its step size grows while the sign
    holds and shrinks when it flips.

    .. math::
        f_t &= \begin{cases} \eta_+ & g_t\, g'_{t-1} > 0 \\ \eta_- & g_t\, g'_{t-1} < 0 \\
               1 & \text{otherwise} \end{cases}, \qquad
        s_t = \operatorname{clip}(s_{t-1} f_t,\ s_{\min},\ s_{\max})\\
        g'_t &= \begin{cases} 0 & f_t = \eta_- \\ g_t & \text{otherwise}\end{cases}, \qquad
        u_t = -\operatorname{sign}(g'_t)\, s_t

    Symbols: :math:`(\eta_-, \eta_+)` is ``etas``, :math:`(s_{\min}, s_{\max})` is
    ``step_sizes``, :math:`s_0` is ``lr`` (read once, when the state is created, as
    torch). State ``prev`` (:math:`g'`), ``step_size`` (:math:`s`) and the shared ``step``.
    After a sign flip the coordinate waits a step (the iRprop⁻ variant). The update
    already has the parameter's units, so this transform ends a chain (no ``scale_by_lr``).

    .. warning:: Rprop is a full-batch method: with mini-batch noise the signs flip at
       random and the step sizes collapse to ``step_sizes[0]``.
    """

    def init(params: list[Tensor], hp: Hyper) -> State:
        lr = hp["lr"]
        lr = float(lr.item() if isinstance(lr, Tensor) else lr)
        return {
            "prev": [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params],
            "step_size": [
                torch.full_like(p, lr, memory_format=torch.preserve_format) for p in params
            ],
        }

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        eta_minus, eta_plus = hp["etas"]
        low, high = hp["step_sizes"]
        prev, sizes = state["prev"], state["step_size"]
        # A differentiable step reads a copy of prev: the product keeps it for backward, and
        # prev is overwritten below (foreach's own copy, owned(), would keep prev itself).
        last = [p.clone() for p in prev] if torch.is_grad_enabled() else prev
        factors = torch._foreach_sign(torch._foreach_mul(grads, last))
        # torch.where with the tensor as one branch keeps its dtype (float64 stays float64).
        factors = [torch.where(f > 0, eta_plus, f) for f in factors]
        factors = [torch.where(f < 0, eta_minus, f) for f in factors]
        factors = [torch.where(f == 0, 1.0, f) for f in factors]
        if torch.is_grad_enabled():
            # A differentiable step: the graph keeps the old sizes and each new one, so they
            # are replaced rather than changed in place.
            new = torch._foreach_clamp_max(
                torch._foreach_clamp_min(torch._foreach_mul(sizes, factors), low), high
            )
            sizes[:] = new
        else:
            torch._foreach_mul_(sizes, factors)
            torch._foreach_clamp_min_(sizes, low)
            torch._foreach_clamp_max_(sizes, high)
        kept = [torch.where(f == eta_minus, 0.0, g) for f, g in zip(factors, grads, strict=True)]
        # Out of place: in a differentiable step the product keeps its inputs for backward.
        updates = torch._foreach_mul(torch._foreach_sign(kept), sizes)
        torch._foreach_neg_(updates)
        if torch.is_grad_enabled() or (prev and is_sharded(prev[0])):
            # foreach's copy_ has no derivative, and no DTensor rule: plain assignment.
            prev[:] = kept
        else:
            torch._foreach_copy_(prev, kept)
        return updates

    return Transform(
        init,
        update,
        {"lr": 1e-2, "etas": (0.5, 1.2), "step_sizes": (1e-6, 50)},
        {"lr": LEARNING_RATE, "etas": ETAS, "step_sizes": STEP_SIZES},
        True,
        "scale_by_rprop",
    )
