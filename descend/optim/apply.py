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
only in rounding (``tests/optim/test_execution.py``). Numbers that scale a whole tensor's
update between the quotient and the decay (:attr:`Transform.factors`: Muon's shape
ratio, Adafactor's relative step; and a quotient's divisors, Adafactor's clipping) go
into that tensor's step size, as torch's ``param.add_(u, alpha=-lr * r)`` puts them,
instead of into a pass over :math:`u`: Muon's and Adafactor's eager steps are torch's
for-loop's operations, bit for bit (``tests/optim/test_muon.py``, ``test_adafactor.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from descend.optim.transform import (
    FactorsFn,
    Folded,
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
    """The chain's :attr:`Transform.fold`: a tail ``quotient → [factors] → [decay]``, then
    :func:`scale_by_lr` or nothing (a chain nested last in another does not fold: its own
    ``split`` still saves one pass)."""
    if len(transforms) < 2:
        return None
    split = transforms[-1].shortcut("split")
    if split is not None and split[0] is not unchanged:
        return None
    head = list(transforms[:-1] if split is not None else transforms)

    def fold(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper):
        plan = _fold_plan(head, hp)
        if plan is None:
            return None
        at, decay, scales = plan
        for t in head[:at]:
            grads = t.update(grads, state, params, hp)
        num, den, divisors = head[at].quotient(grads, state, params, hp)  # type: ignore[misc]
        factors = None
        for scale in scales:
            part = scale(num, state, params, hp)
            factors = (
                part if factors is None else [a * b for a, b in zip(factors, part, strict=True)]
            )
        if factors is not None and any(isinstance(f, Tensor) for f in factors):
            return None  # a step size must be a number (torch's ``alpha``)
        return num, den, divisors, 0 if decay is None else decay(hp), factors

    return fold


def _fold_plan(
    head: list[Transform], hp: Hyper
) -> tuple[int, Callable[[Hyper], Any] | None, list[FactorsFn]] | None:
    """Where ``head`` (a chain without its final ``scale_by_lr``) ends, for ``hp``, in
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


def apply_updates(
    transform: Transform, grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper
) -> None:
    """``params += update(grads)``: the whole step in one function, so that compile=True
    compiles exactly what eager runs. A chain ending in ``-lr * u`` adds ``u`` with
    ``alpha=-lr`` (one pass over the parameters, not two) when ``lr`` is a number and
    autograd is not recording the step; one that folds (:attr:`Transform.fold`: Adam,
    AdamW, Adagrad, RMSprop, Lion, Muon, Adafactor) decays the parameters in place and
    adds its quotient with ``add_``/``addcdiv_``, as torch's for-loop does."""
    split = transform.shortcut("split")
    # The step's sign and size: -lr, or 1 for a chain that makes its own (Adafactor's).
    h = None if split is None else hp[split[1]]
    if not torch.is_grad_enabled() and not isinstance(h, Tensor):
        size = 1.0 if h is None else -h
        own = h is None and torch.compiler.is_compiling()  # a compiled step's sizes: tensors
        sparse = any(g.is_sparse for g in grads)
        if transform.shortcut("fold") is not None and not own and not sparse:
            folded = transform.fold(grads, state, params, hp)
            if folded is not None:
                _add_folded(params, folded, size)
                return
        if split is not None:
            torch._foreach_add_(params, split[0](grads, state, params, hp), alpha=size)
            return
    torch._foreach_add_(params, transform.update(grads, state, params, hp))


def _add_folded(params: list[Tensor], folded: Folded, size: float) -> None:
    """``params`` decayed in place, then plus ``size`` times the quotient: torch's
    ``param.mul_(1 - lr * wd)`` and ``param.add_``/``addcdiv_``. Each tensor's step size
    is computed as torch computes it (``-(lr * r)``, ``-lr / c``, ``-alpha / denom``), so the
    numbers are torch's bit for bit where the quotient's are."""
    num, den, divisors, decay, factors = folded
    # theta (1 - lr lambda) first (size = -lr): the decay is of the parameters before the
    # step; Adafactor's (no lr in the chain: size 1) declares lambda = -lr wd.
    keep = None if not isinstance(decay, Tensor) and decay == 0 else 1 + size * decay
    if divisors is not None and any(isinstance(c, Tensor) for c in divisors):
        # Capturable step counts: divide the update by them, then add it.
        num = num if den is None else torch._foreach_div(num, den)
        num, den, divisors = torch._foreach_div(num, scalars_like(divisors, num)), None, None
    if den is None and (factors is not None or divisors is not None):
        # A step size per tensor (Muon, Adafactor), as torch's for-loop: each parameter is
        # decayed and moved while it is in cache.
        for p, u, s in zip(params, num, _sizes(size, factors, divisors, len(params)), strict=True):
            if keep is not None:
                p.mul_(keep)
            p.add_(u, alpha=s)
        return
    if keep is not None:
        torch._foreach_mul_(params, keep)
    if den is None:
        torch._foreach_add_(params, num, alpha=size)
    elif factors is None and divisors is None:
        torch._foreach_addcdiv_(params, num, den, value=size)
    else:
        torch._foreach_addcdiv_(params, num, den, _sizes(size, factors, divisors, len(params)))


def _sizes(size: float, factors: list[float] | None, divisors: list[Any] | None, n: int):
    """Each tensor's step size: ``size`` times its factor, over its divisor."""
    sizes = [size] * n if factors is None else [size * f for f in factors]
    return sizes if divisors is None else [s / c for s, c in zip(sizes, divisors, strict=True)]
