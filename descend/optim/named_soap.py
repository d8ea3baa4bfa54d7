"""``SOAP``: the authors' class (arguments, defaults and update), as a chain of transforms."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from descend.optim.compose import chain
from descend.optim.named import Params
from descend.optim.optimizer import Optimizer
from descend.optim.transforms import maximize, scale_by_lr
from descend.optim.transforms.soap import decay_after_step, scale_by_soap

_SOAP = chain(maximize(), scale_by_soap(), scale_by_lr(), decay_after_step())


class SOAP(Optimizer):
    r"""SOAP: Adam in the eigenbasis of Shampoo's preconditioner, the basis refreshed every
    few steps by one step of power iteration.

    The authors' ``SOAP`` (https://github.com/nikhilvyas/SOAP, ``soap.py``): the same
    arguments and defaults (and ``maximize``), the same update, to rounding. For a weight
    matrix with gradient :math:`G_t`:

    .. math::
        L_t &= \beta_s L_{t-1} + (1-\beta_s) G_t G_t^\top, \quad
        R_t = \beta_s R_{t-1} + (1-\beta_s) G_t^\top G_t, \quad
        Q_L, Q_R = \text{eigenvectors of } L, R \ \text{(every } f \text{ steps)}\\
        \tilde G_t &= Q_L^\top G_t Q_R, \quad
        M_t = \beta_1 M_{t-1} + (1-\beta_1)\tilde G_t, \quad
        V_t = \beta_2 V_{t-1} + (1-\beta_2)\tilde G_t^2\\
        \theta_t &= \Big(\theta_{t-1} - \eta\,\frac{\sqrt{1-\beta_2^{s}}}{1-\beta_1^{s}}\,
        Q_L \frac{M_t}{\sqrt{V_t}+\epsilon} Q_R^\top\Big)(1 - \eta\lambda)
        \qquad (s = t - 1)

    Symbols: :math:`\eta` ``lr``, :math:`(\beta_1, \beta_2)` ``betas``, :math:`\beta_s`
    ``shampoo_beta`` (-1: :math:`\beta_2`), :math:`\epsilon` ``eps``, :math:`\lambda`
    ``weight_decay`` (decoupled, applied after the step), :math:`f`
    ``precondition_frequency`` (eigenvectors by ``eigh`` at the first step, then one
    power-iteration step and QR). A tensor of more dimensions has one statistic per
    dimension (or per merged dimension with ``merge_dims``); a dimension above
    ``max_precond_dim`` and, unless ``precondition_1d``, a vector are not rotated (Adam).
    The first step of each parameter only measures (no update, no decay). Chain: maximize →
    scale_by_soap → scale_by_lr → decay_after_step; the rule and its state are in
    :func:`descend.optim.transforms.soap.scale_by_soap`.

    State per parameter: ``exp_avg``, ``exp_avg_sq`` (2 numbers per weight) and, per rotated
    dimension of size :math:`n`, :math:`GG` and :math:`Q` (:math:`2n^2`): for a square
    :math:`n \times n` matrix 6 numbers per weight, 2 + 2(n/m + m/n) for :math:`n \times m`.

    .. warning:: When not to use it: a dimension of a few thousand makes the ``eigh`` of the
       first step and the QR every ``f`` steps cost :math:`O(n^3)`, and :math:`GG, Q` grow as
       :math:`n^2` (``max_precond_dim`` bounds both); for an embedding or output layer over a
       large vocabulary, leave that dimension unrotated (the default 10000 is chosen so).

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True)
        >>> opt = descend.SOAP([x], lr=0.1, weight_decay=0.0)
        >>> for _ in range(200):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> bool(x.abs().max() < 0.05)
        True

    References:
        Vyas, Morwani, Zhao, Kwun, Shapira, Brandfonbrener, Janson & Kakade, "SOAP:
        Improving and Stabilizing Shampoo using Adam", ICLR 2025.
        https://arxiv.org/abs/2409.11321
    """

    transform = _SOAP

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 3e-3,
        betas: tuple[float, float] = (0.95, 0.95),
        shampoo_beta: float = -1,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        precondition_frequency: int = 10,
        max_precond_dim: int = 10000,
        merge_dims: bool = False,
        precondition_1d: bool = False,
        normalize_grads: bool = False,
        data_format: str = "channels_first",
        correct_bias: bool = True,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            _SOAP,
            lr=lr,
            betas=betas,
            shampoo_beta=shampoo_beta,
            eps=eps,
            weight_decay=weight_decay,
            precondition_frequency=precondition_frequency,
            max_precond_dim=max_precond_dim,
            merge_dims=merge_dims,
            precondition_1d=precondition_1d,
            normalize_grads=normalize_grads,
            data_format=data_format,
            correct_bias=correct_bias,
            maximize=maximize,
        )

    def _step_group(self, group: dict[str, Any], params: list[Tensor]) -> None:
        for p in params:
            if p.is_complex():
                raise RuntimeError(
                    f"SOAP does not support complex parameters. Got a parameter of shape "
                    f"{tuple(p.shape)} and dtype {p.dtype}; optimize torch.view_as_real(p) "
                    "as a real parameter instead."
                )
        super()._step_group(group, params)
