"""AdEMAMix: Adam's update plus a slow exponential moving average of the gradients, with
the warmups of the slow average's weight and decay."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from descend._validation import Interval, OneOf, Satisfies
from descend.optim._constraints import NON_NEGATIVE, UNIT_OPEN
from descend.optim.transform import (
    Hyper,
    Quotient,
    State,
    Sum,
    Transform,
    owned,
    picklable,
    scalars_like,
)

# Per-tensor numbers of a step, computed once per step (Transform.scalars).
_SCALE, _EPS = "ademamix_denominator_scale", "ademamix_denominator_eps"
_ALPHA, _SLOW = "ademamix_alpha", "ademamix_slow_weight"

WARMUP = (OneOf((None,)), Interval(0.0, None, closed="neither", finite=True))


def _is_beta_triple(value: object) -> bool:
    return (
        isinstance(value, tuple | list)
        and len(value) == 3
        and all(UNIT_OPEN.contains(float(b)) for b in value)
    )


BETAS3 = Satisfies(_is_beta_triple, "a triple of floats, each in [0, 1)")


def alpha_schedule(step: float, alpha: float, warmup: float | None) -> float:
    r"""The slow average's weight at ``step``: :math:`\alpha_t = \min(t\alpha/T_\alpha,
    \alpha)` (linear from 0), or :math:`\alpha` without a warmup (``warmup=None``)."""
    return alpha if warmup is None else min(step * alpha / warmup, alpha)


def beta3_schedule(step: float, beta1: float, beta3: float, warmup: float | None) -> float:
    r"""The slow average's decay at ``step``: its half-life grows linearly from
    :math:`\beta_1`'s to :math:`\beta_3`'s over ``warmup`` steps (the paper's eq. for
    :math:`\beta_3^{(t)}`, with :math:`a = t / T_{\beta_3}`):

    .. math::
        \beta_3^{(t)} = \min\!\left(\exp\frac{\ln\beta_1 \ln\beta_3}
            {(1 - a)\ln\beta_3 + a\ln\beta_1},\ \beta_3\right)

    :math:`\beta_3` itself without a warmup. A zero :math:`\beta_1` (half-life 0) or
    :math:`\beta_3` takes the limit of the same formula."""
    if warmup is None:
        return beta3
    if beta3 == 0:
        return 0.0
    a = step / warmup
    if beta1 == 0:  # 1/ln(beta) interpolated from 0: ln(beta_t) = ln(beta3) / a
        return 0.0 if a == 0 else min(math.exp(math.log(beta3) / a), beta3)
    log1, log3 = math.log(beta1), math.log(beta3)
    return min(math.exp(log1 * log3 / ((1 - a) * log3 + a * log1)), beta3)


def _like_step(value: float, step: Any) -> Any:
    # A 0-d tensor where the step is one (a compiled step): a changing Python number would
    # be a constant of the graph, recompiled for at every step of the warmup.
    return torch.tensor(value, dtype=step.dtype) if isinstance(step, Tensor) else value


@picklable
def scale_by_ademamix() -> Transform:
    r"""Scale by Adam's bias-corrected moments mixed with a slow, uncorrected average
    of the gradients (Pagliardini et al., 2024, Algorithm 1).

    .. math::
        m^{(1)}_t &= \beta_1 m^{(1)}_{t-1} + (1 - \beta_1)\, g_t \\
        m^{(2)}_t &= \beta_3^{(t)} m^{(2)}_{t-1} + (1 - \beta_3^{(t)})\, g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2 \\
        u_t &= \frac{m^{(1)}_t / (1 - \beta_1^t) + \alpha_t\, m^{(2)}_t}
                    {\sqrt{v_t / (1 - \beta_2^t)} + \epsilon}

    Symbols: :math:`(\beta_1, \beta_2, \beta_3)` is ``betas`` (default
    ``(0.9, 0.999, 0.9999)``), :math:`\alpha` is ``alpha`` (default 2.0, the authors'
    code), :math:`\epsilon` is ``eps``; ``alpha_warmup`` (:math:`T_\alpha`) and
    ``beta3_warmup`` (:math:`T_{\beta_3}`) set the schedules :func:`alpha_schedule` and
    :func:`beta3_schedule` (``None``: none). State ``exp_avg_fast`` (:math:`m^{(1)}`, not
    kept when :math:`\beta_1 = 0`: the gradient stands in for it, as in the authors' code),
    ``exp_avg_slow`` (:math:`m^{(2)}`), ``exp_avg_sq`` (:math:`v`) and ``step`` (:math:`t`).

    .. warning:: The slow average is not bias-corrected (the paper's choice: with
       :math:`\beta_3 = 0.9999` a correction would make its early values as loud as the
       gradient); start with the warmups on long runs, as the paper does. The authors'
       PyTorch code adds ``1e-8`` to :math:`\beta` inside the half-life's logarithm,
       which moves :math:`\beta_3^{(t)}` by ~1e-4 relative for :math:`\beta_3 = 0.9999`;
       this is the paper's formula, as ``pytorch-optimizer`` computes it.
    """

    def init(params: list[Tensor], hp: Hyper) -> State:
        def zeros() -> list[Tensor]:
            return [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]

        state: State = {"exp_avg_slow": zeros(), "exp_avg_sq": zeros()}
        if hp["betas"][0] != 0:
            state["exp_avg_fast"] = zeros()
        return state

    def quotient(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> Quotient:
        beta1, beta2, _ = hp["betas"]
        given = hp if _SCALE in hp else factors(hp)
        slow, v = state["exp_avg_slow"], state["exp_avg_sq"]
        fast = state.get("exp_avg_fast")
        if fast is not None:
            torch._foreach_lerp_(fast, grads, 1 - beta1)
        else:
            fast = grads
        weights = scalars_like(given[_SLOW], slow)
        if any(isinstance(w, Tensor) for w in weights):
            # Per tensor: foreach ops with a list of 0-d tensors have no compiled kernel
            # (they would run eagerly, at half the compiled step's time). The same formula
            # as torch's lerp for w < 0.5.
            for m, g, w in zip(slow, grads, weights, strict=True):
                m.add_((g - m) * w)
        else:  # one number where all agree: a list of them has no compiled kernel either
            torch._foreach_lerp_(slow, grads, weights[0] if len(set(weights)) == 1 else weights)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - beta2)
        # u = (m1 + alpha c1 m2) / (c1 (sqrt(v) / c2 + eps)), c1 = 1 - beta1^t and
        # c2 = sqrt(1 - beta2^t): the corrections go into one factor per tensor each.
        alphas, scale, eps = given[_ALPHA], given[_SCALE], given[_EPS]
        denom = owned(torch._foreach_sqrt(v))
        if any(isinstance(a, Tensor) for a in [*alphas, *scale]):  # per tensor, as above
            num = [
                f + m * a for f, m, a in zip(fast, slow, scalars_like(alphas, slow), strict=True)
            ]
            torch._foreach_mul_(denom, scalars_like(scale, denom))
            torch._foreach_add_(denom, scalars_like(eps, denom))
            return num, denom, None
        # sqrt(v) a + e = a (sqrt(v) + e / a): a becomes a divisor, which a landing folds
        # into its scalars (one pass over denom fewer); m1 + alpha m2 is left unmade (Sum),
        # for the landing to add each by its own addcdiv_ (no new tensor for it).
        torch._foreach_add_(denom, [e / a for e, a in zip(eps, scale, strict=True)])
        return Sum(fast, slow, alphas), denom, scale

    def update(grads: list[Tensor], state: State, params: list[Tensor], hp: Hyper) -> list[Tensor]:
        num, denom, divisors = quotient(grads, state, params, hp)
        if isinstance(num, Sum):
            num = num.made()
        torch._foreach_div_(num, denom)  # num is this step's own tensor: no new one for u
        if divisors is not None:
            torch._foreach_div_(num, divisors)
        return num

    def factors(hp: Hyper) -> dict[str, list[Any]]:
        beta1, beta2, beta3 = hp["betas"]
        steps = hp["step"]
        c1 = [1 - beta1**s for s in steps]
        return {
            _SCALE: [a / (1 - beta2**s) ** 0.5 for a, s in zip(c1, steps, strict=True)],
            _EPS: [a * hp["eps"] for a in c1],
            # The schedules are functions of the step as a number (a 0-d tensor in a
            # compiled or capturable step is read once here, outside the kernels).
            _ALPHA: [
                a * alpha_schedule(float(s), hp["alpha"], hp["alpha_warmup"])
                for a, s in zip(c1, steps, strict=True)
            ],
            _SLOW: [
                _like_step(1 - beta3_schedule(float(s), beta1, beta3, hp["beta3_warmup"]), s)
                if hp["beta3_warmup"] is not None
                else 1 - beta3  # a constant: no graph input needed
                for s in steps
            ],
        }

    return Transform(
        init,
        update,
        {
            "betas": (0.9, 0.999, 0.9999),
            "alpha": 2.0,
            "alpha_warmup": None,
            "beta3_warmup": None,
            "eps": 1e-8,
        },
        {
            "betas": BETAS3,
            "alpha": NON_NEGATIVE,
            "alpha_warmup": WARMUP,
            "beta3_warmup": WARMUP,
            "eps": NON_NEGATIVE,
        },
        True,
        "scale_by_ademamix",
        elementwise=True,
        scalars=factors,
        quotient=quotient,
    )
