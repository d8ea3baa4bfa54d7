"""torch.optim's execution flags (``foreach``, ``fused``, ``capturable``,
``differentiable``): their defaults, allowed values and torch's refusals, and the group
keys that are bookkeeping rather than hyperparameters."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend._validation import BOOL, OneOf

# Settings torch.optim keeps in every param group that select an execution path rather
# than the algorithm, with torch's defaults.
EXECUTION_DEFAULTS = {"foreach": None, "fused": None, "capturable": False, "differentiable": False}
EXECUTION_CONSTRAINTS = {
    "foreach": OneOf((None, True, False)),
    "fused": OneOf((None, True, False)),
    "capturable": BOOL,
    "differentiable": BOOL,
}
# Group keys that are not hyperparameters: torch's own bookkeeping and descend's
# position in a learning-rate schedule.
BOOKKEEPING_KEYS = {"params", "param_names", "initial_lr", "lr_schedule_step"}


def scalar_dtype() -> torch.dtype:
    # The dtype torch.optim uses for ``state["step"]``, so state dicts load both ways.
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def check_flags(owner: str, values: dict[str, Any], *, has_kernel: bool) -> None:
    """torch's refusals of ``fused=True`` with ``differentiable`` or ``foreach``, in its
    words; and descend's for an optimizer that has no fused kernel."""
    if not values.get("fused"):
        return
    if values.get("differentiable"):
        raise RuntimeError("`fused` does not support `differentiable`")
    if values.get("foreach"):
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
    if not has_kernel:
        raise RuntimeError(
            f"{owner} has no fused kernel: fused=True is for SGD, Adagrad, Adam and AdamW. "
            "Got fused=True; pass compile=True to compile any chain instead."
        )


def as_number(value: Any) -> Any:
    # torch.optim reads tensor hyperparameters as numbers on its for-loop path.
    if isinstance(value, Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, tuple) and any(isinstance(v, Tensor) for v in value):
        return tuple(as_number(v) for v in value)
    return value
