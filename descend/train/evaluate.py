"""The loss and metrics of a model over a whole data set, in eval mode and without gradients."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch

from descend.train.batching import Batches
from descend.train.modes import eval_mode

if TYPE_CHECKING:
    from descend.train.state import TrainState

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


def end_epoch(
    state: TrainState,
    train: Batches,
    val: Batches | None,
    loss: Callable[[Any, Any], torch.Tensor],
    metrics: dict[str, Metric],
    eval_train: bool,
    start: float,
    evaluator: Callable[..., dict[str, float]] = evaluate,
) -> None:
    """Append the epoch row: train and validation loss and metrics (Schedule-Free's at x)."""
    eval_mode(state.optimizer)
    row: dict[str, float] = {"epoch": state.epoch, "step": state.step}
    if eval_train:
        row.update(evaluator(state.model, train, loss, metrics, prefix="train"))
    else:
        losses = [r["loss"] for r in state.history.steps[-train.n_batches :]]
        row["train_loss"] = sum(losses) / len(losses)
    if val is not None:
        row.update(evaluator(state.model, val, loss, metrics, prefix="val"))
    row["time"] = time.perf_counter() - start
    state.history.epochs.append(row)
