"""Adam and AdamW: torch.optim's classes, signatures, defaults and state layout, as one
chain of transforms (coupled or decoupled weight decay chosen by a flag)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from descend.optim import fused as torch_fused
from descend.optim.compose import chain
from descend.optim.conditional import when
from descend.optim.named import Params, _Named
from descend.optim.transforms import (
    add_decayed_weights,
    add_weight_decay,
    maximize,
    scale_by_adam,
    scale_by_lr,
)

_ADAM = chain(
    maximize(),
    when("decoupled_weight_decay", add_weight_decay(), value=False),
    scale_by_adam(),
    when("decoupled_weight_decay", add_decayed_weights(), value=True),
    scale_by_lr(),
)


class Adam(_Named):
    r"""Adam: momentum on the gradient, step sizes from its second moment, both bias-corrected.

    A drop-in ``torch.optim.Adam``, including ``amsgrad`` and ``decoupled_weight_decay``.

    .. math::
        g_t &\leftarrow \pm\nabla L(\theta_{t-1}) \;[+\ \lambda\theta_{t-1}\ \text{coupled}]\\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2\\
        \hat v_t &= \max(\hat v_{t-1}, v_t)\ \text{(amsgrad) else } v_t\\
        \theta_t &= \theta_{t-1} - \eta\left(\frac{m_t/(1-\beta_1^t)}{\sqrt{\hat v_t/(1-\beta_2^t)}+\epsilon}
                    \;[+\ \lambda\theta_{t-1}\ \text{decoupled}]\right)

    Symbols: :math:`\eta` ``lr``, :math:`(\beta_1,\beta_2)` ``betas``, :math:`\epsilon` ``eps``,
    :math:`\lambda` ``weight_decay`` — added to the gradient (L2, torch's ``Adam``) or, with
    ``decoupled_weight_decay=True``, to the update (AdamW). Chain: maximize →
    add_weight_decay[coupled] → scale_by_adam → add_decayed_weights[decoupled] → scale_by_lr.

    .. warning:: ``Adam(weight_decay=...)`` is coupled L2 regularization, which adaptive
       scaling weakens for parameters with large gradients; prefer :class:`AdamW`.

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = descend.Adam([x], lr=0.1)
        >>> for _ in range(300):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> bool(x.abs().max() < 1e-2)
        True

    References:
        Kingma & Ba, "Adam: A Method for Stochastic Optimization", 2015. https://arxiv.org/abs/1412.6980
        Reddi et al., "On the Convergence of Adam and Beyond" (AMSGrad), 2018. https://openreview.net/forum?id=ryQu7f-RZ
    """

    transform = _ADAM
    _fused = staticmethod(torch_fused.adam)

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        _check_tensor_hyper(lr, betas, foreach=foreach, capturable=capturable)
        super().__init__(
            params,
            _ADAM,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=decoupled_weight_decay,
        )


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    A drop-in ``torch.optim.AdamW`` (default ``weight_decay=1e-2``). The update is Adam's
    with :math:`\lambda\theta` added after the adaptive scaling (see :class:`Adam`), so
    every parameter shrinks by the same fraction :math:`\eta\lambda` per step.

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = descend.AdamW([x], lr=0.1, weight_decay=0.01)
        >>> for _ in range(300):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> bool(x.abs().max() < 1e-2)
        True

    References:
        Loshchilov & Hutter, "Decoupled Weight Decay Regularization", 2019. https://arxiv.org/abs/1711.05101
    """

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
        )


def _check_tensor_hyper(lr: Any, betas: Any, *, foreach: bool | None, capturable: bool) -> None:
    """torch.optim.Adam's refusals of tensor hyperparameters, in its words."""
    if isinstance(betas, tuple | list) and len(betas) == 2:
        if isinstance(betas[0], Tensor) != isinstance(betas[1], Tensor):
            raise ValueError(
                f"betas must be either both floats or both Tensors. Got {tuple(betas)!r}."
            )
        if isinstance(betas[0], Tensor) and foreach and not capturable:
            raise ValueError(
                "betas[0] as a Tensor is not supported for capturable=False and foreach=True"
            )
    if isinstance(lr, Tensor) and foreach and not capturable:
        raise ValueError("lr as a Tensor is not supported for capturable=False and foreach=True")
