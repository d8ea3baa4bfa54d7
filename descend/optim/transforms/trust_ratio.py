"""The layer-wise trust ratio of LARS and LAMB."""

from __future__ import annotations

import torch
from torch import Tensor

from descend.optim._constraints import NON_NEGATIVE
from descend.optim.transform import Hyper, State, Transform, picklable, stateless
from descend.optim.transforms.clip import POSITIVE_OR_INF


@picklable
def scale_by_trust_ratio() -> Transform:
    r"""Rescale each tensor's update to the norm of the tensor itself, capped (You et al.,
    2020, Algorithm 2): every layer moves by about the same fraction of its weights.

    .. math::
        u \leftarrow u \cdot \frac{\min(\lVert\theta\rVert_2,\ c)}{\lVert u\rVert_2 + \epsilon}
        \qquad\text{(} u \text{ unchanged where either norm is 0)}

    per parameter tensor. Symbols: :math:`c` is ``clamp_value`` (default 10, the paper's
    :math:`\phi(z) = \min(z, \gamma_u)` as ``pytorch-optimizer`` sets it; ``inf``: no cap),
    :math:`\epsilon` is ``eps`` (as ``pytorch-optimizer``; the paper has none). A zero
    norm (a fresh zero bias, a zero update) leaves the update as it is, so a layer
    initialised at zero can move.
    """

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        c, eps = hp["clamp_value"], hp["eps"]
        weight_norms = torch._foreach_norm(params)
        update_norms = torch._foreach_norm(grads)
        ratios = []
        for w, n in zip(weight_norms, update_norms, strict=True):
            w = w.clamp(max=float(c))
            ratios.append(torch.where((w != 0) & (n != 0), w / (n + eps), 1.0))
        return torch._foreach_mul(grads, ratios)

    return stateless(
        update,
        name="scale_by_trust_ratio",
        defaults={"clamp_value": 10.0, "eps": 1e-6},
        constraints={"clamp_value": POSITIVE_OR_INF, "eps": NON_NEGATIVE},
        # Per tensor: the optimizer's runs never split a tensor (Transform.elementwise).
        elementwise=True,
    )
