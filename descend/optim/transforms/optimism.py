"""Optimism: extrapolate the gradient from the previous one (optimistic gradient descent)."""

from __future__ import annotations

import torch
from torch import Tensor

from descend.optim._constraints import NON_NEGATIVE
from descend.optim.transform import Hyper, State, Transform, picklable


@picklable
def optimism() -> Transform:
    r"""Replace the gradient by its extrapolation :math:`(1 + \alpha) g_t - \alpha g_{t-1}`.

    .. math::
        u_t &= (1 + \alpha)\, g_t - \alpha\, g_{t-1} \qquad (g_0 = g_1,\ \text{so}\ u_1 = g_1)\\
        p_t &= g_t

    Symbols: :math:`\alpha` is ``optimism`` (default 1); state ``prev_grad``
    (:math:`p`, the last gradient). Followed by :func:`scale_by_lr` it is optimistic
    gradient descent, :math:`\theta_{t+1} = \theta_t - \eta (2 g_t - g_{t-1})`
    (Popov, 1980; Daskalakis et al., 2018): a one-gradient approximation of the
    extragradient step, which in a two-player game damps the rotation that makes
    simultaneous gradient descent cycle around an equilibrium. Chained before
    ``scale_by_adam`` it feeds Adam the extrapolated gradient.

    .. warning:: On a plain minimisation the extrapolation adds noise and no
       benefit; optimism is for games (GANs, min-max problems), where the joint
       gradient field rotates.

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([1.0], requires_grad=True)
        >>> opt = descend.Optimizer([x], descend.optim.chain(descend.optim.optimism(),
        ...                         descend.optim.scale_by_lr()), lr=0.1)
        >>> for _ in range(2):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> round(x.item(), 4)  # 1 - 0.1*2 = 0.8; u = 2*1.6 - 2 = 1.2; 0.8 - 0.12
        0.68

    References:
        Popov, "A modification of the Arrow-Hurwicz method for search of saddle points",
        Mathematical Notes 28 (1980).
        Daskalakis, Ilyas, Syrgkanis, Zeng, "Training GANs with Optimism", ICLR 2018.
        https://arxiv.org/abs/1711.00141
    """

    def init(params: list[Tensor], hp: Hyper) -> State:
        return {"prev_grad": [None] * len(params)}

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        alpha = hp["optimism"]
        prev = state["prev_grad"]
        # The first step has no previous gradient: extrapolating from g itself gives g.
        last = [g if p is None else p for g, p in zip(grads, prev, strict=True)]
        out = torch._foreach_mul(grads, 1 + alpha)
        torch._foreach_add_(out, last, alpha=-alpha)
        for i, g in enumerate(grads):
            prev[i] = torch.clone(g).detach()
        return out

    return Transform(
        init,
        update,
        {"optimism": 1.0},
        {"optimism": NON_NEGATIVE},
        name="optimism",
        elementwise=True,
    )
