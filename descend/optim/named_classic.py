"""torch.optim's other classic rules (Adadelta, ASGD, Rprop): torch.optim's classes,
signatures, defaults and state layout, each one a chain of transforms."""

from __future__ import annotations

from torch import Tensor

from descend.optim.named import Params, _Named
from descend.optim.transform import chain
from descend.optim.transforms import add_weight_decay, maximize, scale_by_adadelta, scale_by_lr

_ADADELTA = chain(maximize(), add_weight_decay(), scale_by_adadelta(), scale_by_lr())


class Adadelta(_Named):
    r"""Adadelta: per-coordinate steps from the ratio of the RMS of past updates to the RMS
    of past gradients.

    A drop-in ``torch.optim.Adadelta``.

    .. math::
        g_t &\leftarrow \pm\nabla L(\theta_{t-1}) + \lambda\,\theta_{t-1}\\
        v_t &= \rho v_{t-1} + (1-\rho) g_t^2, \qquad
        u_t = \frac{\sqrt{a_{t-1}+\epsilon}}{\sqrt{v_t+\epsilon}}\, g_t, \qquad
        a_t = \rho a_{t-1} + (1-\rho) u_t^2\\
        \theta_t &= \theta_{t-1} - \eta\, u_t

    Symbols: :math:`\eta` ``lr`` (1 in the paper), :math:`\rho` ``rho``, :math:`\epsilon`
    ``eps``, :math:`\lambda` ``weight_decay`` (coupled, L2); ``maximize`` flips the sign of
    the gradient. Chain: maximize → add_weight_decay → scale_by_adadelta → scale_by_lr.
    The first steps are about :math:`\sqrt{\epsilon}` per coordinate whatever the gradient,
    so progress starts slowly and ``eps`` acts as an initial step size.

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = descend.Adadelta([x], lr=1.0, eps=1e-4)
        >>> for _ in range(500):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> bool(x.abs().max() < 1e-2)
        True

    References:
        Zeiler, "ADADELTA: An Adaptive Learning Rate Method", 2012. https://arxiv.org/abs/1212.5701
    """

    transform = _ADADELTA

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        super().__init__(
            params,
            _ADADELTA,
            lr=lr,
            rho=rho,
            eps=eps,
            weight_decay=weight_decay,
            foreach=foreach,
            capturable=capturable,
            maximize=maximize,
            differentiable=differentiable,
        )
