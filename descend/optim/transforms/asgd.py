"""ASGD: stochastic gradient descent with a decaying step and Polyak-Ruppert averaging."""

from __future__ import annotations

import torch
from torch import Tensor

from descend.optim._constraints import LEARNING_RATE, NON_NEGATIVE
from descend.optim.flags import scalar_dtype
from descend.optim.transform import Hyper, State, Transform, picklable
from descend.optim.transforms.decay import _plus_decay


@picklable
def asgd() -> Transform:
    r"""Averaged SGD (Polyak & Juditsky, 1992) with the decaying step size of Bottou's
    SGD (2012), as ``torch.optim.ASGD``: the parameters descend, and ``ax`` keeps their
    running average from step ``t0`` on.

    .. math::
        u_t &= -\eta_{t-1}\,(g_t + \lambda\,\theta_{t-1}) \qquad (\theta_t = \theta_{t-1} + u_t)\\
        \bar\theta_t &= \bar\theta_{t-1} + \mu_{t-1}\,(\theta_t - \bar\theta_{t-1})\\
        \eta_t &= \frac{\eta}{(1 + \lambda\,\eta\, t)^{\alpha}}, \qquad
        \mu_t = \frac{1}{\max(1,\ t - t_0)}

    Symbols: :math:`\eta` is ``lr`` (read at each step; :math:`\eta_0 = \eta`),
    :math:`\lambda` ``lambd`` (the decay term and the step's decay), :math:`\alpha`
    ``alpha``, :math:`t_0` ``t0`` (the step from which averaging starts). State ``eta``
    (:math:`\eta_t`) and ``mu`` (:math:`\mu_t`), 0-d tensors of the step's dtype as torch
    keeps them, ``ax`` (:math:`\bar\theta`) and the shared ``step`` (:math:`t`).

    This transform applies the learning rate itself (:math:`\eta_t`, not ``lr``) and
    reads the parameters, so it ends a chain; use ``ax`` (``opt.state[p]["ax"]``) as the
    averaged parameters for evaluation.
    """

    def init(params: list[Tensor], hp: Hyper) -> State:
        lr = hp["lr"]
        lr = float(lr.item() if isinstance(lr, Tensor) else lr)
        return {
            "eta": [torch.tensor(lr, dtype=scalar_dtype(), device=p.device) for p in params],
            "mu": [torch.ones((), dtype=scalar_dtype(), device=p.device) for p in params],
            "ax": [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params],
        }

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        lr, lambd, alpha, t0 = hp["lr"], hp["lambd"], hp["alpha"], hp["t0"]
        etas, mus, ax = state["eta"], state["mu"], state["ax"]
        # Out of place: a differentiable step's products keep their inputs for backward.
        updates = torch._foreach_mul(_plus_decay(grads, params, lambd), [-eta for eta in etas])
        # The average follows the parameters after this step: theta + u, as the optimizer
        # will compute it.
        moved = torch._foreach_add(params, updates)
        torch._foreach_sub_(moved, ax)
        torch._foreach_addcmul_(ax, moved, mus)
        for i, (s, eta, mu) in enumerate(zip(hp["step"], etas, mus, strict=True)):
            if not isinstance(s, Tensor):
                eta.fill_(lr / (1 + lambd * lr * s) ** alpha)
                mu.fill_(1 / max(1, s - t0))
                continue
            new_eta = (lr / (1 + lambd * lr * s) ** alpha).to(eta.dtype)
            new_mu = (1 / torch.clamp_min(s - t0, 1)).to(mu.dtype)
            if torch.is_grad_enabled():
                # A differentiable step: this step's graph keeps the old eta and mu (the
                # products above saved them), so they are replaced, not overwritten.
                etas[i], mus[i] = new_eta.to(eta.device), new_mu.to(mu.device)
            else:
                eta.copy_(new_eta)
                mu.copy_(new_mu)
        return updates

    return Transform(
        init,
        update,
        {"lr": 1e-2, "lambd": 1e-4, "alpha": 0.75, "t0": 1e6},
        {"lr": LEARNING_RATE, "lambd": NON_NEGATIVE, "alpha": NON_NEGATIVE, "t0": NON_NEGATIVE},
        True,
        "asgd",
    )
