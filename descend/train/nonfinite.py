"""What the loop does when a loss or a gradient is NaN or infinite: raise, skip, or roll back."""

from __future__ import annotations

import copy
from typing import Any

import torch

POLICIES = ("raise", "skip", "rollback")


class NonFiniteError(FloatingPointError):
    """A non-finite loss or gradient met with ``on_nonfinite="raise"``.

    Attributes:
        step: the 1-based update at which it happened.
        where: ``"loss"``, the name of the first parameter whose gradient is
            non-finite, or ``"gradient norm"`` when only the norm overflowed.
    """

    def __init__(self, step: int, where: str, value: float) -> None:
        self.step = step
        self.where = where
        what = (
            "the loss"
            if where == "loss"
            else (
                "the gradient norm"
                if where == "gradient norm"
                else f"the gradient of parameter {where!r}"
            )
        )
        super().__init__(
            f"At step {step}, {what} is {value} (not finite). The learning rate may be too large; "
            "fit(..., on_nonfinite='skip' or 'rollback') continues past such steps."
        )


def locate(
    model: torch.nn.Module, step: int, loss: float, grad_norm: float | None
) -> NonFiniteError:
    """The error naming the loss, else the first parameter with a non-finite gradient."""
    if not torch.isfinite(torch.tensor(loss)):
        return NonFiniteError(step, "loss", loss)
    for name, p in model.named_parameters():
        if p.grad is not None and not bool(torch.isfinite(p.grad).all()):
            bad = p.grad[~torch.isfinite(p.grad)].flatten()[0].item()
            return NonFiniteError(step, name, bad)
    return NonFiniteError(step, "gradient norm", grad_norm)


class Rollback:
    """The last good model and optimizer state, kept in memory for ``on_nonfinite="rollback"``.

    :meth:`save` is called before every update (a copy of the parameters and the
    optimizer state: the price of this policy); :meth:`restore` brings that state
    back and halves the learning rate scale.
    """

    def __init__(self) -> None:
        self._model: dict[str, torch.Tensor] | None = None
        self._optimizer: dict[str, Any] | None = None

    def save(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self._model = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self._optimizer = copy.deepcopy(optimizer.state_dict())

    def restore(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any = None
    ) -> bool:
        """Load the saved state back and halve every learning rate; ``False`` if nothing was saved.

        A torch ``LRScheduler``'s ``base_lrs`` are halved too, so closed-form
        schedulers keep the lower rate.
        """
        if self._model is None or self._optimizer is None:
            return False
        model.load_state_dict(self._model)
        lrs = [g["lr"] for g in optimizer.param_groups]
        optimizer.load_state_dict(copy.deepcopy(self._optimizer))
        # The snapshot's learning rates are those of an update ago; keep the current ones, halved.
        for g, lr in zip(optimizer.param_groups, lrs, strict=True):
            g["lr"] = lr * 0.5
        if scheduler is not None and hasattr(scheduler, "base_lrs"):
            scheduler.base_lrs = [lr * 0.5 for lr in scheduler.base_lrs]
        return True
