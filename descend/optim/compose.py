"""``chain``: transforms composed left to right into one."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from descend.optim.apply import in_place
from descend.optim.transform import Hyper, Quotient, State, Transform, picklable


@picklable
def chain(*transforms: Transform) -> Transform:
    """Compose transforms left to right: the updates of one are the gradients of the next.

    .. math::
        u = T_k(\\dots T_2(T_1(g)))

    Args:
        *transforms: the transforms, applied in the order given.

    Returns:
        A single transform whose state is the union of the parts' states.

    Example:
        >>> import descend
        >>> from descend.optim import chain, scale_by_adam, add_decayed_weights, scale_by_lr
        >>> adamw = chain(scale_by_adam(), add_decayed_weights(), scale_by_lr())
        >>> sorted(adamw.defaults)
        ['amsgrad', 'betas', 'eps', 'lr', 'weight_decay']
    """
    if not transforms:
        raise ValueError("chain() needs at least one transform.")

    def init(params: list[Tensor], hp: Hyper) -> State:
        state: State = {}
        for t in transforms:
            part = t.init(params, hp)
            clash = state.keys() & part.keys()
            if clash:
                raise ValueError(f"Transforms in one chain share state names {sorted(clash)}.")
            state.update(part)
        return state

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        for t in transforms:
            grads = t.update(grads, state, params, hp)
        return grads

    split = None
    if transforms[-1].shortcut("split") is not None:
        last, name = transforms[-1].split

        def unscaled(
            grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper
        ) -> list[Tensor]:
            for t in transforms[:-1]:
                grads = t.update(grads, state, params, hp)
            return last(grads, state, params, hp)

        split = (unscaled, name)

    parts = [t.scalars for t in transforms if t.scalars is not None]
    quotient = None
    if transforms[-1].shortcut("quotient") is not None:
        last_quotient = transforms[-1].quotient

        def quotient(
            grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper
        ) -> Quotient:
            for t in transforms[:-1]:
                grads = t.update(grads, state, params, hp)
            return last_quotient(grads, state, params, hp)

    passes = [t.shortcut("passthrough") for t in transforms]
    passthrough = None
    if all(p is not None for p in passes):

        def passthrough(hp: Hyper) -> bool:
            return all(p(hp) for p in passes)  # type: ignore[misc]

    def scalars(hp: Hyper) -> dict[str, list[Any]]:
        return {k: v for f in parts for k, v in f(hp).items()}

    defaults: dict[str, Any] = {}
    constraints: dict[str, Any] = {}
    for t in transforms:
        for key, value in t.defaults.items():
            defaults.setdefault(key, value)
        constraints.update(t.constraints)
    return Transform(
        init,
        update,
        defaults,
        constraints,
        any(t.needs_step for t in transforms),
        " -> ".join(t.name for t in transforms),
        tuple(r for t in transforms for r in t.rules),
        # With its global part prepared, the first transform acts elementwise too.
        elementwise=all(t.elementwise or t.prepare is not None for t in transforms[:1])
        and all(t.elementwise for t in transforms[1:]),
        scalars=scalars if parts else None,
        prepare=transforms[0].prepare,
        split=split,
        quotient=quotient,
        passthrough=passthrough,
        apply=in_place(transforms),
    )
