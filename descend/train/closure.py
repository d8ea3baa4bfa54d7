"""Optimizers whose step takes a closure (``torch.optim.LBFGS``, ``descend.SAM``): which they
are, and the closure ``fit`` hands them — the same batch's loss and gradients again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from descend._validation import InvalidParameterError


def needs_closure(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer.step`` needs a closure to recompute the loss: LBFGS (its line
    search evaluates the loss again) and any optimizer that says so with a true
    ``requires_closure`` attribute (``descend.SAM``: its second gradient is taken at
    perturbed weights)."""
    return isinstance(optimizer, torch.optim.LBFGS) or bool(
        getattr(optimizer, "requires_closure", False)
    )


def check_closure_step(optimizer: torch.optim.Optimizer, precision: str, world: int) -> None:
    """Refuse what a closure step cannot do in ``fit``: float16 (torch's GradScaler takes no
    closure) and LBFGS on several processes (its line search decides from each rank's own
    share of the loss how many times to evaluate it, and the ranks must agree)."""
    name = type(optimizer).__name__
    if precision == "fp16":
        raise InvalidParameterError(
            f"{name} steps with a closure, which torch's float16 gradient scaler does not "
            "support. Got precision='fp16'; use 'bf16' or 'fp32'."
        )
    if world > 1 and isinstance(optimizer, torch.optim.LBFGS):
        raise InvalidParameterError(
            f"LBFGS cannot run on {world} processes in fit: its line search evaluates the "
            "loss a number of times that depends on each rank's own share of it. Run it on "
            "one process."
        )


def batch_closure(
    optimizer: torch.optim.Optimizer,
    forward: Callable[[], torch.Tensor],
) -> Callable[[], Any]:
    """A closure that clears the gradients, computes the batch loss with ``forward()`` (the
    same batch, at the weights of the moment) and its gradients, and returns the loss."""

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        value = forward()
        value.backward()
        return value

    return closure
