"""Adam's relatives in torch.optim (Adamax, NAdam, RAdam): torch.optim's classes,
signatures, defaults and state layout, each one a chain of transforms."""

from __future__ import annotations

from torch import Tensor

from descend.optim.named import Params, _Named
from descend.optim.transform import chain
from descend.optim.transforms import add_weight_decay, maximize, scale_by_adamax, scale_by_lr

_ADAMAX = chain(maximize(), add_weight_decay(), scale_by_adamax(), scale_by_lr())


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
