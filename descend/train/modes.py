"""Training with an optimizer that has train and eval modes (Schedule-Free): where
``fit`` switches them, and the BatchNorm statistics that the switch leaves stale.

``fit`` calls ``optimizer.train()`` before every training step and ``optimizer.eval()``
before evaluating, before writing a checkpoint and when the run ends, so the model ends
at (and is evaluated and saved at) the averaged point :math:`x`. A resumed run loads a
checkpoint in eval mode and switches back before its first step, as the uninterrupted
run does after it saves: the two stay identical.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import torch

from descend._validation import Interval, Satisfies, validate
from descend.optim.modes import eval_mode, has_modes, train_mode

__all__ = ["eval_mode", "has_modes", "recompute_bn", "train_mode"]
_NONE = Satisfies(lambda v: v is None, "None")


@torch.no_grad()
def recompute_bn(
    model: torch.nn.Module,
    batches: Iterable[Any],
    optimizer: torch.optim.Optimizer | None = None,
    *,
    max_batches: int | None = 50,
) -> None:
    """Recompute the BatchNorm running statistics of ``model`` at its current weights.

    With Schedule-Free optimizers the running means and variances are collected during
    training, at the gradient point :math:`y`, but the model is evaluated at the average
    :math:`x` (after ``optimizer.eval()``): the statistics belong to other weights, and
    evaluation can be far worse than the model. This resets every BatchNorm layer and
    runs ``max_batches`` training batches forward in train mode (cumulative averages,
    ``momentum=None``, as ``torch.optim.swa_utils.update_bn``), with ``optimizer`` put in
    eval mode first when given; the model's mode and each layer's momentum are restored.

    Args:
        model: the model (moved nowhere; batches must be on its device).
        batches: an iterable of inputs, or of ``(input, target)`` pairs (the input is used).
        optimizer: put in eval mode first (the weights to take statistics at are ``x``).
        max_batches: how many batches to use (``None``: all).

    Example:
        >>> import torch, descend
        >>> from descend.train.modes import recompute_bn
        >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
        >>> opt = descend.ScheduleFreeAdamW(model.parameters())
        >>> recompute_bn(model, [torch.randn(16, 2) for _ in range(4)], opt)
        >>> int(model[1].num_batches_tracked)
        4
    """
    validate(
        "recompute_bn",
        {"max_batches": max_batches},
        {"max_batches": (Interval(1, None, closed="left", integer=True), _NONE)},
    )
    if optimizer is not None:
        eval_mode(optimizer)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = {m: m.momentum for m in norms}
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches given
    was_training = model.training
    model.train()
    try:
        for batch in itertools.islice(batches, max_batches):
            model(batch[0] if isinstance(batch, list | tuple) else batch)
    finally:
        model.train(was_training)
        for m, momentum in momenta.items():
            m.momentum = momentum
