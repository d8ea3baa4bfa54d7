"""Scaling by the learning rate, sign, and maximization."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from descend.optim._constraints import FLAG, LEARNING_RATE
from descend.optim.apply import add_folded
from descend.optim.transform import (
    Folded,
    Hyper,
    State,
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
    r"""``scale_by_lr`` landing a direction (:attr:`Transform.land`) as torch's for-loop
    lands Adam's: :math:`\theta \leftarrow \theta(1 - \eta\lambda)` with ``mul_``, then
    :math:`-\eta\, n/(d\,c)` with ``addcdiv_`` (or ``add_`` with ``alpha``): two passes
    where the quotient, the decay and the scaling made separately take four."""
    add_folded(params, direction, -hp["lr"])


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
