"""Scaling by the learning rate, sign, and maximization."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from descend.optim._constraints import FLAG, LEARNING_RATE
from descend.optim.apply import updated
from descend.optim.transform import (
    Folded,
    Hyper,
    State,
    Sum,
    Transform,
    picklable,
    stateless,
    unchanged,
)


@picklable
def scale_by_lr() -> Transform:
    r"""Multiply the updates by minus the learning rate: the step of gradient descent.

    .. math::
        u \leftarrow -\eta\, u

    Hyperparameters: ``lr`` (:math:`\eta`, default ``1e-3``; a float or, in a param
    group, a schedule the optimizer evaluates each step).

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([3.0], requires_grad=True)
        >>> opt = descend.Optimizer([x], descend.optim.scale_by_lr(), lr=0.25)
        >>> (x ** 2).sum().backward(); opt.step(); x.item()  # 3 - 0.25 * 6
        1.5
    """

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        lr = hp["lr"]
        # A 0-d tensor lr (a compiled step's, or a differentiable one's) stays a tensor, so
        # a changing lr is a graph input instead of a constant to recompile for.
        return torch._foreach_mul(grads, -lr if isinstance(lr, Tensor) else -float(lr))

    scale = stateless(
        update,
        name="scale_by_lr",
        defaults={"lr": 1e-3},
        constraints={"lr": LEARNING_RATE},
        elementwise=True,
    )
    return dataclasses.replace(scale, split=(unchanged, "lr"), land=(_descend, "lr"))


def _descend(direction: Folded, state: State, params: list[Tensor], hp: Hyper) -> None:
    r"""``scale_by_lr`` landing a direction :math:`n/(d\,c) + \lambda\theta` (see
    :attr:`Transform.land`) as torch's for-loop lands Adam's: :math:`\theta \leftarrow
    \theta(1 - \eta\lambda)` with ``mul_``, then :math:`-\eta\, n/(d\,c)` with
    ``addcdiv_`` (or ``add_`` with ``alpha``): two passes where the quotient, the decay and
    the scaling made separately take four."""
    num, den, divisors, decay = direction
    h = hp["lr"]
    if isinstance(decay, Tensor) or decay != 0:
        # theta (1 - h lambda) first: the decay is of the parameters before the step.
        torch._foreach_mul_(params, 1 - h * decay)
    if den is None or divisors is not None and any(isinstance(c, Tensor) for c in divisors):
        # A plain direction (Lion's sign), or capturable step counts: the update, whole.
        torch._foreach_add_(params, updated((num, den, divisors, 0), params), alpha=-h)
        return
    terms = [(num.a, None), (num.b, num.weights)] if isinstance(num, Sum) else [(num, None)]
    for n, weights in terms:  # one addcdiv_ per term of the numerator (Sum)
        if weights is None and divisors is None:
            torch._foreach_addcdiv_(params, n, den, value=-h)
        else:
            w = weights or [1] * len(params)
            c = divisors or [1] * len(params)
            torch._foreach_addcdiv_(params, n, den, [-h * a / b for a, b in zip(w, c, strict=True)])


@picklable
def maximize() -> Transform:
    r"""Negate the gradients when ``maximize`` is set, so that descent climbs the objective.

    .. math::
        g \leftarrow -g \quad \text{if maximize}
    """

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        return torch._foreach_neg(grads) if hp["maximize"] else grads

    return stateless(
        update,
        name="maximize",
        defaults={"maximize": False},
        constraints={"maximize": FLAG},
        elementwise=True,
    )


@picklable
def sign() -> Transform:
    r"""Keep only the sign of each coordinate (signSGD; with momentum before it, Signum).

    .. math::
        u \leftarrow \operatorname{sign}(u)
    """

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        return [torch.sign(g) for g in grads]

    return stateless(update, name="sign", elementwise=True)
