"""Muon: torch.optim's class, signature, defaults and state layout, as a chain of transforms."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend._validation import InvalidParameterError
from descend.optim.compose import chain
from descend.optim.named import Params, _Named
from descend.optim.transforms import (
    add_decayed_weights,
    ema_trace,
    orthogonalize,
    scale_by_lr,
    scale_by_shape,
)
from descend.optim.transforms.orthogonalize import NS_COEFFICIENTS

_MUON = chain(ema_trace(), orthogonalize(), scale_by_shape(), add_decayed_weights(), scale_by_lr())
_FLAT_MUON = chain(
    ema_trace(), orthogonalize(flatten=True), scale_by_shape(), add_decayed_weights(), scale_by_lr()
)


def require_matrices(
    owner: str, group: dict[str, Any], index: int, *, filters: bool = False
) -> None:
    """Refuse a param group holding anything but matrices (``filters``: or tensors of more
    dimensions), naming the parameter (by its name where the group has names) and its
    shape. The message begins with torch's words."""
    names = group.get("param_names")
    for i, p in enumerate(group["params"]):
        if p.ndim != 2 and not (filters and p.ndim > 2):
            what = f"parameter {names[i]!r}" if names else f"parameter {i}"
            raise InvalidParameterError(
                f"Muon only supports 2D parameters (matrices): {owner} got {what} of shape "
                f"{tuple(p.shape)} in param group {index}. Muon is for hidden weight matrices; "
                "give biases, norms, embeddings, the output head and conv filters to AdamW, "
                "e.g. with descend.muon_defaults(model) or descend.partition(...)."
            )


class Muon(_Named):
    r"""Muon: momentum, orthogonalized by Newton–Schulz, for the hidden weight matrices.

    A drop-in ``torch.optim.Muon``: same arguments, defaults, errors and state dict
    (``momentum_buffer`` per parameter). Every parameter must be a matrix.

    .. math::
        b_t &= \mu\, b_{t-1} + (1-\mu)\, g_t \qquad (b_0 = 0)\\
        \tilde b_t &= (1-\mu)\, g_t + \mu\, b_t \ \text{(nesterov)} \quad\text{else}\quad b_t\\
        O_t &= \mathrm{NS}^{(a,b,c)}_K(\tilde b_t;\ \epsilon) \approx U V^\top
              \quad (\tilde b_t = U S V^\top)\\
        \theta_t &= \theta_{t-1} - \eta\,\lambda\,\theta_{t-1} - \eta\, r(A, B)\, O_t

    Symbols: :math:`\eta` ``lr``, :math:`\lambda` ``weight_decay`` (decoupled, scaled by the
    unadjusted :math:`\eta`), :math:`\mu` ``momentum``, ``nesterov``, :math:`(a,b,c)`
    ``ns_coefficients``, :math:`K` ``ns_steps``, :math:`\epsilon` ``eps``;
    :math:`r(A, B)` for an :math:`A\times B` matrix is ``adjust_lr_fn``'s ratio:
    :math:`\sqrt{\max(1, A/B)}` (``None``/``"original"``) or :math:`0.2\sqrt{\max(A, B)}`
    (``"match_rms_adamw"``). Chain: ema_trace → orthogonalize → scale_by_shape →
    add_decayed_weights → scale_by_lr.

    .. warning:: **Conventions differ.**

       - *Newton–Schulz dtype*: bfloat16 for every parameter dtype (float64 included), as
         torch and Keller Jordan's reference do; ``descend.Optimizer(params,
         chain(ema_trace(), orthogonalize(dtype=None), ...))`` runs it in the parameter's.
       - *Learning-rate scale*: torch's default (``adjust_lr_fn=None``) is Keller Jordan's
         :math:`\sqrt{\max(1, A/B)}`, with his learning rate in units of spectral norm per
         step (his default 0.02); torch's default ``lr=1e-3`` is far smaller. Moonshot's
         ``"match_rms_adamw"`` makes AdamW's learning rate and weight decay carry over.
       - *Defaults*: torch ``lr=1e-3, weight_decay=0.1``; Keller Jordan's ``Muon``
         ``lr=0.02, weight_decay=0``; ``descend.muon_defaults`` uses his README's 0.02 and 0.01.
       - *Nesterov*: the EMA form :math:`(1-\mu) g + \mu b` of both references, not SGD's
         :math:`g + \mu b` (:func:`descend.optim.trace`). The normalization in
         Newton–Schulz divides by :math:`\max(\lVert\cdot\rVert_F, \epsilon)` (torch), not
         :math:`\lVert\cdot\rVert_F + \epsilon` (Keller Jordan).
       - *Shapes*: torch's Muon and this one take 2-D parameters only; Keller Jordan's
         flattens 4-D conv filters to ``(out, in * kh * kw)``.

    When not to use it: on anything but hidden weight matrices (embeddings, the output
    head, biases and norms train better with AdamW — use :func:`descend.muon_defaults`);
    and where matrix products dominate the step cost (small batches on a CPU), since each
    step costs :math:`K` rounds of three matrix products per parameter.

    Example:
        >>> import torch, descend
        >>> from descend.schedules import cosine
        >>> x = torch.tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True)
        >>> # Each step has spectral norm ~lr whatever the gradient: decay lr to settle.
        >>> opt = descend.Muon([x], lr=cosine(0.5, 100), weight_decay=0.0)
        >>> for _ in range(100):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> bool(x.abs().max() < 0.01)
        True

    References:
        Jordan et al., "Muon: An optimizer for hidden layers in neural networks", 2024.
        https://kellerjordan.github.io/posts/muon/ (code: https://github.com/KellerJordan/Muon).
        Liu et al., "Muon is Scalable for LLM Training", 2025. https://arxiv.org/abs/2502.16982
    """

    transform = _MUON
    check_group = staticmethod(require_matrices)

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
    ) -> None:
        super().__init__(
            params,
            type(self).transform,
            lr=lr,
            weight_decay=weight_decay,
            momentum=momentum,
            nesterov=nesterov,
            ns_coefficients=ns_coefficients,
            eps=eps,
            ns_steps=ns_steps,
            adjust_lr_fn=adjust_lr_fn,
        )

    def _check_params(self, group: dict[str, Any]) -> None:
        type(self).check_group(self._owner, group, len(self.param_groups) - 1)

    def _step_group(self, group: dict[str, Any], params: list[Tensor]) -> None:
        for p in params:
            if torch.is_complex(p):
                raise RuntimeError(
                    "Muon does not support complex parameters. Got a complex parameter of "
                    f"shape {tuple(p.shape)}; optimize its real and imaginary parts as a real "
                    "matrix (torch.view_as_real) or use AdamW."
                )
        super()._step_group(group, params)


def _require_matrices_or_filters(owner: str, group: dict[str, Any], index: int) -> None:
    require_matrices(owner, group, index, filters=True)


class FlatMuon(Muon):
    r"""Muon that also takes conv filters, orthogonalizing ``(out, in, kh, kw)`` as the
    matrix ``(out, in·kh·kw)``, as Keller Jordan's reference does (torch's Muon refuses
    them). Same arguments, defaults and state as :class:`Muon`; :math:`r(A, B)` is
    computed on the flattened shape.

    .. warning:: Keller Jordan's ``muon_update`` computes its shape ratio from the last two
       dimensions of the unflattened gradient (``kh / kw``, so 1 for a square kernel); this
       uses the flattened matrix's, which keeps ``"match_rms_adamw"`` at AdamW's RMS.

    Example:
        >>> import torch, descend
        >>> w = torch.randn(4, 2, 3, 3, requires_grad=True)
        >>> opt = descend.optim.FlatMuon([w], lr=0.02)
        >>> w.grad = torch.randn_like(w); opt.step()
        >>> opt.state[w]["momentum_buffer"].shape
        torch.Size([4, 2, 3, 3])
    """

    transform = _FLAT_MUON
    check_group = staticmethod(_require_matrices_or_filters)
