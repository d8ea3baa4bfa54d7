"""An exponential moving average of the weights (Polyak averaging), kept for evaluation."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from descend.optim._constraints import UNIT_OPEN
from descend.optim.compose import chain
from descend.optim.transform import Hyper, State, Transform, picklable


@picklable
def ema(inner: Transform, decay: float = 0.999) -> Transform:
    r"""Run ``inner`` and keep an exponential moving average of the weights it produces.

    The average does not change the descent: the parameters follow ``inner`` exactly. It is
    a second copy of the weights, for evaluation (``with descend.optim.averaged_weights(opt):``
    swaps it in; :func:`~descend.optim.averaged_weights`):

    .. math::
        \theta_t &= \theta_{t-1} + T(g_t) \qquad \text{(the inner rule's step)}\\
        \bar\theta_1 &= \theta_1, \qquad
        \bar\theta_t = \beta\,\bar\theta_{t-1} + (1 - \beta)\,\theta_t \quad (t > 1)

    Symbols: :math:`\beta` is the group key ``ema_decay`` (the factory's ``decay`` is its
    default), :math:`t` each parameter's update count ``step``. State ``ema``
    (:math:`\bar\theta`; before the first update, a copy of the parameter). This is
    ``torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))``
    with ``update_parameters(model)`` called after every step — the same numbers, bit for
    bit — without a second module, and saved with the optimizer's state dict.

    .. warning:: Only parameters are averaged. Buffers (BatchNorm's running statistics)
       are the model's own when the average is swapped in; ``AveragedModel`` keeps the
       buffers it copied at construction unless ``use_buffers=True``. To recompute
       BatchNorm statistics for the averaged weights, call
       ``torch.optim.swa_utils.update_bn(loader, model)`` inside ``averaged_weights``.
       Some libraries (timm's ``ModelEmaV3``, torch_ema) warm the decay up over the first
       steps; this one, as torch's, does not.

    Args:
        inner: the rule that trains the parameters.
        decay: :math:`\beta`, in [0, 1).

    Example:
        >>> import torch, descend
        >>> from descend.optim import averaged_weights, chain, ema, scale_by_lr
        >>> x = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = descend.Optimizer([x], ema(scale_by_lr(), decay=0.9), lr=0.1)
        >>> for _ in range(300):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> with averaged_weights(opt):
        ...     bool(x.abs().max() < 1e-2)
        True

    References:
        Polyak & Juditsky, "Acceleration of Stochastic Approximation by Averaging", SIAM J.
        Control Optim. 30(4), 1992. https://doi.org/10.1137/0330046
        PyTorch, ``torch.optim.swa_utils``. https://pytorch.org/docs/stable/optim.html#weight-averaging-swa-and-ema
    """
    # The average reads the weights the step made (Transform.after): inner lands its
    # step in place by its own shortest way (AdamW's mul_ and addcdiv_), then the average
    # takes one pass, as AveragedModel.update_parameters after the step.
    return dataclasses.replace(chain(inner, _average(decay)), name=f"ema({inner.name})")


def _blend(average: list[Tensor], new: list[Tensor], hp: Hyper) -> None:
    """average <- new on each tensor's first update, else lerp(average, new, 1 - decay)."""
    rest, steps = 1 - hp["ema_decay"], hp["step"]
    if not isinstance(steps[0], Tensor):
        # lerp with weight 1 is the new weights exactly: torch's lerp computes
        # end - (end - start)(1 - w) for w >= 0.5.
        torch._foreach_lerp_(average, new, [1.0 if s == 1 else rest for s in steps])
        return
    # Compiled or differentiable steps count in 0-d tensors: select, do not branch. The
    # average is for evaluation: a differentiable step does not record it.
    for a, theta, s in zip(average, new, steps, strict=True):
        theta = theta.detach()
        a.copy_(torch.where(s == 1, theta, torch.lerp(a, theta, rest)))


@picklable
def _average(decay: float) -> Transform:
    """The moving average, as the last link of a chain (its input is the inner rule's update,
    so the new weights are ``params + updates``, computed as the optimizer will add them)."""

    def init(params: list[Tensor], hp: Hyper) -> State:
        return {"ema": [p.detach().clone() for p in params]}

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        _blend(state["ema"], torch._foreach_add(params, grads), hp)
        return grads

    def after(state: State, params: list[Tensor], hp: Hyper) -> None:
        _blend(state["ema"], params, hp)

    return Transform(
        init,
        update,
        {"ema_decay": decay},
        {"ema_decay": UNIT_OPEN},
        True,
        "ema",
        elementwise=True,
        after=after,
    )
