"""Adam's moment estimates (and AMSGrad)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend.optim._constraints import BETAS, FLAG, NON_NEGATIVE
from descend.optim.apply import from_quotient
from descend.optim.transform import (
    Hyper,
    Quotient,
    State,
    Transform,
    owned,
    picklable,
    scalars_like,
)

# Per-tensor factors of Adam's denominator, computed once per step (Transform.scalars).
_SCALE, _EPS = "adam_denominator_scale", "adam_denominator_eps"


@picklable
def scale_by_adam() -> Transform:
    r"""Scale by bias-corrected first and second moment estimates (Kingma & Ba, 2015).

    .. math::
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \ \text{(amsgrad)}\quad\text{else}\quad v_t \\
        u_t &= \frac{m_t / (1 - \beta_1^t)}{\sqrt{\hat v_t / (1 - \beta_2^t)} + \epsilon}

    Symbols: :math:`(\beta_1, \beta_2)` is ``betas``, :math:`\epsilon` is ``eps``,
    ``amsgrad`` keeps the running maximum :math:`\hat v`. State ``exp_avg`` (:math:`m`),
    ``exp_avg_sq`` (:math:`v`), ``max_exp_avg_sq`` (:math:`\hat v`) and the shared ``step``
    (:math:`t`), as in ``torch.optim.Adam``.

    .. warning:: :math:`\epsilon` is added after the square root and after bias correction,
       as in torch and optax's ``adam`` (``eps_root=0``); the paper's Algorithm 1 is the same,
       but its "efficient" variant folds the corrections into the step size, which moves
       :math:`\epsilon`.

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = descend.Adam([x], lr=0.1)
        >>> for _ in range(300):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> bool(x.abs().max() < 1e-2)
        True
    """

    def init(params: list[Tensor], hp: Hyper) -> State:
        def zeros() -> list[Tensor]:
            return [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]

        state: State = {"exp_avg": zeros(), "exp_avg_sq": zeros()}
        if hp["amsgrad"]:
            state["max_exp_avg_sq"] = zeros()
        return state

    def quotient(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> Quotient:
        beta1, beta2 = hp["betas"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        torch._foreach_lerp_(m, grads, 1 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - beta2)
        if hp["amsgrad"]:
            torch._foreach_maximum_(state["max_exp_avg_sq"], v)
            v = state["max_exp_avg_sq"]
        given = hp if _SCALE in hp else corrections(hp)
        denom = owned(torch._foreach_sqrt(v))
        torch._foreach_mul_(denom, scalars_like(given[_SCALE], denom))
        torch._foreach_add_(denom, scalars_like(given[_EPS], denom))
        return m, denom, None

    def corrections(hp: Hyper) -> dict[str, list[Any]]:
        # u = m / (c1 (sqrt(v) / c2 + eps)) with c1 = 1 - beta1^t, c2 = sqrt(1 - beta2^t):
        # both corrections go into the denominator, one pass over it each way.
        beta1, beta2 = hp["betas"]
        c1 = [1 - beta1**s for s in hp["step"]]
        return {
            _SCALE: [a / (1 - beta2**s) ** 0.5 for a, s in zip(c1, hp["step"], strict=True)],
            _EPS: [a * hp["eps"] for a in c1],
        }

    return Transform(
        init,
        from_quotient(quotient),
        {"betas": (0.9, 0.999), "eps": 1e-8, "amsgrad": False},
        {"betas": BETAS, "eps": NON_NEGATIVE, "amsgrad": FLAG},
        True,
        "scale_by_adam",
        elementwise=True,
        scalars=corrections,
        quotient=quotient,
    )
