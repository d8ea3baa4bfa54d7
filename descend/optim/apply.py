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
Schedule-Free's step) takes the direction as the quotient, decay and factors the
transforms before it leave (``Folded``) and reaches the parameters with
``mul_``/``add_``/``addcdiv_``; a chain with no learning rate (Adafactor's, which makes its
own step size) lands the same way with a step of 1. Numbers that scale a whole tensor's
update between the quotient and the decay (:attr:`Transform.factors`: Muon's shape ratio,
Adafactor's relative step; and a quotient's divisors, Adafactor's clipping) go into that
tensor's step size, as torch's ``param.add_(u, alpha=-lr * r)`` puts them, instead of into
a pass over :math:`u`: Muon's and Adafactor's eager steps are torch's for-loop's
operations, bit for bit (``tests/optim/test_muon.py``, ``test_adafactor.py``). Transforms
after the landing that only act on the new parameters (an EMA of the weights, Lookahead's
pull: :attr:`Transform.after`) then act on them in place. The numbers differ from the
separate transforms' only in rounding (``tests/optim/test_execution.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from descend.optim.transform import (
    ApplyFn,
    FactorsFn,
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
    a chain with neither lands its own direction with a step of 1 where it ends in a
    quotient; otherwise the update is added whole. Then the ``after`` transforms run.
    """
    end = len(transforms)
    while end > 0 and transforms[end - 1].shortcut("after") is not None:
        end -= 1
    body, afters = list(transforms[:end]), [t.after for t in transforms[end:]]
    shortcuts = ("land", "apply", "quotient")
    if not body or (
        not afters and not any(t.shortcut(s) is not None for t in body for s in shortcuts)
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
        elif nested is not None and land is None:
            for t in head:
                grads = t.update(grads, state, params, hp)
            nested(grads, state, params, hp)
        elif land is None and not torch.compiler.is_compiling():
            # A chain that makes its own step size (Adafactor's): a step of 1. (Compiled,
            # its sizes are tensors: the update, whole.)
            add_folded(params, _direction(body, grads, state, params, hp), 1.0)
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
    """What ``head`` makes of ``grads``: its quotient, factors and decay where it ends in
    them for ``hp`` (dense gradients only), else its update with nothing to fold."""
    plan = None if any(g.is_sparse for g in grads) else _fold_plan(head, hp)
    if plan is None:
        for t in head:
            grads = t.update(grads, state, params, hp)
        return grads, None, None, 0, None
    at, decay, scales = plan
    for t in head[:at]:
        grads = t.update(grads, state, params, hp)
    num, den, divisors = head[at].quotient(grads, state, params, hp)  # type: ignore[misc]
    factors = None
    for scale in scales:
        part = scale(num.made() if isinstance(num, Sum) else num, state, params, hp)
        factors = part if factors is None else [a * b for a, b in zip(factors, part, strict=True)]
    return num, den, divisors, 0 if decay is None else decay(hp), factors


def _fold_plan(
    head: list[Transform], hp: Hyper
) -> tuple[int, Callable[[Hyper], Any] | None, list[FactorsFn]] | None:
    """Where ``head`` (a chain without its landing) ends, for ``hp``, in
    ``quotient → [factors...] → [decay]`` (passthroughs anywhere between): the quotient's
    index, the decay's rule and the factors' rules, or ``None``."""

    def skip(i: int) -> int:
        while i >= 0 and (passes := head[i].shortcut("passthrough")) is not None and passes(hp):
            i -= 1
        return i

    i, decay = skip(len(head) - 1), None
    if i >= 0 and head[i].shortcut("decay") is not None:
        decay, i = head[i].decay, skip(i - 1)
    scales: list[FactorsFn] = []
    while i >= 0 and head[i].shortcut("factors") is not None:
        scales.insert(0, head[i].factors)  # type: ignore[arg-type]
        i = skip(i - 1)
    if i < 0 or head[i].shortcut("quotient") is None:
        return None
    return i, decay, scales


def updated(direction: Folded, params: list[Tensor]) -> list[Tensor]:
    """The update a :data:`Folded` direction stands for, :math:`n f / (d c) +
    \\lambda\\theta`, in new tensors (where a landing cannot fold it: tensor divisors,
    factors or decay)."""
    num, den, divisors, decay, factors = direction
    if isinstance(num, Sum):
        num = num.made()
    out = num if den is None else torch._foreach_div(num, den)
    if divisors is not None or factors is not None:
        out = torch._foreach_mul(out, 1.0) if out is num else out  # (out is new from here)
    if divisors is not None:
        torch._foreach_div_(out, scalars_like(divisors, out))
    if factors is not None:
        torch._foreach_mul_(out, scalars_like(factors, out))
    if isinstance(decay, Tensor) or decay != 0:
        out = [u + p * decay for u, p in zip(out, params, strict=True)]
    return out


def add_folded(params: list[Tensor], folded: Folded, size: Any) -> None:
    """``params`` decayed in place, then plus ``size`` times the direction: torch's
    ``param.mul_(1 - lr * wd)`` and ``param.add_``/``addcdiv_`` (``size`` is ``-lr``, or 1
    for a chain that makes its own step size). Each tensor's step size is computed as torch
    computes it (``-(lr * r)``, ``-lr / c``, ``-alpha / denom``), so the numbers are
    torch's bit for bit where the quotient's are. A numerator left as a :class:`Sum` is
    added term by term."""
    num, den, divisors, decay, factors = folded
    # theta (1 - lr lambda) first (size = -lr): the decay is of the parameters before the
    # step; Adafactor's (no lr in the chain: size 1) declares lambda = -lr wd.
    keep = None if not isinstance(decay, Tensor) and decay == 0 else 1 + size * decay
    numbers = [*(divisors or ()), *(factors or ())]
    if any(isinstance(c, Tensor) for c in numbers) or (isinstance(num, Sum) and den is None):
        # Capturable step counts: the update made whole, then added.
        num, den, divisors, factors = (
            updated((num, den, divisors, 0, factors), params),
            None,
            None,
            None,
        )
    n = len(params)
    if den is None and (factors is not None or divisors is not None):
        # A step size per tensor (Muon, Adafactor), as torch's for-loop: each parameter is
        # decayed and moved while it is in cache.
        for p, u, s in zip(params, num, _sizes(size, factors, divisors, n), strict=True):
            if keep is not None:
                p.mul_(keep)
            p.add_(u, alpha=s)
        return
    if keep is not None:
        torch._foreach_mul_(params, keep)
    if den is None:
        torch._foreach_add_(params, num, alpha=size)
        return
    a, b = (num.a, num.b) if isinstance(num, Sum) else (num, None)
    if factors is None and divisors is None:
        torch._foreach_addcdiv_(params, a, den, value=size)
    else:
        torch._foreach_addcdiv_(params, a, den, _sizes(size, factors, divisors, n))
    if b is not None:  # the Sum's second term, one more addcdiv_ (no tensor for the sum)
        sizes = _sizes(size, factors, divisors, n)
        torch._foreach_addcdiv_(params, b, den, [s * w for s, w in zip(sizes, num.weights)])


def _sizes(size: Any, factors: list[Any] | None, divisors: list[Any] | None, n: int):
    """Each tensor's step size: ``size`` times its factor, over its divisor."""
    sizes = [size] * n if factors is None else [size * f for f in factors]
    return sizes if divisors is None else [s / c for s, c in zip(sizes, divisors, strict=True)]


def apply_updates(
    transform: Transform, grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper
) -> None:
    """``params += update(grads)``: the whole step in one function, so that compile=True
    compiles exactly what eager runs. Unless autograd records the step, a transform with an
    in-place step (:attr:`Transform.apply`: a chain ending in a landing or a quotient, or in
    transforms that act after the update) takes it: Adam, AdamW, Adagrad, RMSprop, Lion,
    Muon, Adafactor decay the parameters in place and add their direction with
    ``add_``/``addcdiv_``, as torch's for-loop does; any other direction is added with
    ``alpha=-lr`` (one pass over the parameters, not two); Schedule-Free moves ``y`` and
    ``z`` as its reference does; an EMA of the weights or Lookahead's pull then acts on the
    parameters in place."""
    apply = transform.shortcut("apply")
    if apply is None and (transform.shortcut("land") or transform.shortcut("after")):
        apply = in_place((transform,))  # a lone scale_by_lr
    if apply is not None and not torch.is_grad_enabled():
        apply(grads, state, params, hp)
    else:
        torch._foreach_add_(params, transform.update(grads, state, params, hp))
