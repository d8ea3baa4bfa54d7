"""Optimizers with a train and an eval mode (Schedule-Free: the parameters hold the
gradient point :math:`y` in one and the averaged point :math:`x` in the other), switched
by loops that do not know which optimizer they drive (``fit``, ``minimize``)."""

from __future__ import annotations

from typing import Any


def has_modes(optimizer: Any) -> bool:
    """Whether ``optimizer`` has ``train()`` and ``eval()`` methods (descend's Schedule-Free
    classes, the ``schedulefree`` package's; ``torch.optim`` classes have neither)."""
    return callable(getattr(optimizer, "train", None)) and callable(
        getattr(optimizer, "eval", None)
    )


def train_mode(optimizer: Any) -> None:
    """``optimizer.train()`` where it has modes (before training steps); else nothing."""
    if has_modes(optimizer):
        optimizer.train()


def eval_mode(optimizer: Any) -> None:
    """``optimizer.eval()`` where it has modes (before evaluating or saving); else nothing."""
    if has_modes(optimizer):
        optimizer.eval()
