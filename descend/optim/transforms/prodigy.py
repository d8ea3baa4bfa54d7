"""Prodigy (Mishchenko & Defazio, 2024): Adam whose step size :math:`d` is estimated from
the distance travelled. The estimate needs sums over every parameter of the optimizer,
so it is two parts: :func:`prodigy_sums` (moments and the sums, before :math:`d` moves)
and :func:`scale_by_prodigy` (the elementwise step with the new :math:`d`)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from descend._validation import Interval, InvalidParameterError, Satisfies
from descend.optim._constraints import BETAS, FLAG, NON_NEGATIVE
from descend.optim.sharded import is_sharded, total
from descend.optim.transform import Hyper, State, Transform, picklable

POSITIVE = Interval(0.0, None, closed="neither", finite=True)
SLICE = Interval(1, None, closed="left", integer=True)
_NONE = Satisfies(lambda v: v is None, "None (then sqrt(beta2))")


def beta3_of(hp: Hyper) -> float:
    """``beta3``, or :math:`\\sqrt{\\beta_2}` when it is ``None`` (the reference's default)."""
    return math.sqrt(hp["betas"][1]) if hp["beta3"] is None else hp["beta3"]


def _sliced(t: Tensor, slice_p: int) -> Tensor:
    if not is_sharded(t):
        return t.reshape(-1)[::slice_p]
    # A row-sharded parameter cannot be flattened (its rows split unevenly) nor sliced
    # without gathering it: s and x0 keep its shape and its sharding.
    if slice_p != 1:
        raise InvalidParameterError(
            f"Prodigy's slice_p keeps every slice_p-th entry of the flattened parameter, "
            f"which a sharded (FSDP2) parameter cannot give without gathering it. Got "
            f"slice_p={slice_p} for a parameter of shape {tuple(t.shape)}; use slice_p=1."
        )
    return t


def prodigy_sums(
    grads: list[Tensor],
    state: State,
    params: list[Tensor],
    hp: Hyper,
    *,
    d: float,
    dlr: float,
    betas: tuple[float, float, float],
) -> tuple[float, float]:
    r"""Update one group's moments and :math:`s` with the current :math:`d`; return its
    terms of the estimate's numerator and denominator.

    .. math::
        \Delta r &= \tfrac{d}{d_0}\, d\eta\, \langle g_t,\ x_0 - x_t\rangle, \qquad
        s_t = \beta_3 s_{t-1} + \tfrac{d}{d_0}\, d\eta\, g_t
        \quad (d \text{ instead of } d\eta \text{ with safeguard\_warmup})\\
        m_t &= \beta_1 m_{t-1} + d(1-\beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + d^2(1-\beta_2) g_t^2, \qquad
        \text{returns } (\textstyle\sum \Delta r,\ \sum \lVert s_t\rVert_1)

    ``betas`` are the first group's :math:`(\beta_1, \beta_2, \beta_3)`, which the reference
    uses for every group; :math:`s` and :math:`x_0` keep every ``slice_p``-th entry.
    """
    beta1, beta2, beta3 = betas
    scale = d / hp["d0"] * (d if hp["safeguard_warmup"] else dlr)
    slice_p = hp["slice_p"]
    sliced = [_sliced(g, slice_p) for g in grads]
    here = [_sliced(p, slice_p) for p in params]
    if any(is_sharded(p) for p in params):  # each rank's part of each sum, then one reduce
        dots = [(g * (p0 - x)).sum() for g, p0, x in zip(sliced, state["p0"], here, strict=True)]
        numerator = d / hp["d0"] * dlr * total(dots)
    else:
        dots = [torch.dot(g, p0 - x) for g, p0, x in zip(sliced, state["p0"], here, strict=True)]
        numerator = d / hp["d0"] * dlr * float(torch.stack(dots).double().sum())
    if beta1 > 0:
        torch._foreach_mul_(state["exp_avg"], beta1)
        torch._foreach_add_(state["exp_avg"], grads, alpha=d * (1 - beta1))
    torch._foreach_mul_(state["exp_avg_sq"], beta2)
    torch._foreach_addcmul_(state["exp_avg_sq"], grads, grads, value=d * d * (1 - beta2))
    torch._foreach_mul_(state["s"], beta3)
    torch._foreach_add_(state["s"], sliced, alpha=scale)
    if any(is_sharded(p) for p in params):
        return numerator, total([s.abs().sum() for s in state["s"]])
    denominator = float(torch.stack([s.abs().sum() for s in state["s"]]).double().sum())
    return numerator, denominator


def next_d(group: dict[str, Any], numerator: float, denominator: float) -> dict[str, float]:
    r"""The new estimate (the reference's, line for line):

    .. math::
        \hat d = c\,\frac{r}{\sum\lVert s\rVert_1}, \qquad
        d \leftarrow \max(d, \hat d) \text{ while } d = d_0, \qquad
        d_{\max} \leftarrow \max(d_{\max}, \hat d), \qquad
        d \leftarrow \min(d_{\max},\ \rho\, d)

    with :math:`c` ``d_coef`` and :math:`\rho` ``growth_rate``.
    """
    d, d_max = group["d"], group["d_max"]
    d_hat = group["d_coef"] * numerator / denominator
    if d == group["d0"]:
        d = max(d, d_hat)
    d_max = max(d_max, d_hat)
    d = min(d_max, d * group["growth_rate"])
    return {
        "d_numerator": numerator,
        "d_denom": denominator,
        "d": d,
        "d_max": d_max,
        "d_hat": d_hat,
    }


@picklable
def scale_by_prodigy() -> Transform:
    r"""Prodigy's direction: the :math:`d`-weighted moments, normalized as Adam's.

    .. math::
        u_t = \frac{m_t}{\sqrt{v_t} + d\,\epsilon}
        \quad\left(\beta_1 = 0:\ u_t = \frac{d\, g_t}{\sqrt{v_t} + d\,\epsilon}\right)

    The moments were updated by :func:`prodigy_sums`; ``hp["d"]`` is the new estimate.
    A chain then adds decoupled decay and scales by :math:`d\eta` (the estimate *before*
    this step's update, times the bias correction). State ``exp_avg`` (when
    :math:`\beta_1 > 0`), ``exp_avg_sq``, ``s`` and ``p0`` (the flattened, sliced
    initial point), as the reference. On FSDP2's sharded parameters ``s`` and ``p0`` keep
    the parameter's shape and sharding (``slice_p`` must be 1), and each sum is each
    rank's part, reduced across the ranks (the reference's ``fsdp_in_use``).
    """

    def init(params: list[Tensor], hp: Hyper) -> State:
        slice_p = hp["slice_p"]
        state: State = {
            "s": [torch.zeros_like(_sliced(p, slice_p)) for p in params],
            "p0": [_sliced(p, slice_p).detach().clone() for p in params],
        }
        if hp["betas"][0] > 0:
            state["exp_avg"] = [torch.zeros_like(p) for p in params]
        state["exp_avg_sq"] = [torch.zeros_like(p) for p in params]
        return state

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        d = hp["d"]
        denom = torch._foreach_sqrt(state["exp_avg_sq"])
        torch._foreach_add_(denom, d * hp["eps"])
        if hp["betas"][0] > 0:
            return torch._foreach_div(state["exp_avg"], denom)
        return torch._foreach_div(torch._foreach_mul(grads, d), denom)

    return Transform(
        init,
        update,
        {
            "betas": (0.9, 0.999),
            "beta3": None,
            "eps": 1e-8,
            "d": 1e-6,
            "d0": 1e-6,
            "d_max": 1e-6,
            "d_numerator": 0.0,
            "d_coef": 1.0,
            "k": 0,
            "growth_rate": float("inf"),
            "use_bias_correction": False,
            "decouple": True,
            "safeguard_warmup": False,
            "fsdp_in_use": False,
            "slice_p": 1,
        },
        {
            "betas": BETAS,
            "beta3": (Interval(0.0, 1.0, closed="left"), _NONE),
            "eps": POSITIVE,
            "d0": POSITIVE,
            "d_coef": POSITIVE,
            "growth_rate": Interval(1.0, None, closed="left"),
            "use_bias_correction": FLAG,
            "decouple": FLAG,
            "safeguard_warmup": FLAG,
            "fsdp_in_use": FLAG,
            "slice_p": SLICE,
            "weight_decay": NON_NEGATIVE,
        },
        True,
        "scale_by_prodigy",
        elementwise=True,
    )
