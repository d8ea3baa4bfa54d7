"""How updates reach the parameters: ``apply_updates`` (the whole eager or compiled step
of a transform) and the fold of a quotient into torch's in-place ``mul_``/``addcdiv_``.

A rule of the form :math:`u = n/d` (Adam's :math:`m/(\\sqrt{v}+\\epsilon)`), followed by
decoupled decay and the learning rate, changes the parameters by

.. math::
    \theta \\leftarrow \theta\\,(1 - \\eta\\lambda) - \\eta\\, \frac{n}{d}

Written as separate transforms it materializes :math:`n/d`, then :math:`n/d + \\lambda\theta`,
then adds :math:`-\\eta` times that: three passes over memory where torch's for-loop makes
two (``param.mul_``, ``param.addcdiv_``). A chain whose tail has that shape for the
current hyperparameters (:attr:`Transform.fold`) runs torch's two; the numbers differ
only in rounding (``tests/optim/test_execution.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from descend.optim.transform import (
    FoldFn,
    Hyper,
    QuotientFn,
    State,
    Transform,
    UpdateFn,
    scalars_like,
    unchanged,
)


def from_quotient(quotient: QuotientFn) -> UpdateFn:
    """The update :math:`n / d / c` of a ``quotient`` function (see :class:`Transform`)."""

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        num, den, divisors = quotient(grads, state, params, hp)
        if den is None:  # a plain direction (Lion's sign): the transform's own tensors
            return num
        out = torch._foreach_div(num, den)
        if divisors is not None:
            torch._foreach_div_(out, scalars_like(divisors, out))
        return out

    return update


def fold_of(transforms: Sequence[Transform]) -> FoldFn | None:
    """The chain's :attr:`Transform.fold`, when it ends in :func:`scale_by_lr` (a chain
    nested last in another does not fold: its own ``split`` still saves one pass)."""
    last = transforms[-1]
    split = last.shortcut("split")
    if split is None or split[0] is not unchanged or len(transforms) < 2:
        return None
    head = list(transforms[:-1])

    def fold(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper):
        plan = _fold_plan(head, hp)
        if plan is None:
            return None
        at, decay = plan
        for t in head[:at]:
            grads = t.update(grads, state, params, hp)
        num, den, divisors = head[at].quotient(grads, state, params, hp)  # type: ignore[misc]
        return num, den, divisors, 0 if decay is None else decay(hp)

    return fold


def _fold_plan(
    head: list[Transform], hp: Hyper
) -> tuple[int, Callable[[Hyper], Any] | None] | None:
    """Where ``head`` (a chain without its final ``scale_by_lr``) ends, for ``hp``, in
    ``quotient → [passthroughs] → [decay] → [passthroughs]``: the quotient's index and the
    decay's rule, or ``None``."""

    def skip(i: int) -> int:
        while i >= 0 and (passes := head[i].shortcut("passthrough")) is not None and passes(hp):
            i -= 1
        return i

    i, decay = skip(len(head) - 1), None
    if i >= 0 and head[i].shortcut("decay") is not None:
        decay, i = head[i].decay, skip(i - 1)
    if i < 0 or head[i].shortcut("quotient") is None:
        return None
    return i, decay


def apply_updates(
    transform: Transform, grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper
) -> None:
    """``params += update(grads)``: the whole step in one function, so that compile=True
    compiles exactly what eager runs. A chain ending in ``-lr * u`` adds ``u`` with
    ``alpha=-lr`` (one pass over the parameters, not two) when ``lr`` is a number and
    autograd is not recording the step; one that folds (:attr:`Transform.fold`: Adam,
    AdamW, Adagrad, RMSprop) decays the parameters in place and adds its quotient with
    ``addcdiv_``, as torch's for-loop does."""
    if transform.shortcut("split") is not None and not torch.is_grad_enabled():
        unscaled, name = transform.split
        h = hp[name]
        if not isinstance(h, Tensor):
            folded = None
            if transform.shortcut("fold") is not None and not any(g.is_sparse for g in grads):
                folded = transform.fold(grads, state, params, hp)
            if folded is None:
                torch._foreach_add_(params, unscaled(grads, state, params, hp), alpha=-h)
                return
            num, den, divisors, decay = folded
            if isinstance(decay, Tensor) or decay != 0:
                # theta (1 - h lambda) first: the decay is of the parameters before the step.
                torch._foreach_mul_(params, 1 - h * decay)
            if den is None:
                torch._foreach_add_(params, num, alpha=-h)
            elif divisors is None:
                torch._foreach_addcdiv_(params, num, den, value=-h)
            elif any(isinstance(c, Tensor) for c in divisors):  # capturable step counts
                update = torch._foreach_div(num, den)
                torch._foreach_div_(update, scalars_like(divisors, update))
                torch._foreach_add_(params, update, alpha=-h)
            else:
                torch._foreach_addcdiv_(params, num, den, [-h / c for c in divisors])
            return
    torch._foreach_add_(params, transform.update(grads, state, params, hp))
