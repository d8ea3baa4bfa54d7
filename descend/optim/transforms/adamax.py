"""Adamax: Adam with the infinity norm in place of the second moment."""

from __future__ import annotations

import torch
from torch import Tensor

from descend.optim._constraints import BETAS, NON_NEGATIVE
from descend.optim.apply import from_quotient
from descend.optim.transform import Hyper, Quotient, State, Transform, picklable


@picklable
def scale_by_adamax() -> Transform:
    r"""Scale by a bias-corrected first moment over an exponentially weighted infinity norm
    (Kingma & Ba, 2015, section 7.1).

    .. math::
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t \\
        u_t &= \max(\beta_2 u_{t-1},\ |g_t| + \epsilon) \\
        \text{update} &= \frac{m_t}{(1 - \beta_1^t)\, u_t}

    Symbols: :math:`(\beta_1, \beta_2)` is ``betas``, :math:`\epsilon` is ``eps``. State
    ``exp_avg`` (:math:`m`), ``exp_inf`` (:math:`u`) and the shared ``step`` (:math:`t`), as
    in ``torch.optim.Adamax``.

    .. warning:: :math:`\epsilon` is added to :math:`|g_t|` inside the maximum, as torch
       does (so :math:`u_t \ge \epsilon` and the division is safe); the paper has no
       :math:`\epsilon`, and optax adds it to :math:`u_t` in the denominator instead.
    """

    def init(params: list[Tensor], hp: Hyper) -> State:
        def zeros() -> list[Tensor]:
            return [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]

        return {"exp_avg": zeros(), "exp_inf": zeros()}

    def quotient(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> Quotient:
        beta1, beta2 = hp["betas"]
        m, u = state["exp_avg"], state["exp_inf"]
        torch._foreach_lerp_(m, grads, 1 - beta1)
        torch._foreach_mul_(u, beta2)
        norm = torch._foreach_abs(grads)
        torch._foreach_add_(norm, hp["eps"])
        torch._foreach_maximum_(u, norm)
        denom = torch._foreach_mul(u, [1 - beta1**s for s in hp["step"]])
        return m, denom, None

    return Transform(
        init,
        from_quotient(quotient),
        {"betas": (0.9, 0.999), "eps": 1e-8},
        {"betas": BETAS, "eps": NON_NEGATIVE},
        True,
        "scale_by_adamax",
        elementwise=True,
        quotient=quotient,
    )
