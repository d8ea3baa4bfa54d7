"""Weight decay: coupled (an L2 term added to the gradient) and decoupled (AdamW)."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

from descend.optim._constraints import NON_NEGATIVE, tensor_or
from descend.optim.transform import Hyper, State, Transform, picklable, stateless


@picklable
def add_weight_decay() -> Transform:
    r"""Coupled weight decay: add the gradient of :math:`\tfrac{\lambda}{2}\lVert\theta\rVert^2`.

    .. math::
        g \leftarrow g + \lambda\,\theta

    Placed before an adaptive transform (Adam, RMSprop, AdaGrad), the decay is rescaled
    with the gradient; that is torch's ``weight_decay`` for SGD/Adam/Adagrad/RMSprop.
    Hyperparameter: ``weight_decay`` (:math:`\lambda`, default 0).
    """

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        return _plus_decay(grads, params, hp["weight_decay"])

    coupled = stateless(
        update,
        name="add_weight_decay",
        elementwise=True,
        defaults={"weight_decay": 0.0},
        constraints={"weight_decay": tensor_or(NON_NEGATIVE)},
    )
    return dataclasses.replace(coupled, passthrough=_no_decay)


@picklable
def add_decayed_weights() -> Transform:
    r"""Decoupled weight decay (Loshchilov & Hutter, AdamW): add :math:`\lambda\theta` to the
    *update*, after the adaptive scaling, so the decay is not divided by :math:`\sqrt{v}`.

    .. math::
        u \leftarrow u + \lambda\,\theta

    Followed by :func:`scale_by_lr` this shrinks parameters by :math:`\eta\lambda\theta` per
    step, which is torch's ``AdamW`` (``param.mul_(1 - lr * weight_decay)``).
    Hyperparameter: ``weight_decay`` (:math:`\lambda`, default 0.01).

    .. warning:: Libraries differ: optax's ``add_decayed_weights`` is the same; Keras'
       ``weight_decay`` on Adam is decoupled too, but torch's ``Adam(weight_decay=...)`` is
       coupled (see :func:`add_weight_decay`).
    """

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        return _plus_decay(grads, params, hp["weight_decay"])

    decoupled = stateless(
        update,
        name="add_decayed_weights",
        elementwise=True,
        defaults={"weight_decay": 1e-2},
        constraints={"weight_decay": tensor_or(NON_NEGATIVE)},
    )
    return dataclasses.replace(decoupled, passthrough=_no_decay, decay=_decay_rate)


def _no_decay(hp: Hyper) -> bool:
    wd = hp["weight_decay"]
    return not isinstance(wd, Tensor) and wd == 0


def _decay_rate(hp: Hyper) -> Any:
    return hp["weight_decay"]


def _plus_decay(grads: list[Tensor], params: list[Tensor], wd: float | Tensor) -> list[Tensor]:
    """``g + wd * theta`` for each pair (both transforms' rule; they differ in where they
    stand in a chain)."""
    if isinstance(wd, float | int) and wd == 0:
        return grads
    if torch.is_grad_enabled() or isinstance(wd, Tensor):
        # A differentiable step: foreach's products save their inputs for backward (the
        # parameters, which the step then changes in place); a tensor's own do not. (And
        # ``alpha`` must be a number, so a tensor decay takes this form too.)
        return [g + p * wd for g, p in zip(grads, params, strict=True)]
    return torch._foreach_add(grads, params, alpha=wd)
