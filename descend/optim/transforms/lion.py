"""Lion: the sign of an interpolation between the momentum and the gradient."""

from __future__ import annotations

import torch
from torch import Tensor

from descend.optim._constraints import BETAS
from descend.optim.apply import from_quotient
from descend.optim.transform import Hyper, Quotient, State, Transform, picklable


@picklable
def scale_by_lion() -> Transform:
    r"""Take the sign of an interpolation between the momentum and the gradient, then move
    the momentum (Chen et al., 2023, Algorithm 2).

    .. math::
        c_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t \\
        u_t &= \operatorname{sign}(c_t) \\
        m_t &= \beta_2 m_{t-1} + (1 - \beta_2)\, g_t

    Symbols: :math:`(\beta_1, \beta_2)` is ``betas`` (default ``(0.9, 0.99)``, the
    paper's). State ``exp_avg`` (:math:`m`), as in ``lion-pytorch``. Every coordinate of
    the update is :math:`\pm 1` (or 0 where :math:`c_t = 0`), so its norm is the square
    root of the parameter count whatever the gradients' scale: the learning rate alone sets
    the step, which is why Lion's is 3-10x smaller than AdamW's.

    .. note:: :math:`c_t` uses :math:`\beta_1` and the stored momentum uses :math:`\beta_2`:
       the update looks at the current gradient more than the momentum remembers it.
    """

    def init(params: list[Tensor], hp: Hyper) -> State:
        return {
            "exp_avg": [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]
        }

    def direction(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> Quotient:
        beta1, beta2 = hp["betas"]
        m = state["exp_avg"]
        c = torch._foreach_lerp(m, grads, 1 - beta1)
        torch._foreach_sign_(c)
        torch._foreach_lerp_(m, grads, 1 - beta2)
        # No denominator: the fold then decays theta in place and adds -lr * c in one pass.
        return c, None, None

    return Transform(
        init,
        from_quotient(direction),
        {"betas": (0.9, 0.99)},
        {"betas": BETAS},
        False,
        "scale_by_lion",
        elementwise=True,
        quotient=direction,
    )
