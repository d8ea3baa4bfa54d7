"""The loss and metrics of a model over a whole data set, in eval mode and without gradients."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from descend.train.batching import Batches

Metric = Callable[[Any, Any], Any]


def evaluate(
    model: torch.nn.Module,
    batches: Batches,
    loss: Metric,
    metrics: Mapping[str, Metric],
    *,
    prefix: str,
) -> dict[str, float]:
    """``{prefix_loss: ..., prefix_<metric>: ...}`` averaged over the set, weighted by chunk size.

    The weighted mean is exact for losses with ``reduction="mean"`` and for
    metrics that are means over samples (accuracy). The model goes to eval mode
    (dropout off, batch norm on running statistics) and back to the mode it had.
    """
    was_training = model.training
    model.eval()
    sums = {name: 0.0 for name in ("loss", *metrics)}
    try:
        with torch.no_grad():
            for x, y in batches.chunks():
                out = model(x)
                weight = len(y)
                sums["loss"] += float(loss(out, y)) * weight
                for name, fn in metrics.items():
                    sums[name] += float(fn(out, y)) * weight
    finally:
        model.train(was_training)
    return {f"{prefix}_{name}": total / batches.n for name, total in sums.items()}


def accuracy(output: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of rows whose arg-max class equals the target class index."""
    return float((output.argmax(dim=-1) == target).float().mean())
