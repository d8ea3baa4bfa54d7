"""Gradient clipping by global norm and by value."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from descend._validation import Interval
from descend.optim.transform import Hyper, State, Transform, picklable, stateless

POSITIVE_OR_INF = Interval(0.0, None, closed="neither")


@picklable
def clip_by_global_norm() -> Transform:
    r"""Rescale the gradients of a param group so their joint L2 norm is at most ``max_norm``.

    .. math::
        g \leftarrow g \cdot \min\!\left(1, \frac{c}{\lVert g\rVert_2 + 10^{-6}}\right)

    The same rule and epsilon as ``torch.nn.utils.clip_grad_norm_``; the norm is taken over
    the parameters of one param group (pass all parameters in one group to clip globally).
    Hyperparameter: ``max_norm`` (:math:`c`, default 1.0).
    """

    def coefficient(grads: list[Tensor], hp: Hyper) -> dict[str, Tensor]:
        norms = torch._foreach_norm(grads)
        total = torch.linalg.vector_norm(torch.stack([n.to(norms[0].dtype) for n in norms]))
        return {_COEF: torch.clamp(float(hp["max_norm"]) / (total + 1e-6), max=1.0)}

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        if not grads:
            return grads
        coef = hp[_COEF] if _COEF in hp else coefficient(grads, hp)[_COEF]
        return torch._foreach_mul(grads, coef.to(grads[0].dtype))

    clip = stateless(
        update,
        name="clip_by_global_norm",
        defaults={"max_norm": 1.0},
        constraints={"max_norm": POSITIVE_OR_INF},
    )
    return dataclasses.replace(clip, prepare=coefficient)


# The clipping factor of a step, computed over the whole group (Transform.prepare).
_COEF = "clip_by_global_norm_coef"


@picklable
def clip_by_value() -> Transform:
    r"""Clamp every gradient coordinate to :math:`[-c, c]`.

    .. math::
        g_i \leftarrow \max(-c, \min(c, g_i))

    Hyperparameter: ``clip_value`` (:math:`c`, default 1.0), as ``torch.nn.utils.clip_grad_value_``.
    """

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        c = float(hp["clip_value"])
        return [g.clamp(-c, c) for g in grads]

    return stateless(
        update,
        name="clip_by_value",
        elementwise=True,
        defaults={"clip_value": 1.0},
        constraints={"clip_value": POSITIVE_OR_INF},
    )
