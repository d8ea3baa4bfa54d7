"""``when``: a transform applied only on the steps where a param-group flag has a value."""

from __future__ import annotations

import dataclasses

from torch import Tensor

from descend._validation import BOOL
from descend.optim.transform import Hyper, State, Transform, picklable


@picklable
def when(flag: str, transform: Transform, *, value: bool = True) -> Transform:
    """Apply ``transform`` only on steps where ``hp[flag] == value`` (e.g. Adam's coupled vs
    decoupled weight decay, chosen by ``decoupled_weight_decay``). Its state is always created."""

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        if bool(hp.get(flag, False)) == value:
            return transform.update(grads, state, params, hp)
        return grads

    inner = transform.shortcut("passthrough")

    def passthrough(hp: Hyper) -> bool:
        return bool(hp.get(flag, False)) != value or (inner is not None and inner(hp))

    # Off on some steps, so not a quotient, a landing or a split (those would run it always);
    # its decay is read only when it is not passed through.
    return dataclasses.replace(
        transform,
        update=update,
        name=f"{transform.name}[{flag}={value}]",
        defaults={**transform.defaults, flag: False},
        constraints={**transform.constraints, flag: BOOL},
        split=None,
        quotient=None,
        factors=None,
        land=None,
        after=None,
        apply=None,
        passthrough=passthrough,
        declared_for=update,
    )
