"""Lookahead: k steps of any rule forward, then one step back toward slow weights."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

from descend._validation import Interval
from descend.optim.compose import chain
from descend.optim.sharded import copy_all
from descend.optim.transform import Hyper, State, Transform, picklable

# Per tensor: whether its clock reaches a multiple of k at this step (Transform.scalars).
_DUE = "lookahead_due"
_K = Interval(1, None, closed="left", integer=True, finite=True)
_ALPHA = Interval(0.0, 1.0, closed="both")


@picklable
def lookahead(inner: Transform, k: int = 5, alpha: float = 0.5) -> Transform:
    r"""Wrap ``inner`` (any rule, usually a whole chain ending in ``scale_by_lr``) with
    Lookahead's slow weights (Zhang et al., 2019).

    The fast weights :math:`\theta` follow ``inner``; every :math:`k`-th update they are
    pulled back toward slow weights :math:`\phi`, which then take their value:

    .. math::
        \theta_t &= \theta_{t-1} + T(g_t) \qquad \text{(the inner rule's step)}\\
        \text{if } k \mid t:\quad
        \phi &\leftarrow \phi + \alpha\,(\theta_t - \phi), \qquad \theta_t \leftarrow \phi

    with :math:`\phi_0 = \theta_0`. Symbols: :math:`k` is the group key ``lookahead_k``,
    :math:`\alpha` ``lookahead_alpha`` (the factory's ``k`` and ``alpha`` are their
    defaults; a param group may override them). State ``slow_params`` (:math:`\phi`) and
    the per-parameter ``step`` (:math:`t`); ``inner``'s state is kept as it is. Elementwise,
    so the optimizer runs it a few tensors at a time, as ``inner``.

    .. warning:: :math:`t` counts each parameter's own updates (a parameter without a
       gradient is not stepped, and its clock does not advance), where pytorch-optimizer's
       ``Lookahead`` counts the optimizer's steps per param group. The two agree whenever
       every parameter has a gradient at every step. Its ``pullback_momentum`` option (the
       inner momentum pulled back too) is not offered.

    To evaluate with the slow weights, ``with descend.optim.averaged_weights(opt,
    "slow_params"):`` (:func:`~descend.optim.averaged_weights`).

    Args:
        inner: the rule whose steps are the fast steps.
        k: steps between synchronisations (an int >= 1).
        alpha: slow-weight step size, in [0, 1] (1 is ``inner`` alone).

    Example:
        >>> import torch, descend
        >>> from descend.optim import chain, lookahead, scale_by_adam, scale_by_lr
        >>> x = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = descend.Optimizer([x], lookahead(chain(scale_by_adam(), scale_by_lr())), lr=0.1)
        >>> for _ in range(400):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> bool(x.abs().max() < 1e-2)
        True

    References:
        Zhang, Lucas, Hinton & Ba, "Lookahead Optimizer: k steps forward, 1 step back",
        NeurIPS 2019. https://arxiv.org/abs/1907.08610
    """
    both = chain(inner, _synchronize(k, alpha))
    return dataclasses.replace(both, name=f"lookahead({inner.name})")


@picklable
def _synchronize(k: int, alpha: float) -> Transform:
    """Lookahead's every-k-th-step pull toward the slow weights, as the last link of a chain
    (its input is the inner rule's update, so the fast weights are ``params + updates``)."""

    def init(params: list[Tensor], hp: Hyper) -> State:
        return {"slow_params": [p.detach().clone() for p in params]}

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        every, back = hp["lookahead_k"], 1 - hp["lookahead_alpha"]
        steps, slow = hp["step"], state["slow_params"]
        if not isinstance(steps[0], Tensor):
            # Eager: only the tensors whose clock reaches a multiple of k are touched.
            due = [i for i, s in enumerate(steps) if int(s) % every == 0]
            if not due:
                return grads
            fast = torch._foreach_add([params[i] for i in due], [grads[i] for i in due])
            _pull(fast, [slow[i] for i in due], back)
            torch._foreach_sub_(fast, [params[i] for i in due])  # the update that lands there
            out = list(grads)
            for i, pulled in zip(due, fast, strict=True):
                out[i] = pulled
            return out
        # Compiled or differentiable steps count in 0-d tensors: select, do not branch.
        out = []
        for u, p, phi, s in zip(grads, params, slow, steps, strict=True):
            due = torch.remainder(s, every) == 0
            pulled = torch.lerp(p + u, phi, back)
            phi.copy_(torch.where(due, pulled, phi))
            out.append(torch.where(due, pulled - p, u))
        return out

    def after(state: State, params: list[Tensor], hp: Hyper) -> None:
        # The same pull, on the fast weights the inner rule has just written in place.
        every, back = hp["lookahead_k"], 1 - hp["lookahead_alpha"]
        steps, slow = hp["step"], state["slow_params"]
        if _DUE in hp:  # the clocks read on the host: only the due tensors are touched
            due = [i for i, d in enumerate(hp[_DUE]) if d]
            if due:
                _pull([params[i] for i in due], [slow[i] for i in due], back)
            return
        # Clocks on the device (capturable): select, do not branch.
        for p, phi, s in zip(params, slow, steps, strict=True):
            pulled = torch.where(torch.remainder(s, every) == 0, torch.lerp(p, phi, back), p)
            phi.copy_(torch.where(torch.remainder(s, every) == 0, pulled, phi))
            p.copy_(pulled)

    def due(hp: Hyper) -> dict[str, list[Any]]:
        # Outside a compiled step (Transform.scalars): a compiled step then branches on
        # Python flags, one graph for the due steps and one for the others, instead of
        # reading and writing the slow weights at every step (9 arrays a step where the
        # rule's floor is 7.4). Clocks on the device (capturable) are not read.
        steps = hp["step"]
        if torch.compiler.is_compiling() or (
            isinstance(steps[0], Tensor) and steps[0].device.type != "cpu"
        ):
            return {}
        return {_DUE: [int(s) % hp["lookahead_k"] == 0 for s in steps]}

    return Transform(
        init,
        update,
        {"lookahead_k": k, "lookahead_alpha": alpha},
        {"lookahead_k": _K, "lookahead_alpha": _ALPHA},
        True,
        "lookahead",
        elementwise=True,
        scalars=due,
        after=after,
    )


def _pull(fast: list[Tensor], slow: list[Tensor], back: float) -> None:
    """phi <- phi + alpha (theta - phi), theta <- phi, computed as theta + (1 - alpha)(phi -
    theta) (``back`` is 1 - alpha), into ``fast`` and then ``slow``."""
    torch._foreach_lerp_(fast, slow, back)
    copy_all(slow, fast)
