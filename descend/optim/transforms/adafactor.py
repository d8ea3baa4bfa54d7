"""Adafactor's parts: the factored second moment, update clipping by block RMS, and the
relative step size (Shazeer & Stern, 2018)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend._validation import Interval, Satisfies
from descend.optim._constraints import LEARNING_RATE, NON_NEGATIVE
from descend.optim.sharded import is_sharded
from descend.optim.transform import Hyper, Quotient, State, Transform, picklable


def _eps_pair(value: Any) -> bool:
    return (
        isinstance(value, tuple | list)
        and len(value) == 2
        and (value[0] is None or NON_NEGATIVE.contains(value[0]))
        and NON_NEGATIVE.contains(value[1])
    )


# torch.optim.Adafactor's ``eps=(eps1, eps2)``: eps1 (None: the dtype's machine epsilon)
# bounds the second-moment estimate from below, eps2 the parameter scale of the step.
EPS_PAIR = Satisfies(_eps_pair, "a pair (eps1, eps2) with eps1 None or a float >= 0, eps2 >= 0")
BETA2_DECAY = Interval(None, 0.0, closed="right", finite=True)
CLIP_THRESHOLD = Interval(1.0, None, closed="left")


@picklable
def scale_by_factored_rms() -> Transform:
    r"""Divide by a factored estimate of the second moment (Adafactor's preconditioner).

    A matrix's (or, for more dimensions, each of its last-two-dimension slices') running
    mean of squared gradients is kept as a row factor :math:`R` and a column factor
    :math:`C` (:math:`n + m` numbers instead of :math:`nm`); vectors and scalars keep
    the full :math:`V`:

    .. math::
        \hat\beta_{2,t} &= 1 - t^{\tau}\\
        R_t &= \hat\beta_{2,t} R_{t-1} + (1-\hat\beta_{2,t})\,\operatorname{mean}_{\text{cols}}(G_t^2),
        \qquad C_t = \hat\beta_{2,t} C_{t-1} + (1-\hat\beta_{2,t})\,\operatorname{mean}_{\text{rows}}(G_t^2)\\
        \hat V_t &= \frac{R_t C_t}{\max(\operatorname{mean}(R_t),\ \epsilon_1)}
        \quad\text{(matrices)}, \qquad
        \hat V_t = \hat\beta_{2,t}\hat V_{t-1} + (1-\hat\beta_{2,t})\,G_t^2 \quad\text{(vectors)}\\
        U_t &= G_t / \max\!\big(\sqrt{\hat V_t},\ \epsilon_1\big)

    Symbols: :math:`\tau` is ``beta2_decay`` (:math:`\le 0`; the paper's
    :math:`\hat\beta_{2,t} = 1 - t^{-0.8}` at the default), :math:`\epsilon_1` is
    ``eps[0]`` (``None``: the parameter dtype's machine epsilon), :math:`t` the step.
    State ``row_var`` (:math:`R`, shape ``[..., n, 1]``) and ``col_var`` (:math:`C`,
    ``[..., 1, m]``) for a parameter of two or more dimensions, ``variance`` for the
    others, as ``torch.optim.Adafactor`` keeps them.

    .. warning:: :math:`\epsilon_1` enters as torch places it (clamping the mean of
       :math:`R` and :math:`\hat V`), not as the paper's (added to :math:`G^2` before
       the averages); the factors are means, not the paper's sums (the same estimate).

    References:
        Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost",
        ICML 2018. https://arxiv.org/abs/1804.04235
    """

    def init(params: list[Tensor], hp: Hyper) -> State:
        rows: list[Tensor | None] = []
        cols: list[Tensor | None] = []
        full: list[Tensor | None] = []
        for p in params:
            if p.dim() > 1:
                rows.append(p.new_zeros((*p.shape[:-1], 1)))
                cols.append(_replicated_zeros(p, (*p.shape[:-2], 1, p.shape[-1])))
                full.append(None)
            else:
                rows.append(None)
                cols.append(None)
                full.append(torch.zeros_like(p, memory_format=torch.preserve_format))
        # None: no such entry (the optimizer stores only the factors a parameter has).
        return {"row_var": rows, "col_var": cols, "variance": full}

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        eps1 = hp["eps"][0]
        out = []
        for i, (g, s) in enumerate(zip(grads, hp["step"], strict=True)):
            e1 = torch.finfo(g.dtype).eps if eps1 is None else eps1
            weight = s ** hp["beta2_decay"]  # 1 - beta2_t
            if g.dim() > 1:
                row, col = state["row_var"][i], state["col_var"][i]
                # mean(g * g) over a dimension, without a g-sized temporary (as torch).
                row.lerp_(torch.norm(g, dim=-1, keepdim=True).square_().div_(g.size(-1)), weight)
                if is_sharded(g):  # column means and the row factors' mean span the ranks
                    col.lerp_(torch.norm(g, dim=-2, keepdim=True).square().div(g.size(-2)), weight)
                    # A sum, not a mean: DTensor averages uneven shards' means (7 rows: 4 + 3).
                    mean = row.sum(dim=-2, keepdim=True).div(row.size(-2))
                    var = (row @ col).div(mean.clamp(min=e1))
                else:
                    col.lerp_(
                        torch.norm(g, dim=-2, keepdim=True).square_().div_(g.size(-2)), weight
                    )
                    var = row @ col
                    var.div_(row.mean(dim=-2, keepdim=True).clamp_(min=e1))
            else:
                v = state["variance"][i]
                v.lerp_(g * g, weight)
                var = v.clone()
            # max(sqrt(V), eps1) as sqrt(max(V, eps1^2)): one pass, as torch.
            out.append(var.clamp_(min=e1 * e1).rsqrt_().mul_(g))
        return out

    return Transform(
        init,
        update,
        {"beta2_decay": -0.8, "eps": (None, 1e-3)},
        {"beta2_decay": BETA2_DECAY, "eps": EPS_PAIR},
        True,
        "scale_by_factored_rms",
        elementwise=True,  # per tensor (row and column means): runs never split one
    )


def _replicated_zeros(p: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Zeros of ``shape`` like ``p``; for a sharded ``p`` whole on every rank (a column
    factor has one row: nothing to shard)."""
    if not is_sharded(p):
        return p.new_zeros(shape)
    from torch.distributed.tensor import DTensor, Replicate

    local = p.to_local().new_zeros(shape)
    return DTensor.from_local(local, p.device_mesh, [Replicate()] * p.device_mesh.ndim)


def _norm(t: Tensor) -> float:
    norm = t.norm(2)
    if is_sharded(norm):  # each rank's part of the norm: .item() would read its own only
        norm = norm.full_tensor()
    return norm.item()


def _rms(t: Tensor) -> float:
    return _norm(t) / t.numel() ** 0.5


def _over(u: Tensor, d: float) -> float:
    """RMS(u) / d, as torch computes it (``norm / (sqrt(numel) * d)``); 1 at most: no clip."""
    return max(1.0, _norm(u) / (u.numel() ** 0.5 * d)) if u.numel() else 1.0


@picklable
def clip_by_block_rms() -> Transform:
    r"""Scale each tensor's update down so that its root-mean-square is at most ``d``.

    .. math::
        \hat U = U / \max\!\big(1,\ \operatorname{RMS}(U) / d\big)

    Hyperparameter: ``d`` (the clipping threshold, :math:`\ge 1`; Adafactor's default 1).
    A tensor already within the threshold is passed through unchanged (no copy). In an
    eager step the division is folded into the step size (torch's ``alpha=-alpha / denom``).
    """

    def quotient(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> Quotient:
        return grads, None, [_over(u, hp["d"]) for u in grads]

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        return [
            u if c == 1.0 else u / c
            for u, c in zip(grads, quotient(grads, state, params, hp)[2], strict=True)
        ]

    return Transform(
        _no_state,
        update,
        {"d": 1.0},
        {"d": CLIP_THRESHOLD},
        False,
        "clip_by_block_rms",
        elementwise=True,  # per tensor (its RMS)
        quotient=quotient,
    )


def _no_state(params: list[Tensor], hp: Hyper) -> State:
    return {}


@picklable
def scale_by_relative_step() -> Transform:
    r"""Step relative to each parameter's scale, with a step size that decays as
    :math:`1/\sqrt t` and is capped by ``lr``: Adafactor's step, sign included.

    .. math::
        \rho_t = \min(\eta,\ 1/\sqrt t), \qquad
        \alpha_t = \max\!\big(\epsilon_2,\ \operatorname{RMS}(\theta_{t-1})\big)\,\rho_t,
        \qquad u \leftarrow -\alpha_t\, u

    Symbols: :math:`\eta` is ``lr`` (torch's cap; the paper's is the constant 0.01),
    :math:`\epsilon_2` is ``eps[1]``. An empty parameter (no RMS) gets an empty update.
    """

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        return torch._foreach_mul(grads, _relative_steps(grads, state, params, hp))

    return Transform(
        _no_state,
        update,
        {"lr": 1e-2, "eps": (None, 1e-3)},
        {"lr": LEARNING_RATE, "eps": EPS_PAIR},
        True,
        "scale_by_relative_step",
        elementwise=True,  # per tensor (its parameter's RMS)
        # An eager step multiplies them into the step size of its one add, as torch does.
        factors=_relative_steps,
    )


def _relative_steps(
    grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper
) -> list[float]:
    """:math:`-\alpha_t` per parameter, computed as torch computes its ``alpha``."""
    lr, eps2 = hp["lr"], hp["eps"][1]
    return [
        -max(eps2, _rms(p)) * min(lr, 1 / s**0.5) if p.numel() else 0.0
        for p, s in zip(params, hp["step"], strict=True)
    ]


@picklable
def decay_by_lr() -> Transform:
    r"""Decoupled weight decay as a step of its own, for rules whose step size is not
    ``lr`` (Adafactor's relative step): the parameters shrink by the factor
    :math:`1 - \eta\lambda`.

    .. math::
        u \leftarrow u - \eta\lambda\,\theta

    Symbols: :math:`\eta` is ``lr``, :math:`\lambda` is ``weight_decay`` (default 0), as
    ``torch.optim.Adafactor`` (``param.mul_(1 - lr * weight_decay)``).
    """

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        rate = hp["lr"] * hp["weight_decay"]
        if rate == 0:
            return grads
        return torch._foreach_add(grads, params, alpha=-rate)

    return Transform(
        _no_state,
        update,
        {"lr": 1e-2, "weight_decay": 0.0},
        {"lr": LEARNING_RATE, "weight_decay": NON_NEGATIVE},
        False,
        "decay_by_lr",
        elementwise=True,
        # u + (-lr wd) theta: an eager step scales the parameters by 1 - lr wd in place.
        passthrough=_no_rate,
        decay=_minus_rate,
    )


def _no_rate(hp: Hyper) -> bool:
    rate = hp["lr"] * hp["weight_decay"]
    return not isinstance(rate, Tensor) and rate == 0


def _minus_rate(hp: Hyper) -> Any:
    return -(hp["lr"] * hp["weight_decay"])
