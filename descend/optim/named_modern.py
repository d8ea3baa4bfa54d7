"""Optimizers torch.optim does not have, from their papers and reference packages: Lion,
AdEMAMix and LAMB, each one a chain of transforms with a torch-like signature."""

from __future__ import annotations

from torch import Tensor

from descend.optim.compose import chain
from descend.optim.named import Params, _Named
from descend.optim.transforms import (
    add_decayed_weights,
    maximize,
    scale_by_adam,
    scale_by_ademamix,
    scale_by_lion,
    scale_by_lr,
    scale_by_trust_ratio,
)

_LION = chain(maximize(), scale_by_lion(), add_decayed_weights(), scale_by_lr())
_ADEMAMIX = chain(maximize(), scale_by_ademamix(), add_decayed_weights(), scale_by_lr())
_LAMB = chain(
    maximize(), scale_by_adam(), add_decayed_weights(), scale_by_trust_ratio(), scale_by_lr()
)


class _Modern(_Named):
    # No torch.optim class to mirror: a group holds every hyperparameter the chain reads.
    _torch_layout = False


class Lion(_Modern):
    r"""Lion (EvoLved Sign Momentum): the sign of an interpolation of momentum and gradient.

    .. math::
        g_t &\leftarrow \pm\nabla L(\theta_{t-1})\\
        c_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t\\
        \theta_t &= \theta_{t-1} - \eta\left(\operatorname{sign}(c_t) + \lambda\theta_{t-1}\right)

    Symbols: :math:`\eta` ``lr`` (default 1e-4), :math:`(\beta_1,\beta_2)` ``betas``
    (default (0.9, 0.99)), :math:`\lambda` ``weight_decay`` (decoupled, multiplied by
    :math:`\eta` as in AdamW and the paper); ``maximize`` flips the sign of the gradient.
    Chain: maximize → scale_by_lion → add_decayed_weights → scale_by_lr. One state tensor
    (``exp_avg``), half of AdamW's. Defaults and state layout are ``lion-pytorch``'s.

    The paper's advice: an ``lr`` 3-10x smaller than AdamW's and a ``weight_decay`` 3-10x
    larger (the decay's strength is :math:`\eta\lambda`); its gain over AdamW grows with the
    batch size, and it is no better at small batches.

    .. warning:: ``lion-pytorch``'s ``decoupled_weight_decay=True`` (decay divided by the
       initial lr, so that it stays fixed under a schedule) is not offered: scale
       ``weight_decay`` by hand for it.

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = descend.Lion([x], lr=0.01)
        >>> for _ in range(500):  # past 0 at step 200, back while the momentum turns
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> bool(x.abs().max() < 1e-2)
        True

    References:
        Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023,
        Algorithm 2. https://arxiv.org/abs/2302.06675
        Reference implementation: lion-pytorch, https://github.com/lucidrains/lion-pytorch
    """

    transform = _LION

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        super().__init__(
            params,
            _LION,
            lr=lr,
            betas=betas,
            weight_decay=weight_decay,
            maximize=maximize,
            foreach=foreach,
            differentiable=differentiable,
            capturable=capturable,
        )


class AdEMAMix(_Modern):
    r"""AdEMAMix: Adam whose numerator adds a slow exponential moving average of gradients.

    .. math::
        g_t &\leftarrow \pm\nabla L(\theta_{t-1})\\
        m^{(1)}_t &= \beta_1 m^{(1)}_{t-1} + (1-\beta_1) g_t, \quad
        m^{(2)}_t = \beta_3^{(t)} m^{(2)}_{t-1} + (1-\beta_3^{(t)}) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2\\
        \theta_t &= \theta_{t-1} - \eta\left(\frac{m^{(1)}_t/(1-\beta_1^t) + \alpha_t m^{(2)}_t}
            {\sqrt{v_t/(1-\beta_2^t)} + \epsilon} + \lambda\theta_{t-1}\right)\\
        \alpha_t &= \min(t\alpha/T_\alpha,\ \alpha), \qquad
        \beta_3^{(t)} = \min\!\left(\exp\frac{\ln\beta_1\ln\beta_3}
            {(1-t/T_{\beta_3})\ln\beta_3 + (t/T_{\beta_3})\ln\beta_1},\ \beta_3\right)

    Symbols: :math:`\eta` ``lr`` (1e-3), :math:`(\beta_1,\beta_2,\beta_3)` ``betas``
    ((0.9, 0.999, 0.9999)), :math:`\alpha` ``alpha`` (2.0), :math:`T_\alpha`
    ``alpha_warmup`` and :math:`T_{\beta_3}` ``beta3_warmup`` (``None``: no warmup, the
    final value from the first step), :math:`\epsilon` ``eps``, :math:`\lambda`
    ``weight_decay`` (decoupled, as AdamW). Signature, defaults and state names
    (``exp_avg_fast``, ``exp_avg_slow``, ``exp_avg_sq``) are the authors' code's
    (apple/ml-ademamix); ``pytorch-optimizer``'s ``t_alpha_beta3=T`` is
    ``alpha_warmup=beta3_warmup=T`` here. Chain: maximize → scale_by_ademamix →
    add_decayed_weights → scale_by_lr. Three state tensors (AdamW's two and the slow one).

    The paper's recipe for long runs: ``alpha`` in [4, 10] (its README uses 8), and both
    warmups as long as the whole run; without the warmups a large ``alpha`` and
    :math:`\beta_3` destabilise the start. It pays off over many steps (the slow average
    remembers gradients for ~10k steps), not on short runs.

    .. warning:: ``pytorch-optimizer``'s ``AdEMAMix`` defaults to ``alpha=5`` and coupled
       (L2) weight decay (``weight_decouple=False``); the authors' code and this class use
       ``alpha=2`` and decoupled decay. Its step count is per param group; here, as in the
       authors' code and torch.optim, per parameter.

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> # A slow average over ~100 steps (beta3 = 0.99) for a 500-step problem.
        >>> opt = descend.AdEMAMix([x], lr=0.05, betas=(0.9, 0.999, 0.99))
        >>> for _ in range(500):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> bool(x.abs().max() < 1e-2)
        True

    References:
        Pagliardini, Ablin & Grangier, "The AdEMAMix Optimizer: Better, Faster, Older",
        2024. https://arxiv.org/abs/2409.03137
        Authors' code: https://github.com/apple/ml-ademamix
    """

    transform = _ADEMAMIX

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float, float] = (0.9, 0.999, 0.9999),
        alpha: float = 2.0,
        beta3_warmup: int | None = None,
        alpha_warmup: int | None = None,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        super().__init__(
            params,
            _ADEMAMIX,
            lr=lr,
            betas=betas,
            alpha=alpha,
            beta3_warmup=beta3_warmup,
            alpha_warmup=alpha_warmup,
            eps=eps,
            weight_decay=weight_decay,
            maximize=maximize,
            foreach=foreach,
            differentiable=differentiable,
            capturable=capturable,
        )


class LAMB(_Modern):
    r"""LAMB: Adam's update, plus decoupled decay, rescaled per tensor to the tensor's norm.

    .. math::
        g_t &\leftarrow \pm\nabla L(\theta_{t-1})\\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2\\
        r_t &= \frac{m_t/(1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon} + \lambda\theta_{t-1}\\
        \theta_t &= \theta_{t-1} - \eta\,\frac{\min(\lVert\theta_{t-1}\rVert, c)}
            {\lVert r_t\rVert + \epsilon}\, r_t \qquad \text{(per tensor; ratio 1 where a norm is 0)}

    Symbols: :math:`\eta` ``lr`` (1e-3), :math:`(\beta_1,\beta_2)` ``betas``
    ((0.9, 0.999)), :math:`\epsilon` ``eps`` (1e-6), :math:`\lambda` ``weight_decay`` (0),
    :math:`c` ``clamp_value`` (10; ``inf`` for none). This is the paper's Algorithm 2
    (version 5 of the arXiv paper) with the cap :math:`\phi(z) = \min(z, 10)` and the
    :math:`\epsilon` of ``pytorch-optimizer``. Chain: maximize → scale_by_adam →
    add_decayed_weights → scale_by_trust_ratio → scale_by_lr. State as torch's Adam
    (``step``, ``exp_avg``, ``exp_avg_sq``); its param groups also carry
    ``scale_by_adam``'s ``amsgrad`` (False; True gives LAMB over AMSGrad's maximum).

    Made for large-batch training (BERT at batch 64k); at ordinary batch sizes AdamW is
    as good and simpler. Give biases and norm weights their own group with
    ``weight_decay=0``, as the paper does.

    .. warning:: ``pytorch-optimizer``'s ``Lamb`` differs by default: it bias-corrects
       the first moment only, by dividing the whole step by :math:`1-\beta_1^t` (10x the
       paper's first step), leaves :math:`v` uncorrected, and decays the weights outside
       the ratio (``weight_decouple=True``). Its ``weight_decouple=False`` puts the decay
       inside the ratio, as here; with ``betas=(0, 0)`` (no averages to correct) the two
       compute the same steps, which the tests check.

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = descend.LAMB([x], lr=0.02)
        >>> for _ in range(500):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> bool(x.abs().max() < 2e-2)  # steps of lr * |x|: a geometric approach
        True

    References:
        You et al., "Large Batch Optimization for Deep Learning: Training BERT in 76
        minutes", ICLR 2020. https://arxiv.org/abs/1904.00962
    """

    transform = _LAMB

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        clamp_value: float = 10.0,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        super().__init__(
            params,
            _LAMB,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            clamp_value=clamp_value,
            maximize=maximize,
            foreach=foreach,
            differentiable=differentiable,
            capturable=capturable,
        )
