"""torch.optim's other classic rules (Adadelta, ASGD, Rprop): torch.optim's classes,
signatures, defaults and state layout, each one a chain of transforms."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend.optim.compose import chain
from descend.optim.named import Params, _Named
from descend.optim.transforms import (
    add_weight_decay,
    asgd,
    maximize,
    scale_by_adadelta,
    scale_by_lr,
    scale_by_rprop,
)

_ADADELTA = chain(maximize(), add_weight_decay(), scale_by_adadelta(), scale_by_lr())
_ASGD = chain(maximize(), add_weight_decay(), asgd())
_RPROP = chain(maximize(), scale_by_rprop())


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


class ASGD(_Named):
    r"""ASGD: SGD with a slowly decaying step size, and the running average of its iterates.

    A drop-in ``torch.optim.ASGD``. The parameters follow SGD; the average
    :math:`\bar\theta` (``optimizer.state[p]["ax"]``) is what converges at the optimal
    rate, so evaluate with it (copy it into the model for evaluation).

    .. math::
        g_t &\leftarrow \pm\nabla L(\theta_{t-1}) + \lambda_{wd}\,\theta_{t-1}\\
        \theta_t &= \theta_{t-1}(1 - \lambda\eta_{t-1}) - \eta_{t-1}\, g_t, \qquad
        \bar\theta_t = \bar\theta_{t-1} + \mu_{t-1}(\theta_t - \bar\theta_{t-1})\\
        \eta_t &= \frac{\eta}{(1 + \lambda\eta t)^{\alpha}}, \qquad
        \mu_t = \frac{1}{\max(1, t - t_0)} \qquad (\eta_0 = \eta,\ \mu_0 = 1)

    Symbols: :math:`\eta` ``lr``, :math:`\lambda` ``lambd``, :math:`\alpha` ``alpha``,
    :math:`t_0` ``t0`` (averaging starts after it; before, :math:`\bar\theta` tracks
    :math:`\theta`), :math:`\lambda_{wd}` ``weight_decay`` (coupled). Chain: maximize →
    add_weight_decay → asgd. With the default ``t0=1e6`` no averaging happens in a short
    run; set ``t0`` to the step where averaging should begin.

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = descend.ASGD([x], lr=0.1, t0=50)
        >>> for _ in range(300):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> bool(opt.state[x]["ax"].abs().max() < 1e-2)
        True

    References:
        Polyak & Juditsky, "Acceleration of Stochastic Approximation by Averaging", 1992.
        https://doi.org/10.1137/0330046
        Bottou, "Stochastic Gradient Descent Tricks", 2012 (the step-size schedule).
        https://doi.org/10.1007/978-3-642-35289-8_25
    """

    transform = _ASGD
    _scalar_state = ("eta", "mu")

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        super().__init__(
            params,
            _ASGD,
            lr=lr,
            lambd=lambd,
            alpha=alpha,
            t0=t0,
            weight_decay=weight_decay,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            capturable=capturable,
        )

    def _scalar_device(self, p: Tensor, group: dict[str, Any]) -> torch.device:
        return p.device  # torch keeps ASGD's eta and mu with the parameter


class Rprop(_Named):
    r"""Rprop: a step size per coordinate that grows while the gradient keeps its sign and
    shrinks when it flips; only the sign of the gradient is used.

    A drop-in ``torch.optim.Rprop``.

    .. math::
        f_t &= \eta_+ \text{ if } g_t g'_{t-1} > 0,\quad \eta_- \text{ if } g_t g'_{t-1} < 0,
        \quad 1 \text{ otherwise}\\
        s_t &= \operatorname{clip}(s_{t-1} f_t,\ s_{\min},\ s_{\max}) \qquad (s_0 = \text{lr}),
        \qquad g'_t = 0 \text{ if } f_t = \eta_- \text{ else } g_t\\
        \theta_t &= \theta_{t-1} - \operatorname{sign}(g'_t)\, s_t

    Symbols: ``lr`` is the initial step size :math:`s_0` (read once, as torch),
    :math:`(\eta_-, \eta_+)` ``etas``, :math:`(s_{\min}, s_{\max})` ``step_sizes``;
    ``maximize`` flips the sign of the gradient. Chain: maximize → scale_by_rprop.

    .. warning:: A full-batch method: with mini-batch noise the signs flip at random and
       the step sizes collapse to ``step_sizes[0]``; use it with ``batch_size=None``.

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = descend.Rprop([x], lr=0.1)
        >>> for _ in range(100):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> bool(x.abs().max() < 1e-3)
        True

    References:
        Riedmiller & Braun, "A Direct Adaptive Method for Faster Backpropagation Learning:
        The RPROP Algorithm", 1993. https://doi.org/10.1109/ICNN.1993.298623
    """

    transform = _RPROP
    _ignored_keys = frozenset({"weight_decay"})  # torch's Rprop has none and ignores it

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
        *,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        super().__init__(
            params,
            _RPROP,
            lr=lr,
            etas=etas,
            step_sizes=step_sizes,
            capturable=capturable,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
        )
