"""Momentum: heavy-ball and Nesterov, with dampening (torch's form)."""

from __future__ import annotations

import torch
from torch import Tensor

from descend._validation import Interval, Rule
from descend.optim._constraints import FLAG, NON_NEGATIVE
from descend.optim.transform import Hyper, State, Transform, picklable


@picklable
def trace() -> Transform:
    r"""Accumulate a velocity and follow it (heavy-ball), or look ahead along it (Nesterov).

    .. math::
        b_t &= \mu\, b_{t-1} + (1 - \tau)\, g_t \qquad (b_1 = g_1)\\
        u_t &= \begin{cases} g_t + \mu\, b_t & \text{nesterov} \\ b_t & \text{otherwise}\end{cases}

    Symbols: :math:`\mu` is ``momentum``, :math:`\tau` is ``dampening``, ``nesterov``
    selects the look-ahead form; state ``momentum_buffer`` (:math:`b`), created from the
    first gradient as ``torch.optim.SGD`` does. With ``momentum=0`` it passes the
    gradient through and keeps no state.

    .. note:: **Conventions differ.** The articles write momentum as
       :math:`v \leftarrow \gamma v + \eta \nabla L,\ \theta \leftarrow \theta - v`
       (the learning rate inside the velocity); PyTorch, and descend's ``SGD``, use
       :math:`b \leftarrow \mu b + g,\ \theta \leftarrow \theta - \eta b` (the learning
       rate outside). They are equal while :math:`\eta` is constant; under a schedule the
       articles' form lets old gradients keep the old learning rate. For the articles'
       form put ``trace`` after the learning rate:
       ``descend.Optimizer(params, chain(scale_by_lr(), trace()), lr=0.1, momentum=0.9)``.

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([1.0], requires_grad=True)
        >>> opt = descend.Optimizer([x], descend.optim.chain(descend.optim.trace(),
        ...                         descend.optim.scale_by_lr()), lr=0.1, momentum=0.9)
        >>> for _ in range(2):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> round(x.item(), 4)  # 1 - .2 = .8; b = .9*2 + 1.6 = 3.4; .8 - .34
        0.46
    """

    def init(params: list[Tensor], hp: Hyper) -> State:
        return {"momentum_buffer": [None] * len(params)} if hp["momentum"] != 0 else {}

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        mu = hp["momentum"]
        if not isinstance(mu, Tensor) and mu == 0:
            return grads
        damp = hp.get("dampening", 0.0)
        bufs = state["momentum_buffer"]
        old = [i for i, b in enumerate(bufs) if b is not None]
        if old:
            ob = [bufs[i] for i in old]
            torch._foreach_mul_(ob, mu)
            torch._foreach_add_(ob, [grads[i] for i in old], alpha=1 - damp)
        for i, b in enumerate(bufs):
            if b is None:  # the first velocity is the gradient itself, undamped (torch.optim.SGD)
                bufs[i] = torch.clone(grads[i]).detach()
        if hp.get("nesterov", False):
            if isinstance(mu, Tensor):  # ``alpha`` must be a Python number
                return torch._foreach_add(grads, torch._foreach_mul(bufs, mu))
            return torch._foreach_add(grads, bufs, alpha=mu)
        return list(bufs)

    return Transform(
        init,
        update,
        {"momentum": 0.9, "dampening": 0.0, "nesterov": False},
        {"momentum": NON_NEGATIVE, "dampening": Interval(0.0, 1.0), "nesterov": FLAG},
        False,
        "trace",
        (
            Rule(
                "nesterov",
                lambda hp: (
                    not hp["nesterov"] or (hp["momentum"] > 0 and hp.get("dampening", 0) == 0)
                ),
                "False unless momentum > 0 and dampening = 0 (Nesterov momentum needs a momentum "
                "and no dampening)",
                ("momentum", "dampening"),
            ),
        ),
        elementwise=True,
        passthrough=_no_momentum,
    )


def _no_momentum(hp: Hyper) -> bool:
    mu = hp["momentum"]
    return not isinstance(mu, Tensor) and mu == 0


@picklable
def ema_trace() -> Transform:
    r"""Momentum as an exponential moving average of the gradients, and its Nesterov form
    (Muon's momentum: Keller Jordan's reference and ``torch.optim.Muon``).

    .. math::
        b_t &= \mu\, b_{t-1} + (1 - \mu)\, g_t \qquad (b_0 = 0)\\
        u_t &= \begin{cases} (1 - \mu)\, g_t + \mu\, b_t & \text{nesterov} \\
               b_t & \text{otherwise}\end{cases}

    Symbols: :math:`\mu` is ``momentum`` (default 0.95), ``nesterov`` (default True) selects
    the look-ahead form; state ``momentum_buffer`` (:math:`b`), zeros before the first step.
    Computed with ``lerp`` as the references do (:math:`b \leftarrow b + (1-\mu)(g - b)`,
    :math:`u = g + \mu (b - g)`), so that the numbers match theirs bit for bit.

    .. note:: This is :func:`trace` (``b = \mu b + g``) times :math:`1 - \mu`, with a zero
       start instead of :math:`b_1 = g_1`. The scale does not matter before a
       scale-invariant step such as :func:`orthogonalize`; the zero start does (the first
       buffer is :math:`(1-\mu)\,g_1`, not :math:`g_1`).
    """

    def init(params: list[Tensor], hp: Hyper) -> State:
        return {"momentum_buffer": [torch.zeros_like(p) for p in params]}

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        mu = hp["momentum"]
        bufs = state["momentum_buffer"]
        torch._foreach_lerp_(bufs, grads, 1 - mu)
        if hp["nesterov"]:
            return torch._foreach_lerp(grads, bufs, mu)
        return list(bufs)

    return Transform(
        init,
        update,
        {"momentum": 0.95, "nesterov": True},
        {"momentum": NON_NEGATIVE, "nesterov": FLAG},
        False,
        "ema_trace",
        elementwise=True,
    )
