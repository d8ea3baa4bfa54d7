"""Adam's relatives in torch.optim (Adamax, NAdam, RAdam): torch.optim's classes,
signatures, defaults and state layout, each one a chain of transforms."""

from __future__ import annotations

from torch import Tensor

from descend.optim.compose import chain
from descend.optim.conditional import when
from descend.optim.named import Params, _Named
from descend.optim.transform import Transform
from descend.optim.transforms import (
    add_decayed_weights,
    add_weight_decay,
    maximize,
    scale_by_adamax,
    scale_by_lr,
    scale_by_nadam,
    scale_by_radam,
)

_ADAMAX = chain(maximize(), add_weight_decay(), scale_by_adamax(), scale_by_lr())


def _decay_either_way(rule: Transform) -> Transform:
    """``rule`` with weight decay coupled (added to the gradient before it) or, with
    ``decoupled_weight_decay=True``, decoupled (added to its update, as AdamW)."""
    return chain(
        maximize(),
        when("decoupled_weight_decay", add_weight_decay(), value=False),
        rule,
        when("decoupled_weight_decay", add_decayed_weights(), value=True),
        scale_by_lr(),
    )


_NADAM = _decay_either_way(scale_by_nadam())
_RADAM = _decay_either_way(scale_by_radam())


class Adamax(_Named):
    r"""Adamax: Adam's first moment over an exponentially weighted infinity norm of the gradients.

    A drop-in ``torch.optim.Adamax``.

    .. math::
        g_t &\leftarrow \pm\nabla L(\theta_{t-1}) + \lambda\,\theta_{t-1}\\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        u_t = \max(\beta_2 u_{t-1},\ |g_t| + \epsilon)\\
        \theta_t &= \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\,\frac{m_t}{u_t}

    Symbols: :math:`\eta` ``lr``, :math:`(\beta_1,\beta_2)` ``betas``, :math:`\epsilon`
    ``eps`` (inside the maximum, as torch), :math:`\lambda` ``weight_decay`` (coupled, L2);
    ``maximize`` flips the sign of the gradient. Chain: maximize → add_weight_decay →
    scale_by_adamax → scale_by_lr. The step of each coordinate is bounded by
    :math:`\eta/(1-\beta_1^t)`, whatever the gradients' scale.

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = descend.Adamax([x], lr=0.1)
        >>> for _ in range(300):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> bool(x.abs().max() < 1e-2)
        True

    References:
        Kingma & Ba, "Adam: A Method for Stochastic Optimization", 2015, section 7.1
        (AdaMax). https://arxiv.org/abs/1412.6980
    """

    transform = _ADAMAX

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        super().__init__(
            params,
            _ADAMAX,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            capturable=capturable,
        )


class NAdam(_Named):
    r"""NAdam: Adam with Nesterov momentum, under a warming momentum schedule.

    A drop-in ``torch.optim.NAdam``, including ``decoupled_weight_decay`` (NAdamW).

    .. math::
        g_t &\leftarrow \pm\nabla L(\theta_{t-1}) \;[+\ \lambda\theta_{t-1}\ \text{coupled}]\\
        \mu_t &= \beta_1\left(1 - \tfrac12\, 0.96^{t\psi}\right), \qquad
        \Pi_t = \textstyle\prod_{i \le t} \mu_i\\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2\\
        \theta_t &= \theta_{t-1} - \eta\left(\frac{\frac{1-\mu_t}{1-\Pi_t} g_t
            + \frac{\mu_{t+1}}{1-\Pi_t\mu_{t+1}} m_t}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}
            \;[+\ \lambda\theta_{t-1}\ \text{decoupled}]\right)

    Symbols: :math:`\eta` ``lr``, :math:`(\beta_1,\beta_2)` ``betas``, :math:`\epsilon`
    ``eps``, :math:`\psi` ``momentum_decay``, :math:`\lambda` ``weight_decay`` — added to the
    gradient (L2) or, with ``decoupled_weight_decay=True``, to the update (as AdamW).
    Chain: maximize → add_weight_decay[coupled] → scale_by_nadam →
    add_decayed_weights[decoupled] → scale_by_lr. State ``step``, ``mu_product``
    (:math:`\Pi`), ``exp_avg``, ``exp_avg_sq``, as torch.

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = descend.NAdam([x], lr=0.1)
        >>> for _ in range(300):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> bool(x.abs().max() < 1e-2)
        True

    References:
        Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop.
        https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ
    """

    transform = _NADAM
    _scalar_state = ("mu_product",)

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        super().__init__(
            params,
            _NADAM,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
        )


class RAdam(_Named):
    r"""RAdam: Adam with its adaptive step rectified while the second moment is young.

    A drop-in ``torch.optim.RAdam``, including ``decoupled_weight_decay``.

    .. math::
        g_t &\leftarrow \pm\nabla L(\theta_{t-1}) \;[+\ \lambda\theta_{t-1}\ \text{coupled}]\\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2\\
        \rho_\infty &= \frac{2}{1-\beta_2} - 1, \qquad
        \rho_t = \rho_\infty - \frac{2t\beta_2^t}{1-\beta_2^t}, \qquad
        r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}\\
        \theta_t &= \theta_{t-1} - \eta\left(\frac{m_t}{1-\beta_1^t}
            \begin{cases} r_t\frac{\sqrt{1-\beta_2^t}}{\sqrt{v_t}+\epsilon} & \rho_t > 5\\
            1 & \text{otherwise}\end{cases}
            \;[+\ \lambda\theta_{t-1}\ \text{decoupled}]\right)

    Symbols: :math:`\eta` ``lr``, :math:`(\beta_1,\beta_2)` ``betas``, :math:`\epsilon`
    ``eps``, :math:`\lambda` ``weight_decay`` — added to the gradient (L2) or, with
    ``decoupled_weight_decay=True``, to the update (as AdamW). With the default
    :math:`\beta_2 = 0.999` the first 5 steps are momentum SGD (a built-in warmup).
    Chain: maximize → add_weight_decay[coupled] → scale_by_radam →
    add_decayed_weights[decoupled] → scale_by_lr.

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = descend.RAdam([x], lr=0.1)
        >>> for _ in range(300):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> bool(x.abs().max() < 1e-2)
        True

    References:
        Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond", ICLR 2020.
        https://arxiv.org/abs/1908.03265
    """

    transform = _RADAM

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        super().__init__(
            params,
            _RADAM,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
        )
