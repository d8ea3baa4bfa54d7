"""Evaluate a model with weights an optimizer keeps beside the parameters (the moving
average of :func:`~descend.optim.ema`, Lookahead's slow weights)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from descend._validation import InvalidParameterError


@contextlib.contextmanager
def averaged_weights(optimizer: torch.optim.Optimizer, key: str = "ema") -> Iterator[None]:
    """Swap ``optimizer.state[p][key]`` into every parameter ``p`` for the ``with`` block,
    and swap back on leaving it (also on an exception).

    The swap is in place (each parameter's storage is kept, so a model, its hooks and
    ``torch.compile``'d modules see the averaged values) and exchanges values one tensor
    at a time, so it needs one tensor's worth of extra memory, not a copy of the model.
    Parameters that have no ``key`` in their state (not yet stepped) keep their values;
    a ``key`` that no parameter's state has, once the optimizer has stepped, is an error.

    Args:
        optimizer: the optimizer that keeps the weights (a descend chain with
            :func:`~descend.optim.ema` or :func:`~descend.optim.lookahead`).
        key: the state entry: ``"ema"`` (the moving average) or ``"slow_params"``
            (Lookahead's slow weights).

    Example:
        >>> import torch, descend
        >>> from descend.optim import AdamW, averaged_weights, ema
        >>> model = torch.nn.Linear(3, 1)
        >>> opt = descend.Optimizer(model.parameters(), ema(AdamW.transform), lr=1e-2,
        ...                         weight_decay=1e-2, decoupled_weight_decay=True)
        >>> model(torch.ones(3)).sum().backward(); opt.step()
        >>> with averaged_weights(opt):
        ...     evaluated = model(torch.ones(3))  # the averaged weights
        >>> # here the training weights are back

    .. warning:: Do not step the optimizer inside the block: the state would hold the
       training weights there, and the step would update the averaged ones.
    """
    pairs = [
        (p, state[key])
        for group in optimizer.param_groups
        for p in group["params"]
        if key in (state := optimizer.state.get(p, {}))
    ]
    if not pairs and optimizer.state:
        # A stepped optimizer without the entry: a wrong key, or no ema/lookahead in its rule.
        keys = sorted({k for st in optimizer.state.values() for k in st})
        raise InvalidParameterError(
            f"The 'key' parameter of averaged_weights must name a per-parameter state entry "
            f"of the optimizer, one of {keys}. Got {key!r} instead."
        )
    _swap(pairs)
    try:
        yield
    finally:
        _swap(pairs)


@torch.no_grad()
def _swap(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    for p, other in pairs:
        kept = p.detach().clone()
        p.copy_(other)
        other.copy_(kept)
