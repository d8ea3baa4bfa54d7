"""RAdam: Adam whose adaptive step is switched on once its variance is tractable."""

from __future__ import annotations

import torch
from torch import Tensor

from descend.optim._constraints import BETAS, NON_NEGATIVE
from descend.optim.transform import Hyper, State, Transform, owned, picklable


@picklable
def scale_by_radam() -> Transform:
    r"""Rectified Adam (Liu et al., 2020): momentum alone while the second moment is
    estimated from too few gradients, then Adam's step times a variance rectification.

    .. math::
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2 \\
        \rho_\infty &= \frac{2}{1 - \beta_2} - 1, \qquad
        \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1 - \beta_2^t} \\
        r_t &= \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\,\rho_\infty}
                          {(\rho_\infty - 4)(\rho_\infty - 2)\,\rho_t}} \\
        u_t &= \frac{m_t}{1 - \beta_1^t} \cdot
        \begin{cases} r_t\,\dfrac{\sqrt{1 - \beta_2^t}}{\sqrt{v_t} + \epsilon} & \rho_t > 5 \\
                      1 & \text{otherwise} \end{cases}

    Symbols: :math:`(\beta_1, \beta_2)` is ``betas``, :math:`\epsilon` is ``eps``. State
    ``exp_avg`` (:math:`m`), ``exp_avg_sq`` (:math:`v`) and the shared ``step``
    (:math:`t`), as in ``torch.optim.RAdam``. The threshold 5 is torch's (the paper's
    Algorithm 2 uses 4; its reference code uses 5).
    """

    def init(params: list[Tensor], hp: Hyper) -> State:
        def zeros() -> list[Tensor]:
            return [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]

        return {"exp_avg": zeros(), "exp_avg_sq": zeros()}

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        beta1, beta2 = hp["betas"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        torch._foreach_lerp_(m, grads, 1 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - beta2)

        steps = hp["step"]
        rho_inf = 2 / (1 - beta2) - 1
        c1 = [1 - beta1**s for s in steps]
        c2 = [1 - beta2**s for s in steps]
        rho = [rho_inf - 2 * s * beta2**s / b for s, b in zip(steps, c2, strict=True)]
        norm = (rho_inf - 4) * (rho_inf - 2)
        if isinstance(steps[0], Tensor):
            # 0-d tensors (compiled, capturable, differentiable): no branch on their values.
            rect = [
                torch.where(r > 5, ((r - 4) * (r - 2) * rho_inf / (norm * r)).clamp_min(0), 0)
                ** 0.5
                for r in rho
            ]
            adaptive = [a * b**0.5 / c for a, b, c in zip(rect, c2, c1, strict=True)]
            plain = [torch.where(a > 0, 0.0, 1.0) / c for a, c in zip(rect, c1, strict=True)]
            denom = owned(torch._foreach_sqrt(v))
            torch._foreach_add_(denom, hp["eps"])
            updates = torch._foreach_div(m, denom)
            torch._foreach_mul_(updates, adaptive)
            torch._foreach_add_(updates, torch._foreach_mul(m, plain))
            return updates

        # Python numbers: each tensor takes one of the two forms.
        updates: list[Tensor] = list(m)  # every entry is replaced below
        on = [i for i, r in enumerate(rho) if r > 5]
        off = [i for i, r in enumerate(rho) if not r > 5]
        if on:
            denom = owned(torch._foreach_sqrt([v[i] for i in on]))
            torch._foreach_add_(denom, hp["eps"])
            scaled = torch._foreach_div([m[i] for i in on], denom)
            rect = [((rho[i] - 4) * (rho[i] - 2) * rho_inf / (norm * rho[i])) ** 0.5 for i in on]
            torch._foreach_mul_(
                scaled, [r * c2[i] ** 0.5 / c1[i] for r, i in zip(rect, on, strict=True)]
            )
            for i, u in zip(on, scaled, strict=True):
                updates[i] = u
        if off:
            for i, u in zip(off, torch._foreach_div([m[i] for i in off], [c1[i] for i in off])):
                updates[i] = u
        return updates

    return Transform(
        init,
        update,
        {"betas": (0.9, 0.999), "eps": 1e-8},
        {"betas": BETAS, "eps": NON_NEGATIVE},
        True,
        "scale_by_radam",
    )
