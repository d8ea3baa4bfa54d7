"""NAdam: Adam with Nesterov momentum and a momentum schedule."""

from __future__ import annotations

import torch
from torch import Tensor

from descend.optim._constraints import BETAS, NON_NEGATIVE
from descend.optim.flags import scalar_dtype
from descend.optim.transform import Hyper, State, Transform, owned, picklable


@picklable
def scale_by_nadam() -> Transform:
    r"""Adam's moments with Nesterov's look-ahead on the first one (Dozat, 2016), with the
    warming momentum schedule :math:`\mu_t` of the paper.

    .. math::
        \mu_t &= \beta_1\left(1 - \tfrac12\, 0.96^{t\psi}\right), \qquad
        \Pi_t = \textstyle\prod_{i \le t} \mu_i \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2 \\
        u_t &= \frac{1}{\sqrt{v_t / (1 - \beta_2^t)} + \epsilon}
        \left(\frac{1 - \mu_t}{1 - \Pi_t}\, g_t + \frac{\mu_{t+1}}{1 - \Pi_t\,\mu_{t+1}}\, m_t\right)

    Symbols: :math:`(\beta_1, \beta_2)` is ``betas``, :math:`\epsilon` is ``eps``,
    :math:`\psi` is ``momentum_decay``. State ``exp_avg`` (:math:`m`), ``exp_avg_sq``
    (:math:`v`), ``mu_product`` (:math:`\Pi`, a 0-d tensor of the step's dtype, as torch
    keeps it) and the shared ``step`` (:math:`t`), as in ``torch.optim.NAdam``.
    """

    def init(params: list[Tensor], hp: Hyper) -> State:
        def zeros() -> list[Tensor]:
            return [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]

        return {
            "mu_product": [
                torch.ones(
                    (), dtype=scalar_dtype(), device=p.device if hp.get("capturable") else "cpu"
                )
                for p in params
            ],
            "exp_avg": zeros(),
            "exp_avg_sq": zeros(),
        }

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        beta1, beta2 = hp["betas"]
        psi, steps = hp["momentum_decay"], hp["step"]
        m, v, products = state["exp_avg"], state["exp_avg_sq"], state["mu_product"]
        torch._foreach_lerp_(m, grads, 1 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - beta2)

        mus = [beta1 * (1 - 0.5 * 0.96 ** (s * psi)) for s in steps]
        nexts = [beta1 * (1 - 0.5 * 0.96 ** ((s + 1) * psi)) for s in steps]
        torch._foreach_mul_(products, mus)
        # Python numbers in an eager step (torch reads the product back the same way).
        pis = products if isinstance(steps[0], Tensor) else [p.item() for p in products]
        on_grad = [(1 - mu) / (1 - pi) for mu, pi in zip(mus, pis, strict=True)]
        on_avg = [nxt / (1 - pi * nxt) for nxt, pi in zip(nexts, pis, strict=True)]

        denom = owned(torch._foreach_sqrt(v))
        torch._foreach_div_(denom, [(1 - beta2**s) ** 0.5 for s in steps])
        torch._foreach_add_(denom, hp["eps"])
        updates = torch._foreach_mul(grads, on_grad)
        torch._foreach_add_(updates, torch._foreach_mul(m, on_avg))
        return torch._foreach_div(updates, denom)

    return Transform(
        init,
        update,
        {"betas": (0.9, 0.999), "eps": 1e-8, "momentum_decay": 4e-3},
        {"betas": BETAS, "eps": NON_NEGATIVE, "momentum_decay": NON_NEGATIVE},
        True,
        "scale_by_nadam",
    )
