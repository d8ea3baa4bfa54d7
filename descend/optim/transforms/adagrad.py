"""AdaGrad: per-coordinate step sizes from the sum of squared gradients."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend.optim._constraints import NON_NEGATIVE
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
def scale_by_adagrad() -> Transform:
    r"""Divide by the root of the accumulated squared gradients (Duchi et al., 2011).

    .. math::
        s_t &= s_{t-1} + g_t^2 \qquad (s_0 = \text{initial\_accumulator\_value})\\
        u_t &= \frac{g_t}{\left(1 + (t-1)\,\delta\right)\left(\sqrt{s_t} + \epsilon\right)}

    Symbols: :math:`\delta` is ``lr_decay``, :math:`\epsilon` is ``eps`` (outside the
    root, as torch; optax puts it inside); state ``sum`` (:math:`s`) and the shared ``step``
    (:math:`t`). Coordinates with large past gradients take small steps; the sum only grows,
    so the effective learning rate decays (the reason RMSprop replaced it with an average).
    """

    def init(params: list[Tensor], hp: Hyper) -> State:
        v = hp["initial_accumulator_value"]
        return {"sum": [torch.full_like(p, v, memory_format=torch.preserve_format) for p in params]}

    def quotient(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> Quotient:
        sums = state["sum"]
        torch._foreach_addcmul_(sums, grads, grads, value=1)
        denom = owned(torch._foreach_sqrt(sums))
        torch._foreach_add_(denom, hp["eps"])
        decay = hp["lr_decay"]
        return grads, denom, None if decay == 0 else [1 + (s - 1) * decay for s in hp["step"]]

    dense = from_quotient(quotient)

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        if any(g.is_sparse for g in grads):
            return [
                _sparse_update(g, s, hp["eps"], hp["lr_decay"], step)
                for g, s, step in zip(grads, state["sum"], hp["step"], strict=True)
            ]
        return dense(grads, state, params, hp)

    return Transform(
        init,
        update,
        {"lr_decay": 0.0, "initial_accumulator_value": 0.0, "eps": 1e-10},
        {"lr_decay": NON_NEGATIVE, "initial_accumulator_value": NON_NEGATIVE, "eps": NON_NEGATIVE},
        True,
        "scale_by_adagrad",
        elementwise=True,
        quotient=quotient,
    )


def _sparse_update(grad: Tensor, total: Tensor, eps: float, decay: float, step: Any) -> Tensor:
    """The same rule for one gradient that may be sparse (``nn.Embedding(sparse=True)``):
    only the rows it holds change their sum, and the update holds only those rows."""
    if not grad.is_sparse:
        total.addcmul_(grad, grad, value=1)
        return grad / (total.sqrt() + eps) / (1 + (step - 1) * decay)
    grad = grad.coalesce()  # duplicate indices must add before they are squared

    def like_grad(values: Tensor) -> Tensor:
        # The indices of a coalesced tensor: valid and sorted, nothing to check.
        return torch.sparse_coo_tensor(
            grad.indices(), values, grad.shape, check_invariants=False, is_coalesced=True
        )

    values = grad.values()
    total.add_(like_grad(values * values))
    std = total.sparse_mask(grad).coalesce().values().sqrt_().add_(eps)
    return like_grad(values / std / (1 + (step - 1) * decay))
