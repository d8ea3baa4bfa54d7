"""The named optimizers: torch.optim's classes, signatures, defaults and state layout,
each one a chain of the transforms in :mod:`descend.optim.transforms` (Adam and AdamW are
in :mod:`descend.optim.named_adam`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor

from descend.optim import fused as torch_fused
from descend.optim.compose import chain
from descend.optim.flags import scalar_dtype
from descend.optim.optimizer import Optimizer
from descend.optim.transforms import (
    add_weight_decay,
    maximize,
    scale_by_adagrad,
    scale_by_lr,
    scale_by_rms,
    trace,
)

Params = Iterable[Tensor] | Iterable[dict[str, Any]]
_SGD = chain(maximize(), add_weight_decay(), trace(), scale_by_lr())
_ADAGRAD = chain(maximize(), add_weight_decay(), scale_by_adagrad(), scale_by_lr())
_RMSPROP = chain(maximize(), add_weight_decay(), scale_by_rms(), trace(), scale_by_lr())


class _Named(Optimizer):
    _torch_layout = True
    # Per-parameter 0-d state besides ``step`` (NAdam's ``mu_product``, ASGD's ``eta`` and
    # ``mu``), created in the step's dtype, as torch creates it.
    _scalar_state: ClassVar[tuple[str, ...]] = ()

    def _scalar_device(self, p: Tensor, group: dict[str, Any]) -> torch.device:
        return p.device if group["capturable"] else torch.device("cpu")

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Also what load_state_dict ends with. torch's loader casts every state tensor but
        # ``step`` to its parameter's dtype, so a float64 model would resume with float64
        # scalars that were float32 and drift from the uninterrupted run; they go back to
        # the step's dtype (and a Python number from an old state dict becomes a tensor).
        super().__setstate__(state)
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state.get(p)
                for key in self._scalar_state if st else ():
                    value = st.get(key)
                    if value is not None:
                        st[key] = torch.as_tensor(value).to(
                            dtype=scalar_dtype(), device=self._scalar_device(p, group)
                        )


class SGD(_Named):
    r"""Gradient descent: plain, with (heavy-ball or Nesterov) momentum, with weight decay.

    A drop-in ``torch.optim.SGD``: same arguments, defaults and state dict.

    .. math::
        g_t &\leftarrow \pm\nabla L(\theta_{t-1}) + \lambda\,\theta_{t-1}\\
        b_t &= \mu\, b_{t-1} + (1 - \tau)\, g_t \qquad (b_1 = g_1)\\
        \theta_t &= \theta_{t-1} - \eta \begin{cases} g_t + \mu b_t & \text{nesterov}\\
                   b_t & \mu > 0 \\ g_t & \mu = 0 \end{cases}

    Symbols: :math:`\eta` ``lr``, :math:`\mu` ``momentum``, :math:`\tau` ``dampening``,
    :math:`\lambda` ``weight_decay`` (coupled), ``maximize`` flips the sign of the gradient.
    With ``momentum=0`` this is the articles' update :math:`w \leftarrow w - \alpha\,\partial L/\partial w`.
    Chain: maximize → add_weight_decay → trace → scale_by_lr.

    .. note:: The momentum convention is PyTorch's (learning rate outside the velocity);
       see :func:`descend.optim.trace` for the articles' form and how to get it.

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([2.0], requires_grad=True)
        >>> opt = descend.SGD([x], lr=0.1)
        >>> for _ in range(50):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> round(x.item(), 6)  # 2 * 0.8 ** 50
        2.9e-05
    """

    transform = _SGD
    _sparse_grads = True
    _fused = staticmethod(torch_fused.sgd)

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            _SGD,
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
            foreach=foreach,
            differentiable=differentiable,
            fused=fused,
        )


class Adagrad(_Named):
    r"""AdaGrad: per-coordinate learning rates from the running sum of squared gradients.

    A drop-in ``torch.optim.Adagrad`` (state created at construction, as torch does).

    .. math::
        g_t &\leftarrow \pm\nabla L(\theta_{t-1}) + \lambda\,\theta_{t-1}\\
        s_t &= s_{t-1} + g_t^2 \qquad (s_0 = \text{initial\_accumulator\_value})\\
        \theta_t &= \theta_{t-1} - \frac{\eta}{1 + (t-1)\delta}\,\frac{g_t}{\sqrt{s_t} + \epsilon}

    Symbols: :math:`\eta` ``lr``, :math:`\delta` ``lr_decay``, :math:`\lambda`
    ``weight_decay``, :math:`\epsilon` ``eps``. Chain: maximize → add_weight_decay →
    scale_by_adagrad → scale_by_lr.

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([1.0, -1.0], requires_grad=True)
        >>> opt = descend.Adagrad([x], lr=0.5)
        >>> for _ in range(200):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> bool(x.abs().max() < 1e-3)
        True
    """

    transform = _ADAGRAD
    _eager_state = True
    _sparse_grads = True
    _fused = staticmethod(torch_fused.adagrad)
    _fused_devices = ("cpu",)  # torch builds its fused Adagrad for the CPU only

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            _ADAGRAD,
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            fused=fused,
        )


class RMSprop(_Named):
    r"""RMSprop: divide by a moving root-mean-square of the gradients; optional momentum.

    A drop-in ``torch.optim.RMSprop``.

    .. math::
        g_t &\leftarrow \pm\nabla L(\theta_{t-1}) + \lambda\,\theta_{t-1}\\
        v_t &= \alpha v_{t-1} + (1-\alpha) g_t^2, \quad
        m_t = \alpha m_{t-1} + (1-\alpha) g_t \ \text{(centered)}\\
        u_t &= g_t / (\sqrt{v_t - m_t^2} + \epsilon) \ \text{(centered) or } g_t / (\sqrt{v_t} + \epsilon)\\
        b_t &= \mu\, b_{t-1} + u_t, \qquad \theta_t = \theta_{t-1} - \eta\, b_t
        \quad (\theta_t = \theta_{t-1} - \eta\, u_t \text{ when } \mu = 0)

    Symbols: :math:`\eta` ``lr``, :math:`\alpha` ``alpha``, :math:`\epsilon` ``eps``,
    :math:`\lambda` ``weight_decay``, :math:`\mu` ``momentum``, ``centered``.
    Chain: maximize → add_weight_decay → scale_by_rms → trace → scale_by_lr.

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([1.0, -1.0], requires_grad=True)
        >>> opt = descend.RMSprop([x], lr=0.01)
        >>> for _ in range(300):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> bool(x.abs().max() < 0.05)
        True
    """

    transform = _RMSPROP

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        super().__init__(
            params,
            _RMSPROP,
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            capturable=capturable,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
        )
