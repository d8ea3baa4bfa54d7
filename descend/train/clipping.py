"""The global gradient norm, and clipping by it."""

from __future__ import annotations

import math

import torch

from descend._validation import Interval, validate
from descend.train.callback import Callback
from descend.train.state import TrainState


def loss_and_grad_norm(loss: torch.Tensor, grads: list[torch.Tensor]) -> tuple[float, float]:
    r"""The loss and the global gradient norm :math:`\sqrt{\sum_i \lVert g_i \rVert^2}` as floats.

    One ``torch._foreach_norm`` over the gradients and a single device-to-host
    copy for the loss and all the norms together: the loop syncs once per update.
    The squares are summed in Python's float64, so large float32 gradients do not
    overflow the total; a NaN or infinite gradient gives a NaN or infinite norm.
    """
    norms = torch._foreach_norm(grads) if grads else []
    try:
        values = torch.stack([loss.detach(), *norms]).tolist()
    except RuntimeError:
        # Loss and gradients on several devices: one copy each.
        values = [loss.item(), *(n.item() for n in norms)]
    return values[0], math.sqrt(sum(v * v for v in values[1:]))


def clip_by_global_norm_(grads: list[torch.Tensor], max_norm: float, total: float) -> None:
    r"""Scale gradients in place so their global norm is at most ``max_norm``.

    .. math::
        g \leftarrow g \cdot \min\left(1, \frac{\text{max\_norm}}{\lVert g \rVert + 10^{-6}}\right)

    the rule of ``torch.nn.utils.clip_grad_norm_``, reusing an already computed
    ``total`` norm.
    """
    coef = max_norm / (total + 1e-6)
    if grads and coef < 1.0:
        torch._foreach_mul_(grads, coef)


class GradientClipping(Callback):
    """Clip the global gradient norm to ``max_norm`` before every update.

    The same as ``fit(..., clip_grad_norm=max_norm)``. The step rows keep the
    norm *before* clipping, so a run that clips often shows it.

    Args:
        max_norm: the largest global L2 norm allowed, ``> 0``.
    """

    def __init__(self, max_norm: float) -> None:
        validate(
            "GradientClipping",
            {"max_norm": max_norm},
            {"max_norm": Interval(0, None, closed="neither")},
        )
        self.max_norm = float(max_norm)

    def on_before_optimizer_step(self, state: TrainState) -> None:
        clip_by_global_norm_(state.grads, self.max_norm, state.grad_norm)
