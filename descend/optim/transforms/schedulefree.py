"""Schedule-Free learning (Defazio et al., 2024): the interpolation step, its averaging
weights, and the normalization Schedule-Free AdamW puts in front of it."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend._validation import Interval
from descend.optim._constraints import BETAS, NON_NEGATIVE
from descend.optim.apply import from_quotient, updated
from descend.optim.transform import (
    Folded,
    Hyper,
    Quotient,
    State,
    Sum,
    Transform,
    owned,
    picklable,
)

# Per-step numbers the optimizer computes from its group bookkeeping (see ``averaging``)
# and hands to the transforms; they are not group keys, so never in a state dict.
LR, CKP1, BC2 = "schedule_free_lr", "schedule_free_ckp1", "schedule_free_bias_correction2"

MOMENTUM = Interval(0.0, 1.0, closed="neither")  # x = (y - (1 - beta) z) / beta needs beta > 0
AVERAGING_DEFAULTS: dict[str, Any] = {"warmup_steps": 0, "r": 0.0, "weight_lr_power": 2.0}
AVERAGING_CONSTRAINTS = {
    "warmup_steps": Interval(0, None, closed="left", integer=True),
    "r": NON_NEGATIVE,
    "weight_lr_power": NON_NEGATIVE,
}
# The group's running bookkeeping, under the reference's keys (its state dicts load).
BOOKKEEPING: dict[str, Any] = {
    "k": 0,
    "train_mode": True,
    "weight_sum": 0.0,
    "lr_max": -1.0,
    "scheduled_lr": 0.0,
}


def averaging(group: dict[str, Any]) -> dict[str, float]:
    r"""Advance a param group's averaging bookkeeping by one step; return this step's
    numbers (the reference's per-group loop header, line for line).

    .. math::
        \gamma_k &= \eta \min\!\left(1, \tfrac{k+1}{\text{warmup}}\right), \qquad
        \gamma_{\max} = \max_{i \le k} \gamma_i\\
        w_k &= (k+1)^r \gamma_{\max}^{p}, \qquad c_{k+1} = w_k \Big/ \textstyle\sum_{i\le k} w_i

    Writes ``scheduled_lr``, ``lr_max``, ``weight_sum`` into ``group``; the caller
    increments ``k`` after the step, as the reference does.
    """
    k = group["k"]
    warmup = group["warmup_steps"]
    lr = float(group["lr"]) * ((k + 1) / warmup if k < warmup else 1.0)
    group["scheduled_lr"] = lr
    lr_max = group["lr_max"] = max(lr, group["lr_max"])
    weight = ((k + 1) ** group["r"]) * (lr_max ** group["weight_lr_power"])
    weight_sum = group["weight_sum"] = group["weight_sum"] + weight
    ckp1 = weight / weight_sum if weight_sum != 0 else 0.0
    return {LR: lr, CKP1: ckp1}


@picklable
def scale_by_schedule_free_rms() -> Transform:
    r"""Divide the gradient by the root of its bias-corrected second moment (Schedule-Free
    AdamW's normalization: Adam's denominator, no first moment).

    .. math::
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \qquad
        u_t = \frac{g_t}{\sqrt{v_t / (1-\beta_2^{t})} + \epsilon}

    Symbols: :math:`\beta_2` ``betas[1]``, :math:`\epsilon` ``eps``; :math:`t` is the group's
    step (``k + 1``), handed in by the optimizer as ``hp["schedule_free_bias_correction2"]``
    :math:`= 1-\beta_2^t`. State ``exp_avg_sq`` (:math:`v`), as the reference.
    """

    def init(params: list[Tensor], hp: Hyper) -> State:
        return {
            "exp_avg_sq": [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]
        }

    def quotient(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> Quotient:
        beta2 = hp["betas"][1]
        v = state["exp_avg_sq"]
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - beta2)
        root = hp[BC2] ** 0.5
        denom = owned(torch._foreach_sqrt(v))
        if isinstance(root, Tensor):
            # A compiled step: one graph input, no list of 0-d divisors (foreach ops over
            # one have no compiled kernel).
            torch._foreach_div_(denom, root)
            torch._foreach_add_(denom, hp["eps"])
            return grads, denom, None
        # sqrt(v / b) + eps = (sqrt(v) + eps sqrt(b)) / sqrt(b): the correction becomes a
        # divisor, which the step folds into its scalars (one pass over denom fewer).
        torch._foreach_add_(denom, hp["eps"] * root)
        return grads, denom, [1 / root] * len(grads)

    return Transform(
        init,
        from_quotient(quotient),
        {"betas": (0.9, 0.999), "eps": 1e-8},
        {"betas": BETAS, "eps": NON_NEGATIVE},
        False,
        "scale_by_schedule_free_rms",
        elementwise=True,
        quotient=quotient,
    )


@picklable
def schedule_free(momentum: str = "momentum") -> Transform:
    r"""The Schedule-Free step: gradient descent on :math:`z`, averaged into :math:`x`, with
    the gradient taken at the interpolation :math:`y` (the parameters in train mode).

    .. math::
        y_t &= (1-\beta)\, z_t + \beta\, x_t \qquad \text{(the parameters; } g_t = u_t
               \text{ is computed here)}\\
        z_{t+1} &= z_t - \gamma_t\, u_t\\
        x_{t+1} &= (1-c_{t+1})\, x_t + c_{t+1}\, z_{t+1}

    which, without forming :math:`x`, moves the parameters by

    .. math::
        y_{t+1} - y_t = c_{t+1}(z_t - y_t) + \gamma_t\big(\beta(1-c_{t+1}) - 1\big)\, u_t

    Symbols: :math:`\beta` ``hp[momentum]`` (``momentum``, or ``betas[0]`` when
    ``momentum="betas"``), :math:`\gamma_t` the warmed-up learning rate and
    :math:`c_{t+1}` the averaging weight, both from :func:`averaging`. State ``z``
    (initialized to the parameters), as the reference. It must end a chain: its output is
    the parameters' change, not a direction to scale. Eager, it lands the step in place as
    the reference does (:attr:`~descend.optim.transform.Transform.land`: ``y.lerp_(z, c)``,
    then :math:`u` added to :math:`y` and :math:`z`, by ``addcdiv_`` from a quotient).
    """

    def init(params: list[Tensor], hp: Hyper) -> State:
        return {"z": [p.detach().clone(memory_format=torch.preserve_format) for p in params]}

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        beta = hp[momentum][0] if momentum == "betas" else hp[momentum]
        lr, ckp1, z = hp[LR], hp[CKP1], state["z"]
        step = torch._foreach_sub(z, params)
        torch._foreach_mul_(step, ckp1)
        if isinstance(lr, Tensor):  # a compiled step: alpha must be a number
            torch._foreach_add_(step, torch._foreach_mul(grads, lr * (beta * (1 - ckp1) - 1)))
            torch._foreach_sub_(z, torch._foreach_mul(grads, lr))
        else:
            torch._foreach_add_(step, grads, alpha=lr * (beta * (1 - ckp1) - 1))
            torch._foreach_add_(z, grads, alpha=-lr)
        return step

    def land(direction: Folded, state: State, params: list[Tensor], hp: Hyper) -> None:
        # The reference's in-place form, y.lerp_(z, c); y += a u; z -= lr u, with
        # u = n / (d c) + lambda y reached by addcdiv_ (or, with a decay, made once in the
        # quotient's own denominators): y and z are each read and written once.
        lr, ckp1, z = hp[LR], hp[CKP1], state["z"]
        beta = hp[momentum][0] if momentum == "betas" else hp[momentum]
        num, den, divisors, decay, factors = direction
        uniform = divisors is None or (
            len(set(divisors)) == 1 and not isinstance(divisors[0], Tensor)
        )
        odd = factors is not None or isinstance(decay, Tensor) or isinstance(num, Sum)
        if not uniform or odd:  # not made by the chains here
            num, den, divisors, decay = updated(direction, params), None, None, 0
        scale = 1.0 if divisors is None else 1 / divisors[0]
        if decay != 0:  # the decay is of y before the step
            if den is None:
                num = torch._foreach_add(num, params, alpha=decay / scale)
            else:  # n / d in place of d (the step's own tensors), + lambda c y
                for n, d in zip(num, den, strict=True):
                    torch.div(n, d, out=d)
                torch._foreach_add_(den, params, alpha=decay / scale)
                num, den = den, None
        torch._foreach_lerp_(params, z, ckp1)
        a = lr * (beta * (1 - ckp1) - 1)
        if den is None:
            torch._foreach_add_(params, num, alpha=a * scale)
            torch._foreach_add_(z, num, alpha=-lr * scale)
        else:
            torch._foreach_addcdiv_(params, num, den, value=a * scale)
            torch._foreach_addcdiv_(z, num, den, value=-lr * scale)

    return Transform(
        init,
        update,
        {"momentum": 0.9} if momentum == "momentum" else {},
        {"momentum": MOMENTUM} if momentum == "momentum" else {},
        False,
        "schedule_free",
        elementwise=True,
        land=(land, LR),
    )


def to_x(params: list[Tensor], z: list[Tensor], beta: float) -> None:
    r"""Train → eval: :math:`x = (y - (1-\beta) z)/\beta`, as ``lerp(y, z, 1 - 1/\beta)``."""
    torch._foreach_lerp_(params, z, 1 - 1 / beta)


def to_y(params: list[Tensor], z: list[Tensor], beta: float) -> None:
    r"""Eval → train: :math:`y = \beta x + (1-\beta) z`, as ``lerp(x, z, 1 - \beta)``."""
    torch._foreach_lerp_(params, z, 1 - beta)
