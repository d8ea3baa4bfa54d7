"""The transform protocol (``chain``, which composes transforms, is in ``compose``).

A transform is a pair of functions over *lists* of tensors (one entry per
parameter of a param group)::

    init(params, hp) -> state          # {"exp_avg": [Tensor, ...], ...}
    update(grads, state, params, hp) -> updates

``hp`` is the param group's hyperparameters (read at every step, so schedulers
and ``group["lr"] = x`` keep working); when a transform ``needs_step``, ``hp["step"]``
holds each parameter's update count (1 on the first update): Python floats in an eager
step, 0-d tensors when the step is compiled, capturable or differentiable. Write
arithmetic on the step and on ``lr`` so that it works for both (``1 - beta ** s``).

Rules every transform follows, so that transforms compose in any order:

- ``update`` never modifies ``grads`` or ``params``; it returns new tensors
  (or its own state tensors, which later transforms must not modify either).
- State tensors are modified in place, or replaced in the state lists (the
  optimizer writes the lists back), and are keyed by ``torch.optim``'s names
  (``momentum_buffer``, ``exp_avg``, ...) so state dicts stay interchangeable.
- Each transform declares the hyperparameters it reads, with defaults and
  constraints; ``chain`` merges the declarations and the optimizer validates
  every param group against them in one place.

Transforms made by the factories in this package pickle (and so do optimizers built
on them): a transform remembers the factory call that made it and is rebuilt from it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

import torch
from torch import Tensor

from descend._validation import Constraint, Rule

State = dict[str, list[Any]]
Hyper = Mapping[str, Any]
InitFn = Callable[[list[Tensor], Hyper], State]
UpdateFn = Callable[[list[Tensor], State, list[Tensor], Hyper], list[Tensor]]


class Sum(NamedTuple):
    r"""A numerator :math:`a + w\,b` (``w`` one number per tensor) left unmade: a landing adds
    each term by its own ``addcdiv_``. A new tensor for the sum, written to cold memory,
    costs more than a second pass over tensors already there (AdEMAMix's
    :math:`m_1 + \alpha m_2`)."""

    a: list[Tensor]
    b: list[Tensor]
    weights: list[Any]

    def made(self) -> list[Tensor]:
        """The sum, in new tensors."""
        if len(set(self.weights)) == 1:
            return torch._foreach_add(self.a, self.b, alpha=self.weights[0])
        out = torch._foreach_mul(self.b, self.weights)
        torch._foreach_add_(out, self.a)
        return out


# (numerators, denominators or None, divisors or None): the update is num / den / divisor.
Quotient = tuple["list[Tensor] | Sum", list[Tensor] | None, list[Any] | None]
QuotientFn = Callable[[list[Tensor], State, list[Tensor], Hyper], Quotient]
# A quotient, a decoupled weight decay and per-tensor factors of the step (None: none):
# the direction num / den / divisor * factor + decay * theta, as the transforms before a
# landing (Transform.land) hand it over.
Folded = tuple["list[Tensor] | Sum", list[Tensor] | None, list[Any] | None, Any, list[Any] | None]
FactorsFn = Callable[[list[Tensor], State, list[Tensor], Hyper], list[float]]
LandFn = Callable[[Folded, State, list[Tensor], Hyper], None]
AfterFn = Callable[[State, list[Tensor], Hyper], None]
ApplyFn = Callable[[list[Tensor], State, list[Tensor], Hyper], None]
F = TypeVar("F", bound=Callable[..., "Transform"])


def _no_state(params: list[Tensor], hp: Hyper) -> State:
    return {}


def owned(tensors: list[Tensor]) -> list[Tensor]:
    """``tensors``, safe to change in place next. In a differentiable step (grad mode on)
    a copy: ops such as ``sqrt`` keep their output for the backward pass, which an
    in-place change would invalidate. Otherwise the tensors themselves (no copy)."""
    return torch._foreach_mul(tensors, 1.0) if torch.is_grad_enabled() else tensors


def scalars_like(values: list[Any], tensors: list[Tensor]) -> list[Any]:
    """Per-tensor scalars (numbers, or 0-d float64 tensors in a compiled step) in each
    tensor's dtype: a float64 scalar would make a compiled kernel compute every element in
    float64. Computed in float64 first, so only the final value is rounded."""
    return [
        v.to(t.dtype) if isinstance(v, Tensor) else v for v, t in zip(values, tensors, strict=True)
    ]


@dataclasses.dataclass(frozen=True)
class Transform:
    r"""One update rule: ``init`` creates its state, ``update`` maps gradients to updates.

    Attributes:
        init: ``(params, hp) -> state``, called once per parameter before its first update.
        update: ``(grads, state, params, hp) -> updates``.
        defaults: the hyperparameters this transform reads, with their defaults.
        constraints: allowed values of those hyperparameters (see ``descend._validation``).
        needs_step: whether ``hp["step"]`` (per-parameter update counts) is required.
        name: a short label used in reprs and error messages.
        rules: constraints between several hyperparameters.
        recipe: the factory call that made it (how it pickles); set by :func:`picklable`.
        elementwise: whether each element of the update depends only on the same element
            of the gradients, state and parameters (and on the hyperparameters): then the
            optimizer may run it over a group's tensors a few at a time, while their data
            is in cache, as torch's for-loop does. A reduction over each tensor (LAMB's
            trust ratio, a cautious mask's mean) qualifies too: the runs never split a
            tensor. ``False`` for a norm over the whole group.
        scalars: ``hp -> {name: [value per tensor]}``, numbers computed from the
            hyperparameters and step counts (Adam's bias corrections), which the optimizer
            adds to ``hp`` once per step before the update runs, outside a compiled step
            (inside one, a kernel recomputes a power of a 0-d tensor for every element).
        prepare: ``(grads, hp) -> {name: value}``, what the update needs from the whole
            group's gradients (a global norm's clipping factor). The optimizer adds it to
            ``hp`` before the update, so that the update itself is elementwise and may run
            a few tensors at a time; an update called without it computes it. A chain
            keeps its first transform's, the only one that sees the raw gradients.
        split: for a transform whose last act is :math:`u \leftarrow -h\,u` with
            :math:`h` = ``hp[name]`` (:func:`scale_by_lr`): ``(update without it, name)``.
        quotient: for an update :math:`u = n/(d\,c)`: ``(grads, state, params, hp) -> (n, d,
            c)`` (``n`` tensors, or a :class:`Sum` of two lists of them; ``c`` per-tensor
            divisors, positive, or ``None``; ``d`` non-negative and
            the step's own tensors, which whoever takes the quotient may overwrite, or
            ``None`` for no division, with ``c`` ``None``), all of ``update`` but the division.
        passthrough: ``hp -> bool``: ``update`` returns its gradients, touching no state.
        decay: ``hp -> \lambda`` for :func:`add_decayed_weights` (:math:`u + \lambda\theta`).
        factors: for an update :math:`u_i \leftarrow f_i\, u_i` by numbers that depend on
            the shapes, the parameters and ``hp``, not on the values of :math:`u`
            (Muon's shape ratio, Adafactor's relative step): ``(grads, state, params, hp)
            -> [f_i]``. A landing multiplies them into the step size of its one add (torch's
            ``param.add_(u, alpha=-lr * r)``) instead of making a pass over :math:`u`.
        land: for a transform that ends a chain by turning a direction into the parameters'
            change (:func:`scale_by_lr`, Schedule-Free's step): ``(land, name)``, where
            ``land(direction, state, params, hp)`` changes the parameters (and the
            transform's state) in place, as its ``update`` would, from the direction the
            transforms before it make, handed over as a :data:`Folded` quotient, decay and
            factors (Adam's :math:`m/d` reaches :math:`\theta` by ``addcdiv_`` without being
            materialized). Used when ``hp[name]`` is a number (:mod:`descend.optim.apply`).
        after: ``(state, params, hp) -> None`` for a transform whose ``update`` passes on
            the update it is given (changed or not) only to act on the parameters that update
            produces (an average of the weights, Lookahead's pull): the same work, done on
            the parameters in place after they have been changed, so that the transforms
            before it still take their fastest way there.
        apply: ``(grads, state, params, hp) -> None``: the whole step, in place, by the
            shortcuts above (built by :func:`~descend.optim.chain`; see
            :mod:`descend.optim.apply`); the parameters end as ``params + update`` does.
    """

    init: InitFn
    update: UpdateFn
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    constraints: Mapping[str, Constraint | Sequence[Constraint]] = dataclasses.field(
        default_factory=dict
    )
    needs_step: bool = False
    name: str = "transform"
    rules: tuple[Rule, ...] = ()
    recipe: tuple[Callable[..., Transform], tuple[Any, ...], dict[str, Any]] | None = (
        dataclasses.field(default=None, compare=False, repr=False)
    )

    elementwise: bool = False
    scalars: Callable[[Hyper], dict[str, list[Any]]] | None = dataclasses.field(
        default=None, compare=False, repr=False
    )
    prepare: Callable[[list[Tensor], Hyper], dict[str, Any]] | None = dataclasses.field(
        default=None, compare=False, repr=False
    )
    split: tuple[UpdateFn, str] | None = dataclasses.field(default=None, compare=False, repr=False)
    quotient: QuotientFn | None = dataclasses.field(default=None, compare=False, repr=False)
    passthrough: Callable[[Hyper], bool] | None = dataclasses.field(
        default=None, compare=False, repr=False
    )
    decay: Callable[[Hyper], Any] | None = dataclasses.field(
        default=None, compare=False, repr=False
    )
    factors: FactorsFn | None = dataclasses.field(default=None, compare=False, repr=False)
    land: tuple[LandFn, str] | None = dataclasses.field(default=None, compare=False, repr=False)
    after: AfterFn | None = dataclasses.field(default=None, compare=False, repr=False)
    apply: ApplyFn | None = dataclasses.field(default=None, compare=False, repr=False)
    # The update the shortcuts above (split ... apply) were declared for: a wrapper made with
    # ``dataclasses.replace(t, update=...)`` inherits them, and must not take them.
    declared_for: UpdateFn | None = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.declared_for is None:
            object.__setattr__(self, "declared_for", self.update)

    def shortcut(self, name: str) -> Any:
        """The shortcut ``name`` (``split``, ``quotient``, ``passthrough``, ``decay``,
        ``factors``, ``land``, ``after``, ``apply``) if it was declared for this transform's
        ``update``, else ``None``."""
        return getattr(self, name) if self.declared_for is self.update else None

    def __reduce__(self) -> Any:
        # Closures do not pickle; the factory call that made them does.
        if self.recipe is None:
            return super().__reduce__()
        return _rebuild, self.recipe


def unchanged(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
    """The identity update (what remains of :func:`scale_by_lr` once split off)."""
    return grads


def _rebuild(factory: Callable[..., Transform], args: tuple[Any, ...], kwargs: dict[str, Any]):
    return factory(*args, **kwargs)


def picklable(factory: F) -> F:
    """Decorate a module-level transform factory so that what it returns pickles and
    deep-copies (through the factory call, since its closures cannot)."""

    @functools.wraps(factory)
    def build(*args: Any, **kwargs: Any) -> Transform:
        return dataclasses.replace(factory(*args, **kwargs), recipe=(build, args, kwargs))

    return build  # type: ignore[return-value]


@picklable
def stateless(
    update: UpdateFn,
    *,
    name: str,
    defaults: Mapping[str, Any] | None = None,
    constraints: Mapping[str, Any] | None = None,
    elementwise: bool = False,
) -> Transform:
    """A transform without state (pickles when ``update`` is a module-level function)."""
    return Transform(
        _no_state,
        update,
        dict(defaults or {}),
        dict(constraints or {}),
        False,
        name,
        elementwise=elementwise,
    )
