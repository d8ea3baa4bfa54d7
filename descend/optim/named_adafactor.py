"""``Adafactor``: torch.optim's class, signature, defaults and state layout, as a chain of
transforms."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from descend.optim.compose import chain
from descend.optim.named import Params, _Named
from descend.optim.transforms import maximize
from descend.optim.transforms.adafactor import (
    clip_by_block_rms,
    decay_by_lr,
    scale_by_factored_rms,
    scale_by_relative_step,
)

_ADAFACTOR = chain(
    maximize(),
    scale_by_factored_rms(),
    clip_by_block_rms(),
    scale_by_relative_step(),
    decay_by_lr(),
)
_FACTORS = ("row_var", "col_var", "variance")


class Adafactor(_Named):
    r"""Adafactor: Adam's second moment kept as row and column factors, steps relative to
    each parameter's scale, and no first moment: sublinear optimizer memory.

    A drop-in ``torch.optim.Adafactor``: same arguments, defaults, errors and state dict.

    .. math::
        G_t &\leftarrow \pm\nabla L(\theta_{t-1}), \qquad \hat\beta_{2,t} = 1 - t^{\tau}\\
        R_t &= \hat\beta_{2,t} R_{t-1} + (1-\hat\beta_{2,t})\operatorname{mean}_{\text{cols}}(G_t^2),
        \quad C_t = \hat\beta_{2,t} C_{t-1} + (1-\hat\beta_{2,t})\operatorname{mean}_{\text{rows}}(G_t^2)\\
        \hat V_t &= R_t C_t / \max(\operatorname{mean}(R_t), \epsilon_1)
        \ \text{(2+ dims)}, \quad
        \hat V_t = \hat\beta_{2,t}\hat V_{t-1} + (1-\hat\beta_{2,t}) G_t^2 \ \text{(else)}\\
        U_t &= G_t / \max(\sqrt{\hat V_t}, \epsilon_1), \qquad
        \hat U_t = U_t / \max(1, \operatorname{RMS}(U_t)/d)\\
        \alpha_t &= \max(\epsilon_2, \operatorname{RMS}(\theta_{t-1}))\,\min(\eta, 1/\sqrt t),
        \qquad \theta_t = \theta_{t-1} - \eta\lambda\,\theta_{t-1} - \alpha_t \hat U_t

    Symbols: :math:`\eta` ``lr``, :math:`\tau` ``beta2_decay``, :math:`(\epsilon_1,
    \epsilon_2)` ``eps`` (:math:`\epsilon_1` ``None``: the dtype's machine epsilon),
    :math:`d` ``d``, :math:`\lambda` ``weight_decay`` (decoupled). Tensors of more than two
    dimensions are factored over their last two. Chain: maximize → scale_by_factored_rms →
    clip_by_block_rms → scale_by_relative_step → decay_by_lr. State ``step`` and
    ``row_var``/``col_var`` (2+ dims) or ``variance`` (else): :math:`n + m` numbers for an
    :math:`n \times m` matrix instead of Adam's :math:`2nm`.

    .. warning:: Conventions differ. torch (and so descend) uses ``lr`` as the cap of the
       relative step and as the weight-decay rate, and places :math:`\epsilon_1` in the
       final estimate; the paper caps :math:`\rho_t` at 0.01, has no ``lr`` and adds
       :math:`\epsilon_1` to :math:`G^2`; Hugging Face's ``Adafactor`` and optax's
       ``adafactor`` follow the paper and offer a first moment (``beta1``), which torch's
       has not. An empty parameter gets no update here (torch's divides by zero).

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True)
        >>> opt = descend.Adafactor([x], lr=0.1)
        >>> for _ in range(200):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> bool(x.abs().max() < 0.05)
        True

    References:
        Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost",
        ICML 2018. https://arxiv.org/abs/1804.04235
    """

    transform = _ADAFACTOR

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            _ADAFACTOR,
            lr=lr,
            beta2_decay=beta2_decay,
            eps=eps,
            d=d,
            weight_decay=weight_decay,
            foreach=foreach,
            maximize=maximize,
        )

    def _step_group(self, group: dict[str, Any], params: list[Tensor]) -> None:
        for p in params:
            if p.is_complex():
                raise RuntimeError(
                    "Adafactor does not support complex parameters. Got a parameter of shape "
                    f"{tuple(p.shape)} and dtype {p.dtype}; optimize its real and imaginary "
                    "parts (torch.view_as_real) as a real parameter instead."
                )
        super()._step_group(group, params)

    def _init_state(
        self, group: dict[str, Any], params: list[Tensor], *, fused: bool = False
    ) -> None:
        fresh = [p for p in params if not self.state.get(p)]
        super()._init_state(group, params, fused=fused)
        # A parameter keeps either the two factors or the full variance, as torch's.
        for p in fresh:
            for key in _FACTORS:
                if self.state[p].get(key, 0) is None:
                    del self.state[p][key]
