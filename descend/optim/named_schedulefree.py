"""Schedule-Free AdamW and SGD (Defazio et al., 2024): the reference package's classes,
signatures, defaults, ``train()``/``eval()`` and state layout, each a chain of transforms."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor

from descend._validation import Interval, Satisfies
from descend.optim._constraints import LEARNING_RATE
from descend.optim.compose import chain
from descend.optim.layout import as_real
from descend.optim.named import Params, _Named
from descend.optim.transform import Transform, picklable, stateless
from descend.optim.transforms import add_decayed_weights, add_weight_decay
from descend.optim.transforms.schedulefree import (
    AVERAGING_CONSTRAINTS,
    AVERAGING_DEFAULTS,
    BC2,
    BOOKKEEPING,
    LR,
    averaging,
    scale_by_schedule_free_rms,
    schedule_free,
    to_x,
    to_y,
)

_FIRST_BETA = Interval(0.0, 1.0, closed="neither")


def _declared(update: Any, state: Any, params: Any, hp: Any) -> Any:
    return update


def _always(hp: Any) -> bool:
    return True


@picklable
def _keys() -> Transform:
    """The averaging settings and the group's bookkeeping, declared once for both chains
    (the optimizer reads them from the group; no transform changes the updates for them):
    passed through, so that schedule_free still lands the step (Transform.land)."""
    keys = stateless(
        _declared,
        name="schedule_free_keys",
        defaults={"lr": 0.0025, **AVERAGING_DEFAULTS, **BOOKKEEPING},
        constraints={
            "lr": LEARNING_RATE,
            **AVERAGING_CONSTRAINTS,
            "betas": Satisfies(
                lambda b: (
                    isinstance(b, tuple | list)
                    and len(b) == 2
                    and _FIRST_BETA.contains(float(b[0]))
                    and 0 <= float(b[1]) < 1
                ),
                "a pair (beta1, beta2) with beta1 in (0, 1) (eval() divides by it) and beta2 in [0, 1)",
            ),
        },
        elementwise=True,
    )
    return dataclasses.replace(keys, passthrough=_always)


_ADAMW = chain(scale_by_schedule_free_rms(), add_decayed_weights(), schedule_free("betas"), _keys())
_SGD = chain(add_weight_decay(), schedule_free("momentum"), _keys())


class _ScheduleFree(_Named):
    """train()/eval() and the per-group averaging bookkeeping, shared by both rules."""

    _beta: ClassVar[Callable[[dict[str, Any]], float]]

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One Schedule-Free update of every param group (train mode only)."""
        for i, group in enumerate(self.param_groups):
            if not group["train_mode"]:
                raise RuntimeError(
                    f"{type(self).__name__}.step() was called in eval mode (param group {i} "
                    "has train_mode=False): the parameters hold the averaged point x, where "
                    "no gradient step may be taken. Call optimizer.train() before training "
                    "steps, and optimizer.eval() before evaluating or saving."
                )
        self._stepped: set[int] = set()
        loss = super().step(closure)
        for group in self.param_groups:
            if id(group) not in self._stepped:
                averaging(group)  # the reference advances a group without gradients too
                group["k"] += 1
        return loss

    def _step_group(self, group: dict[str, Any], params: list[Tensor]) -> None:
        numbers: dict[str, Any] = averaging(group)
        numbers[BC2] = 1 - group["betas"][1] ** (group["k"] + 1) if "betas" in group else 1.0
        if self._compile or torch.compiler.is_compiling():
            # Graph inputs, not constants: a compiled step would recompile every step.
            dtype = params[0].dtype.to_real()
            numbers = {k: torch.tensor(v, dtype=dtype) for k, v in numbers.items()}
            numbers["lr"] = numbers[LR]
        super()._step_group({**group, **numbers}, params)
        group["k"] += 1
        self.__dict__.setdefault("_stepped", set()).add(id(group))

    @torch.no_grad()
    def eval(self) -> None:
        """Set the parameters to the averaged point :math:`x` (evaluate, checkpoint there)."""
        self._switch(False, to_x)

    @torch.no_grad()
    def train(self) -> None:
        """Set the parameters to the gradient point :math:`y` (before training steps)."""
        self._switch(True, to_y)

    def _switch(
        self, mode: bool, move: Callable[[list[Tensor], list[Tensor], float], None]
    ) -> None:
        for group in self.param_groups:
            if group["train_mode"] == mode:
                continue
            params = [p for p in group["params"] if "z" in self.state.get(p, {})]
            if params:
                zs = [as_real(self.state[p]["z"].to(p.device)) for p in params]
                move([as_real(p) for p in params], zs, type(self)._beta(group))
            group["train_mode"] = mode


class ScheduleFreeAdamW(_ScheduleFree):
    r"""Schedule-Free AdamW: AdamW's normalization, with iterate averaging instead of a
    learning-rate schedule (no decay to plan, no stopping time to choose).

    A drop-in ``schedulefree.AdamWScheduleFree``: same arguments, defaults, ``train()`` /
    ``eval()`` and state dict (group keys ``k``, ``train_mode``, ``weight_sum``,
    ``lr_max``, ``scheduled_lr``; state ``exp_avg_sq``, ``z``).

    .. math::
        v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2, \qquad g_t = \nabla L(y_t)\\
        u_t &= \frac{g_t}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon} + \lambda\, y_t\\
        z_{t+1} &= z_t - \gamma_t u_t, \qquad
        x_{t+1} = (1-c_{t+1})\, x_t + c_{t+1} z_{t+1}, \qquad
        y_{t+1} = (1-\beta_1)\, z_{t+1} + \beta_1 x_{t+1}\\
        \gamma_t &= \eta\min(1, t/\text{warmup}), \qquad
        c_{t+1} = \frac{t^r \max_{i\le t}\gamma_i^{\,p}}{\sum_{i \le t} i^r \max_{j\le i}\gamma_j^{\,p}}

    Symbols: :math:`\eta` ``lr``, :math:`(\beta_1, \beta_2)` ``betas`` (:math:`\beta_1` is
    the interpolation, not a moment: there is no first moment), :math:`\epsilon` ``eps``,
    :math:`\lambda` ``weight_decay`` (at :math:`y`, after the normalization), ``warmup``
    ``warmup_steps``, :math:`r` ``r``, :math:`p` ``weight_lr_power``. Chain:
    scale_by_schedule_free_rms → add_decayed_weights → schedule_free. State: 2 tensors per
    parameter (as Adam; no ``exp_avg``). ``foreach`` is accepted and ignored (the step
    always runs foreach ops over a group's lists).

    .. warning:: **Modes.** In train mode the parameters hold :math:`y`, where gradients
       are taken; :meth:`eval` moves them to the average :math:`x`, which is what to
       evaluate, checkpoint and ship; :meth:`train` moves them back. ``descend.fit`` (and
       ``descend.minimize``, ``descend compare``) call both at the right moments; in your
       own loop call ``opt.train()`` before training steps and ``opt.eval()`` before
       evaluation and saving. Stepping in eval mode raises. Unlike the reference, a new
       optimizer starts in train mode (no state yet, so :math:`x = y`), so loops written
       for torch.optim run; they then evaluate at :math:`y`, not :math:`x`.

    .. warning:: **BatchNorm.** Running statistics are collected during training, at
       :math:`y`; after :meth:`eval` the weights are :math:`x`, so those statistics belong
       to other weights and evaluation can be much worse than it should be. Recompute them
       at :math:`x`: ``descend.train.recompute_bn(model, batches, optimizer)`` (a few
       training batches in ``model.train()`` with the optimizer in eval mode, as
       ``torch.optim.swa_utils.update_bn``). Models without BatchNorm need nothing.

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = descend.ScheduleFreeAdamW([x], lr=0.1)
        >>> opt.train()
        >>> for _ in range(300):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> opt.eval()
        >>> bool(x.abs().max() < 1e-2)
        True

    References:
        Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky, "The Road Less Scheduled",
        NeurIPS 2024. https://arxiv.org/abs/2405.15682 ; reference implementation
        https://github.com/facebookresearch/schedule_free (pip ``schedulefree``).
    """

    transform = _ADAMW
    _beta = staticmethod(lambda group: group["betas"][0])

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 0.0025,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        foreach: bool | None = True,
        *,
        compile: bool = False,
    ) -> None:
        super().__init__(
            params,
            _ADAMW,
            compile=compile,
            lr=lr,
            betas=betas,
            eps=eps,
            r=r,
            warmup_steps=warmup_steps,
            weight_lr_power=weight_lr_power,
            weight_decay=weight_decay,
            foreach=foreach,
            **BOOKKEEPING,
        )


class ScheduleFreeSGD(_ScheduleFree):
    r"""Schedule-Free SGD: gradient descent on :math:`z`, evaluated at a running average
    :math:`x`, with gradients taken between them, instead of momentum and a schedule.

    A drop-in ``schedulefree.SGDScheduleFree`` (arguments, defaults, ``train()`` /
    ``eval()``, state dict: group keys as :class:`ScheduleFreeAdamW`, state ``z``).

    .. math::
        u_t &= \nabla L(y_t) + \lambda\, y_t\\
        z_{t+1} &= z_t - \gamma_t u_t, \qquad
        x_{t+1} = (1-c_{t+1})\, x_t + c_{t+1} z_{t+1}, \qquad
        y_{t+1} = (1-\beta)\, z_{t+1} + \beta\, x_{t+1}

    Symbols: :math:`\beta` ``momentum`` (in (0, 1)), :math:`\lambda` ``weight_decay``;
    :math:`\gamma_t` and :math:`c_{t+1}` as in :class:`ScheduleFreeAdamW` (``lr``,
    ``warmup_steps``, ``r``, ``weight_lr_power``). Chain: add_weight_decay →
    schedule_free. State: 1 tensor per parameter (as SGD with momentum). The default
    ``lr=1.0`` is the reference's; it suits its normalized examples, most models want far less.

    .. warning:: Call ``opt.train()`` before training steps and ``opt.eval()`` before
       evaluating or saving, and recompute BatchNorm statistics at :math:`x`, as for
       :class:`ScheduleFreeAdamW` (whose warnings say why).

    Example:
        >>> import torch, descend
        >>> x = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = descend.ScheduleFreeSGD([x], lr=0.1)
        >>> for _ in range(200):
        ...     opt.zero_grad(); (x ** 2).sum().backward(); opt.step()
        >>> opt.eval()  # x: the average, within ~1/t of the minimum at r=0
        >>> bool(x.abs().max() < 2e-2)
        True

    References:
        Defazio et al., "The Road Less Scheduled", NeurIPS 2024.
        https://arxiv.org/abs/2405.15682 (pip ``schedulefree``).
    """

    transform = _SGD
    _beta = staticmethod(lambda group: group["momentum"])

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        foreach: bool | None = True,
        *,
        compile: bool = False,
    ) -> None:
        super().__init__(
            params,
            _SGD,
            compile=compile,
            lr=lr,
            momentum=momentum,
            r=r,
            warmup_steps=warmup_steps,
            weight_lr_power=weight_lr_power,
            weight_decay=weight_decay,
            foreach=foreach,
            **BOOKKEEPING,
        )
