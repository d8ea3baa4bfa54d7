"""Prodigy (Mishchenko & Defazio, 2024): the reference package's class, signature,
defaults and state layout, as two parts: the estimate's sums over every group, then a
chain of transforms for the step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from descend.optim.compose import chain
from descend.optim.conditional import when
from descend.optim.layout import as_real
from descend.optim.named import Params, _Named
from descend.optim.transforms import add_decayed_weights, add_weight_decay, scale_by_lr
from descend.optim.transforms.prodigy import beta3_of, next_d, prodigy_sums, scale_by_prodigy

_PRODIGY = chain(
    when("decouple", add_weight_decay(), value=False),
    scale_by_prodigy(),
    when("decouple", add_decayed_weights(), value=True),
    scale_by_lr(),
)


class Prodigy(_Named):
    r"""Prodigy: Adam with a step size :math:`d` estimated on the fly from how far the
    parameters have moved (learning-rate-free: leave ``lr=1``).

    A drop-in ``prodigyopt.Prodigy``: same arguments, defaults and state dict (group keys
    ``d``, ``d0``, ``d_max``, ``d_numerator``, ``k``, ... ; state ``step``, ``s``, ``p0``,
    ``exp_avg``, ``exp_avg_sq``).

    .. math::
        g_t &\leftarrow \nabla L(x_t) \;[+\,\lambda x_t \text{ if not decouple}], \qquad
        \eta_t = \eta\, d_t \;\Big[\tfrac{\sqrt{1-\beta_2^{t}}}{1-\beta_1^{t}}
                 \text{ with use\_bias\_correction}\Big]\\
        m_t &= \beta_1 m_{t-1} + d_t(1-\beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + d_t^2(1-\beta_2) g_t^2\\
        r_t &= \beta_3 r_{t-1} + \tfrac{d_t}{d_0}\eta_t \langle g_t, x_0 - x_t\rangle, \qquad
        s_t = \beta_3 s_{t-1} + \tfrac{d_t}{d_0}\eta_t\, g_t\\
        \hat d_{t+1} &= c\, r_t / \lVert s_t\rVert_1, \qquad
        d_{t+1} = \min\!\big(\max_{i \le t+1} \hat d_i,\ \rho\, d_t\big)
        \quad (d_{t+1} \ge d_t \text{ while } d_t = d_0)\\
        x_{t+1} &= x_t - \eta_t\Big(\frac{m_t}{\sqrt{v_t} + d_{t+1}\epsilon}
                   \;[+\,\lambda x_t \text{ if decouple}]\Big)

    Symbols: :math:`\eta` ``lr`` (a multiplier on the estimate), :math:`(\beta_1,\beta_2)`
    ``betas``, :math:`\beta_3` ``beta3`` (``None``: :math:`\sqrt{\beta_2}`), :math:`\epsilon`
    ``eps``, :math:`\lambda` ``weight_decay`` (``decouple=True``: AdamW's), :math:`d_0`
    ``d0``, :math:`c` ``d_coef``, :math:`\rho` ``growth_rate``; ``safeguard_warmup`` drops
    :math:`\eta` from :math:`s`'s increment; ``slice_p`` keeps every ``slice_p``-th entry in
    :math:`s` and :math:`x_0` (an approximation for ``slice_p > 1``). The sums
    :math:`\langle\cdot\rangle`, :math:`\lVert s\rVert_1` run over *every* parameter of
    the optimizer (all groups; all ranks with ``fsdp_in_use``), so the step is in two
    parts: :func:`~descend.optim.transforms.prodigy.prodigy_sums`, then the chain
    when(not decouple: add_weight_decay) → scale_by_prodigy → when(decouple:
    add_decayed_weights) → scale_by_lr with :math:`\eta_t` as the rate. State: 4 tensors
    per parameter (2 with ``slice_p`` large; 3 with :math:`\beta_1 = 0`).

    .. warning:: As the reference: every group's ``lr`` must be the largest one or 0, and
       the betas of the first group serve every group. Unlike the reference, a group with
       ``lr=0`` is not moved at all (the reference still applies its decoupled decay).

    .. note:: ``d`` only grows: a schedule multiplies ``lr`` as usual, and the authors
       recommend a cosine decay for long runs (``d_coef`` is the knob to tune, 0.5–2).

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = descend.Prodigy([x])
        >>> for _ in range(500):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> bool(x.abs().max() < 1e-2)
        True

    References:
        Mishchenko & Defazio, "Prodigy: An Expeditiously Adaptive Parameter-Free
        Learner", ICML 2024. https://arxiv.org/abs/2306.06101 ; reference implementation
        https://github.com/konstmish/prodigy (pip ``prodigyopt``).
    """

    transform = _PRODIGY

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1.0,
        betas: tuple[float, float] = (0.9, 0.999),
        beta3: float | None = None,
        eps: float = 1e-8,
        weight_decay: float = 0,
        decouple: bool = True,
        use_bias_correction: bool = False,
        safeguard_warmup: bool = False,
        d0: float = 1e-6,
        d_coef: float = 1.0,
        growth_rate: float = float("inf"),
        fsdp_in_use: bool = False,
        slice_p: int = 1,
        *,
        compile: bool = False,
    ) -> None:
        super().__init__(
            params,
            _PRODIGY,
            compile=compile,
            lr=lr,
            betas=betas,
            beta3=beta3,
            eps=eps,
            weight_decay=weight_decay,
            d=d0,
            d0=d0,
            d_max=d0,
            d_numerator=0.0,
            d_coef=d_coef,
            k=0,
            growth_rate=growth_rate,
            use_bias_correction=use_bias_correction,
            decouple=decouple,
            safeguard_warmup=safeguard_warmup,
            fsdp_in_use=fsdp_in_use,
            slice_p=slice_p,
        )

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One Prodigy update of every param group; ``closure`` re-evaluates the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        groups = self.param_groups
        scheduled = [self._schedules.before_update(i, g) for i, g in enumerate(groups)]
        with torch.no_grad():
            self._update(groups)
        for group, was in zip(groups, scheduled, strict=True):
            if was:
                self._schedules.after_update(group)
        return loss

    def _update(self, groups: list[dict[str, Any]]) -> None:
        first = groups[0]
        beta1, beta2 = (float(b) for b in first["betas"])
        k = first["k"]
        lr = max(float(g["lr"]) for g in groups)
        bias = 1.0
        if first["use_bias_correction"]:
            bias = (1 - beta2 ** (k + 1)) ** 0.5 / (1 - beta1 ** (k + 1))
        d = first["d"]
        dlr = d * lr * bias
        active, numerator, denominator = [], 0.0, 0.0
        fsdp = any(g["fsdp_in_use"] for g in groups)
        for i, group in enumerate(groups):
            group_lr = float(group["lr"])
            if group_lr not in (lr, 0.0):
                raise RuntimeError(
                    f"Prodigy needs every param group's lr to be the largest one ({lr}) or 0. "
                    f"Got lr={group_lr} in param group {i}; scale d_coef per group instead."
                )
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            fsdp = fsdp or any(hasattr(p, "_fsdp_flattened") for p in params)
            self._init_state(group, params)
            active.append((group, params))
            if group_lr == 0.0:
                continue
            real = [as_real(p) for p in params]
            grads = [as_real(p.grad) for p in params]
            if group["weight_decay"] != 0 and not group["decouple"]:
                grads = torch._foreach_add(grads, real, alpha=group["weight_decay"])
            keys = [
                key for key in ("s", "p0", "exp_avg", "exp_avg_sq") if key in self.state[params[0]]
            ]
            lists = {key: [as_real(self.state[p][key]) for p in params] for key in keys}
            num, den = prodigy_sums(
                grads, lists, real, group, d=d, dlr=dlr, betas=(beta1, beta2, beta3_of(first))
            )
            numerator, denominator = numerator + num, denominator + den
        if denominator == 0 and not fsdp:
            return  # no gradient yet: the reference leaves d, k and the parameters as they are
        if fsdp and dist.is_available() and dist.is_initialized():
            sums = torch.tensor(
                [numerator, denominator], dtype=torch.float64, device=self._device()
            )
            dist.all_reduce(sums, op=dist.ReduceOp.SUM)
            numerator, denominator = sums.tolist()
        estimate = {"d_numerator": first["d_numerator"], "d": d, "d_max": first["d_max"]}
        if lr > 0:
            estimate = next_d(
                first, first["d_numerator"] * beta3_of(first) + numerator, denominator
            )
        for group in groups:
            group.update(estimate)
        for group, params in active:
            rate = d * float(group["lr"]) * bias
            view = {**group, "lr": rate}
            if self._compile or torch.compiler.is_compiling():
                dtype = params[0].dtype.to_real()
                view["lr"], view["d"] = (torch.tensor(v, dtype=dtype) for v in (rate, group["d"]))
            self._step_group(view, params)
        for group in groups:
            group["k"] += 1

    def _device(self) -> torch.device:
        return next(p.device for g in self.param_groups for p in g["params"])
