"""What torch.optim checks besides hyperparameters: its execution flags (``foreach``,
``fused``, ``capturable``, ``differentiable``) with their defaults, allowed values and
torch's refusals; the group keys that are bookkeeping; and the parameters given (none,
or one in two groups), each refusal in descend's words with torch's added."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend._validation import BOOL, InvalidParameterError, OneOf

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
# position in a learning-rate schedule and the route of a partitioned optimizer
# (descend.optim.partition).
BOOKKEEPING_KEYS = {"params", "param_names", "initial_lr", "lr_schedule_step", "route"}


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


def refuse_empty(owner: str, params: Any) -> None:
    if isinstance(params, list | tuple) and not params:
        raise InvalidParameterError(
            f"The 'params' argument of {owner} must be a non-empty iterable of tensors or "
            "of param-group dicts. Got an empty list instead. (torch.optim: optimizer got "
            "an empty parameter list)"
        )


def refuse_shared(owner: str, groups: list[dict[str, Any]], params: list[Any]) -> None:
    """A new group's parameters must not be in an earlier group."""
    seen = {id(p): i for i, g in enumerate(groups) for p in g["params"]}
    for p in params:
        p = p[1] if isinstance(p, tuple) else p  # (name, tensor) pairs
        if id(p) in seen:
            raise InvalidParameterError(
                f"The 'params' of param group {len(groups)} of {owner} must not contain a "
                f"parameter of another group. Got a parameter of shape {tuple(p.shape)} that "
                f"is already in group {seen[id(p)]} instead. (torch.optim: some parameters "
                "appear in more than one parameter group)"
            )


def refuse_sparse(owner: str, params: list[Tensor], grads: list[Tensor]) -> None:
    """For a rule without sparse gradients: torch's refusal, with what to use instead."""
    if any(g.is_sparse for g in grads):
        raise RuntimeError(
            f"{owner} does not support sparse gradients. Got a sparse gradient for a "
            f"parameter of shape {tuple(params[0].shape)}; use torch.optim.SparseAdam, "
            "descend.SGD or descend.Adagrad, or dense embeddings (sparse=False)."
        )
