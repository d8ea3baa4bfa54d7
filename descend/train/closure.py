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


def check_closure_step(
    optimizer: torch.optim.Optimizer, precision: str, world: int, clipping: bool = False
) -> None:
    """Refuse what a closure step cannot do in ``fit``: float16 (torch's GradScaler takes no
    closure), LBFGS on several processes (its line search decides from each rank's own
    share of the loss how many times to evaluate it, and the ranks must agree), and LBFGS
    with gradient clipping (its step computes the gradient again through the closure, so
    a clipped first gradient is never used, and its line search needs the true one)."""
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
    if clipping and isinstance(optimizer, torch.optim.LBFGS):
        raise InvalidParameterError(
            "Gradient clipping (clip_grad_norm= or a GradientClipping callback) has no effect "
            "on LBFGS: its step computes the gradient again through the closure, and its "
            "line search needs the true gradient. Remove the clipping, or use another optimizer."
        )


def batch_closure(
    optimizer: torch.optim.Optimizer,
    forward: Callable[[], torch.Tensor],
    after_backward: Callable[[torch.Tensor], None] | None = None,
) -> Callable[[], Any]:
    """A closure that clears the gradients, computes the batch loss with ``forward()`` (the
    same batch, at the weights of the moment) and its gradients, calls
    ``after_backward(loss)`` (``fit``: clip them as the first gradient was), and returns
    the loss."""

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        value = forward()
        value.backward()
        if after_backward is not None:
            after_backward(value)
        return value

    return closure
