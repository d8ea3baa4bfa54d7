"""Adadelta: step sizes from the ratio of two running RMS, of updates and of gradients."""

from __future__ import annotations

import torch
from torch import Tensor

from descend._validation import Interval
from descend.optim._constraints import NON_NEGATIVE
from descend.optim.transform import Hyper, State, Transform, owned, picklable


@picklable
def scale_by_adadelta() -> Transform:
    r"""Scale each coordinate by RMS[update] / RMS[gradient] (Zeiler, 2012), so that the
    update has the units of the parameter and no global learning rate is needed.

    .. math::
        v_t &= \rho\, v_{t-1} + (1 - \rho)\, g_t^2 \\
        u_t &= \frac{\sqrt{a_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g_t \\
        a_t &= \rho\, a_{t-1} + (1 - \rho)\, u_t^2

    Symbols: :math:`\rho` is ``rho``, :math:`\epsilon` is ``eps`` (inside both roots, as in
    the paper and torch). State ``square_avg`` (:math:`v`), ``acc_delta`` (:math:`a`) and
    the shared ``step``, as in ``torch.optim.Adadelta``. The paper's update is
    :math:`-u_t`; torch (and descend's ``Adadelta``) multiply it by ``lr`` (default 1).
    """

    def init(params: list[Tensor], hp: Hyper) -> State:
        def zeros() -> list[Tensor]:
            return [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]

        return {"square_avg": zeros(), "acc_delta": zeros()}

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        rho, eps = hp["rho"], hp["eps"]
        v, a = state["square_avg"], state["acc_delta"]
        torch._foreach_mul_(v, rho)
        torch._foreach_addcmul_(v, grads, grads, value=1 - rho)
        std = _plus(v, eps)
        torch._foreach_sqrt_(std)
        delta = _plus(a, eps)
        torch._foreach_sqrt_(delta)
        delta = owned(delta)  # a differentiable step: sqrt_'s backward reads its output
        torch._foreach_div_(delta, std)
        torch._foreach_mul_(delta, grads)
        torch._foreach_mul_(a, rho)
        torch._foreach_addcmul_(a, delta, delta, value=1 - rho)
        return delta

    return Transform(
        init,
        update,
        {"rho": 0.9, "eps": 1e-6},
        {"rho": Interval(0.0, 1.0), "eps": NON_NEGATIVE},
        True,
        "scale_by_adadelta",
    )


def _plus(tensors: list[Tensor], eps: float) -> list[Tensor]:
    """``t + eps`` for each tensor, as new tensors. In a differentiable step, a tensor's
    own ``add``: foreach's keeps its input for the backward pass, and ``acc_delta`` is
    changed in place after this."""
    if torch.is_grad_enabled():
        return [t + eps for t in tensors]
    return torch._foreach_add(tensors, eps)
