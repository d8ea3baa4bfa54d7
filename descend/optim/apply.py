"""How updates reach the parameters: ``apply_updates`` (the whole eager or compiled step
of a transform) and a chain's in-place step (:attr:`Transform.apply`).

A rule of the form :math:`u = n/d` (Adam's :math:`m/(\\sqrt{v}+\\epsilon)`), followed by
decoupled decay and the learning rate, changes the parameters by

.. math::
    \\theta \\leftarrow \\theta\\,(1 - \\eta\\lambda) - \\eta\\, \\frac{n}{d}

Written as separate transforms it materializes :math:`n/d`, then :math:`n/d + \\lambda\\theta`,
then adds :math:`-\\eta` times that: three passes over memory where torch's for-loop makes
two (``param.mul_``, ``param.addcdiv_``). So a chain ends, where it can, in a *landing*
(:attr:`Transform.land`): the transform that moves the parameters (:func:`scale_by_lr`,
Schedule-Free's step) takes the direction as the quotient and decay the transforms before
it leave (``Folded``) and reaches the parameters with ``mul_``/``addcdiv_``. Transforms
after it that only act on the new parameters (an EMA of the weights, Lookahead's pull:
:attr:`Transform.after`) then act on them in place. The numbers differ from the separate
transforms' only in rounding (``tests/optim/test_execution.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from descend.optim.transform import (
    ApplyFn,
    Folded,
    Hyper,
    QuotientFn,
    State,
    Sum,
    Transform,
    UpdateFn,
    scalars_like,
)


def from_quotient(quotient: QuotientFn) -> UpdateFn:
    """The update :math:`n / d / c` of a ``quotient`` function (see :class:`Transform`)."""

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        num, den, divisors = quotient(grads, state, params, hp)
        if isinstance(num, Sum):
            num = num.made()
        if den is None:  # a plain direction (Lion's sign): the transform's own tensors
            return num
        out = torch._foreach_div(num, den)
        if divisors is not None:
            torch._foreach_div_(out, scalars_like(divisors, out))
        return out

    return update


def in_place(transforms: Sequence[Transform]) -> ApplyFn | None:
    """The in-place step of ``transforms`` run as a chain (:attr:`Transform.apply`), or
    ``None`` where it would save nothing.

    The transforms that act after the update (:attr:`Transform.after`) are split off the
    end; of the rest, the last that is not passed through for ``hp`` lands the direction
    the others make (:attr:`Transform.land`), or is itself a chain with an in-place step;
    otherwise the update is added whole. Then the ``after`` transforms run, in order.
    """
    end = len(transforms)
    while end > 0 and transforms[end - 1].shortcut("after") is not None:
        end -= 1
    body, afters = list(transforms[:end]), [t.after for t in transforms[end:]]
    if not body or (
        not afters and not any(t.shortcut("land") is not None or t.shortcut("apply") for t in body)
    ):
        return None

    def apply(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> None:
        last = len(body) - 1
        while (
            last > 0 and (passes := body[last].shortcut("passthrough")) is not None and passes(hp)
        ):
            last -= 1
        head, tail = body[:last], body[last]
        land, nested = tail.shortcut("land"), tail.shortcut("apply")
        if land is not None and not isinstance(hp[land[1]], Tensor):
            land[0](_direction(head, grads, state, params, hp), state, params, hp)
        elif nested is not None:
            for t in head:
                grads = t.update(grads, state, params, hp)
            nested(grads, state, params, hp)
        else:  # a tensor lr (a compiled step): the update, whole
            for t in body:
                grads = t.update(grads, state, params, hp)
            torch._foreach_add_(params, grads)
        for after in afters:
            after(state, params, hp)  # type: ignore[misc]

    return apply


def _direction(
    head: list[Transform], grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper
) -> Folded:
    """What ``head`` makes of ``grads``: its quotient and decay where it ends in them for
    ``hp`` (dense gradients only), else its update with no denominator and no decay."""
    plan = None if any(g.is_sparse for g in grads) else _fold_plan(head, hp)
    if plan is None:
        for t in head:
            grads = t.update(grads, state, params, hp)
        return grads, None, None, 0
    at, decay = plan
    for t in head[:at]:
        grads = t.update(grads, state, params, hp)
    num, den, divisors = head[at].quotient(grads, state, params, hp)  # type: ignore[misc]
    return num, den, divisors, 0 if decay is None else decay(hp)


def _fold_plan(
    head: list[Transform], hp: Hyper
) -> tuple[int, Callable[[Hyper], Any] | None] | None:
    """Where ``head`` (a chain without its landing) ends, for ``hp``, in
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


def updated(direction: Folded, params: list[Tensor]) -> list[Tensor]:
    """The update a :data:`Folded` direction stands for, :math:`n / d / c + \\lambda\\theta`,
    in new tensors (where a landing cannot fold it: tensor divisors or decay)."""
    num, den, divisors, decay = direction
    if isinstance(num, Sum):
        num = num.made()
    out = num if den is None else torch._foreach_div(num, den)
    if divisors is not None:  # (with a denominator: out is new)
        torch._foreach_div_(out, scalars_like(divisors, out))
    if isinstance(decay, Tensor) or decay != 0:
        out = [u + p * decay for u, p in zip(out, params, strict=True)]
    return out


def apply_updates(
    transform: Transform, grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper
) -> None:
    """``params += update(grads)``: the whole step in one function, so that compile=True
    compiles exactly what eager runs. Unless autograd records the step, a transform with an
    in-place step (:attr:`Transform.apply`: a chain ending in a landing, or in transforms
    that act after the update) takes it: Adam, AdamW, Adagrad, RMSprop decay the parameters
    in place and add their quotient with ``addcdiv_``, as torch's for-loop does; any other
    direction is added with ``alpha=-lr`` (one pass over the parameters, not two);
    Schedule-Free moves ``y`` and ``z`` as its reference does; an EMA of the weights or
    Lookahead's pull then acts on the parameters in place."""
    apply = transform.shortcut("apply")
    if apply is None and (transform.shortcut("land") or transform.shortcut("after")):
        apply = in_place((transform,))  # a lone scale_by_lr
    if apply is not None and not torch.is_grad_enabled():
        apply(grads, state, params, hp)
    else:
        torch._foreach_add_(params, transform.update(grads, state, params, hp))
