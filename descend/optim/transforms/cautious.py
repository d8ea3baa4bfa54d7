"""Cautious updates: drop the coordinates of an update that move against the gradient."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from descend.optim.transform import Hyper, State, Sum, Transform, picklable


@picklable
def cautious(transform: Transform) -> Transform:
    r"""``transform`` with each coordinate of its update kept only where it agrees in sign
    with the gradient it was given, the rest rescaled to keep the update's size (Liang et
    al., 2024, Algorithm 1: "one line of code").

    .. math::
        u &= T(g) \\
        \phi &= \mathbb 1[u \odot g > 0] \\
        u &\leftarrow u \odot \phi\, \frac{d}{\textstyle\sum_i \phi_i + 1}

    per tensor, :math:`d` its number of elements. Wrap the part of a chain that turns
    gradients into a descent direction, before weight decay and the learning rate, so that
    decay is not masked (as the paper's C-AdamW and C-Lion, and ``pytorch-optimizer``'s
    ``cautious=True``): ``chain(maximize(), cautious(scale_by_adam()),
    add_decayed_weights(), scale_by_lr())``. The state and hyperparameters are
    ``transform``'s.

    .. warning:: The paper's rescaling is :math:`d / (\operatorname{nnz}(\phi) + 1)`
       (``pytorch-optimizer``, the paper's Lion code); the authors' C-Optim AdamW and timm
       later divide by the mask's mean floored at 1e-3, which differs by the ``+ 1``
       (relative :math:`1/\operatorname{nnz}`) and where almost everything is masked.

    Example:
        >>> import torch, descend
        >>> from descend.optim import cautious, chain, scale_by_adam, scale_by_lr
        >>> x = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = descend.Optimizer([x], chain(cautious(scale_by_adam()), scale_by_lr()), lr=0.1)
        >>> for _ in range(300):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> bool(x.abs().max() < 1e-2)
        True

    References:
        Liang, Chen, Liu & Liu, "Cautious Optimizers: Improving Training with One Line of
        Code", 2024. https://arxiv.org/abs/2411.16085
    """
    if transform.split is not None:
        raise ValueError(
            f"cautious() wraps the part of a chain before scale_by_lr (its update must point "
            f"along the gradient to be compared with it). Got {transform.name}, which ends "
            "in a learning-rate scaling; wrap the transforms before it instead."
        )

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        return _masked(transform.update(grads, state, params, hp), grads)

    inner = transform.shortcut("quotient")
    quotient = None
    if inner is not None:

        def quotient(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper):
            # u = n / (d c) with d >= 0 and c > 0 (Transform.quotient): u g has the sign of
            # n g (both 0 or NaN where d = 0 and n = 0), so the mask can be taken on n and
            # the quotient still land by addcdiv_ (no u materialized).
            num, den, divisors = inner(grads, state, params, hp)
            return _masked(num.made() if isinstance(num, Sum) else num, grads), den, divisors

    # Its own update: none of the inner transform's shortcuts but the quotient, masked.
    return dataclasses.replace(
        transform,
        update=update,
        name=f"cautious({transform.name})",
        quotient=quotient,
        passthrough=None,
        decay=None,
        factors=None,
        land=None,
        after=None,
        apply=None,
        declared_for=update,
    )


def _masked(u: list[Tensor], grads: list[Tensor]) -> list[Tensor]:
    """u where it agrees in sign with the gradient, times d / (nnz + 1), in new tensors."""
    # The mask is piecewise constant (no gradient in a differentiable step), and made
    # in one new tensor per parameter: u * g, then 1.0 where it is > 0 (in place).
    with torch.no_grad():
        mask = torch._foreach_mul(u, grads)
        for m in mask:
            m.gt_(0)
        # d / (nnz + 1), one number per tensor: the kept coordinates carry the size.
        torch._foreach_mul_(mask, [m.numel() / (m.sum() + 1) for m in mask])
    # u may be the inner transform's state (a momentum buffer): the mask takes the product.
    torch._foreach_mul_(mask, u)
    return mask
