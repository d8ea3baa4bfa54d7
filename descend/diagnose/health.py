"""Gradient health of a network: per-parameter gradient norms, update sizes and dead ReLU units.

Three numbers say most of what goes wrong inside a network:

- the gradient norm of every parameter tensor, :math:`\\lVert \\nabla_{W_\\ell} L \\rVert_2`,
  in model order (first layer first): when the first layers' norms are orders of
  magnitude below the last layer's, the gradient *vanishes* on its way back;
- the update-to-parameter ratio :math:`\\lVert \\Delta W_\\ell \\rVert / \\lVert W_\\ell \\rVert`
  of one optimizer step (about :math:`10^{-3}` is the rule of thumb; far below it the
  learning rate is too small, far above it too large);
- the fraction of ReLU units that output zero for every sample of a batch (dead units
  receive no gradient and never recover).

:func:`gradient_report` measures one batch; :class:`GradientHealth` records the same
inside :func:`~descend.train.fit` every few steps and can stop a run on a verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from descend._validation import Interval, Satisfies, validate
from descend.diagnose.record import HealthRecord
from descend.diagnose.rules import diagnose_history
from descend.diagnose.verdict import KINDS, Verdict
from descend.train import Callback, TrainState

# Guards a ratio whose parameter is exactly zero (a zero-initialised bias).
_TINY = 1e-12


class _ReluProbe:
    """Forward hooks on every ``nn.ReLU``: the fraction of units dead on the batch seen while armed."""

    def __init__(self, model: nn.Module) -> None:
        self.armed = False
        self.dead: dict[str, float] = {}
        self._handles = [
            module.register_forward_hook(self._hook(name))
            for name, module in model.named_modules()
            if isinstance(module, nn.ReLU)
        ]

    def _hook(self, name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: Any, output: Tensor) -> None:
            if not self.armed or output.ndim == 0:
                return
            # A unit (feature, or channel x position) is dead when no sample activates it.
            alive = (output.detach() > 0).reshape(output.shape[0], -1).any(dim=0)
            self.dead[name] = 1.0 - float(alive.float().mean())

        return hook

    def take(self) -> dict[str, float]:
        dead, self.dead = self.dead, {}
        return dead

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def _norms(tensors: Mapping[str, Tensor]) -> dict[str, float]:
    return {name: float(t.detach().norm()) for name, t in tensors.items()}


def weight_names(model: nn.Module) -> list[str]:
    """Names of the parameters with two or more dimensions (weight matrices, kernels), in model order."""
    return [n for n, p in model.named_parameters() if p.requires_grad and p.ndim >= 2]


def first_nonfinite(model: nn.Module, loss: float) -> str | None:
    """Where a NaN or infinity first appears: a parameter's value, else its gradient, else the loss.

    Parameters are searched in model order. A parameter whose *value* went non-finite
    is the origin (the update overflowed there); otherwise the first non-finite
    gradient; otherwise ``"loss"`` when only the loss is non-finite.
    """
    named = list(model.named_parameters())
    for name, p in named:
        if not bool(torch.isfinite(p.detach()).all()):
            return name
    for name, p in named:
        if p.grad is not None and not bool(torch.isfinite(p.grad).all()):
            return name
    return None if math.isfinite(loss) else "loss"


def gradient_report(
    model: nn.Module, loss_fn: Callable[[Any, Any], Tensor], batch: tuple[Any, Any]
) -> HealthRecord:
    """Gradient norms and dead ReLU fractions of ``model`` on one batch, without touching ``.grad``.

    The gradients come from ``torch.autograd.grad``, so the parameters' ``.grad``
    and the model's mode (train/eval) are left as they were.

    Args:
        model: the network.
        loss_fn: ``(output, target) -> scalar tensor``.
        batch: ``(inputs, targets)``.

    Returns:
        A :class:`HealthRecord` with ``step=0`` and no update ratios.

    Example:
        >>> import torch
        >>> model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
        >>> rec = gradient_report(model, torch.nn.MSELoss(), (torch.ones(4, 2), torch.zeros(4, 1)))
        >>> list(rec.grad_norms), list(rec.dead_fraction)
        (['0.weight', '0.bias', '2.weight', '2.bias'], ['1'])
    """
    x, y = batch
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    probe = _ReluProbe(model)
    probe.armed = True
    try:
        with torch.enable_grad():
            value = loss_fn(model(x), y)
        grads = torch.autograd.grad(value, [p for _, p in named], allow_unused=True)
    finally:
        probe.remove()
    grad_norms = {
        name: 0.0 if g is None else float(g.norm())
        for (name, _), g in zip(named, grads, strict=True)
    }
    loss = float(value.detach())
    nonfinite = None
    if not math.isfinite(loss) or not all(math.isfinite(v) for v in grad_norms.values()):
        bad = [n for n, v in grad_norms.items() if not math.isfinite(v)]
        nonfinite = bad[0] if bad else "loss"
    return HealthRecord(0, loss, grad_norms, {}, probe.take(), nonfinite, weight_names(model))


_COUNT = Interval(1, None, integer=True)


class GradientHealth(Callback):
    """Record gradient health inside :func:`~descend.train.fit` every few steps; optionally stop on a verdict.

    At update :math:`t` (1-based) with :math:`t = 1` or :math:`t \\bmod k = 0` it records
    a :class:`HealthRecord`: the gradient norm of every parameter (as the optimizer
    receives them, i.e. after clipping), the update-to-parameter ratio

    .. math::
        r_\\ell = \\frac{\\lVert \\theta_\\ell^{(t+1)} - \\theta_\\ell^{(t)} \\rVert_2}
                       {\\lVert \\theta_\\ell^{(t)} \\rVert_2}

    (parameters copied in ``on_before_optimizer_step``, compared in ``on_step_end``) and
    the dead fraction of every ``nn.ReLU`` module (forward hooks, armed only for
    recorded steps). A step whose loss or gradient is not finite is always recorded,
    with the parameter where the non-finite values first appeared.

    With ``stop_on`` (verdict kinds), :func:`diagnose_history` runs at each recorded
    step and the first verdict of one of those kinds ends the run, its message
    becoming ``history.stop_reason``: a divergence is caught while the losses
    recorded are still finite.

    Args:
        every_n_steps: record every k-th update (and the first).
        stop_on: verdict kinds that end the run, e.g. ``("lr_too_large", "exploding")``.

    Attributes:
        records: the :class:`HealthRecord` list, in step order.
        verdict: the verdict that stopped the run, if any.
    """

    def __init__(self, *, every_n_steps: int = 10, stop_on: Collection[str] = ()) -> None:
        validate(
            "GradientHealth",
            {"every_n_steps": every_n_steps, "stop_on": stop_on},
            {
                "every_n_steps": _COUNT,
                "stop_on": Satisfies(
                    lambda s: not isinstance(s, str) and all(k in KINDS for k in s),
                    f"a collection of verdict kinds from {KINDS}",
                ),
            },
        )
        self.every_n_steps = int(every_n_steps)
        self.stop_on = tuple(stop_on)
        self.records: list[HealthRecord] = []
        self.verdict: Verdict | None = None
        self._probe: _ReluProbe | None = None
        self._before: dict[str, Tensor] | None = None
        self._grad_norms: dict[str, float] = {}
        self._history: Any = None

    def _records_step(self, step: int) -> bool:
        return step == 1 or step % self.every_n_steps == 0

    def on_fit_start(self, state: TrainState) -> None:
        self._history = state.history
        self._probe = _ReluProbe(state.model)
        self._probe.armed = self._records_step(state.step + 1)

    def on_before_optimizer_step(self, state: TrainState) -> None:
        if not self._records_step(state.step + 1):
            return
        named = [(n, p) for n, p in state.model.named_parameters() if p.grad is not None]
        self._grad_norms = {n: float(p.grad.norm()) for n, p in named}
        self._before = {n: p.detach().clone() for n, p in named}

    def on_step_end(self, state: TrainState) -> None:
        finite = math.isfinite(state.loss) and (
            state.grad_norm is None or math.isfinite(state.grad_norm)  # None: norm not tracked
        )
        if self._records_step(state.step) or not finite:
            self._record(state, state.step, finite)
        if self._probe is not None:
            self._probe.armed = self._records_step(state.step + 1)

    def on_fit_end(self, state: TrainState) -> None:
        # With on_nonfinite="raise", fit raises before on_step_end: record the culprit here.
        if not math.isfinite(state.loss) and not any(r.nonfinite for r in self.records):
            self._record(state, state.step + 1, finite=False)
        if self._probe is not None:
            self._probe.remove()
            self._probe = None

    def _record(self, state: TrainState, step: int, finite: bool) -> None:
        model = state.model
        if finite and self._before is not None:
            params = dict(model.named_parameters())
            ratios = {
                n: float((params[n].detach() - before).norm()) / max(float(before.norm()), _TINY)
                for n, before in self._before.items()
            }
            grad_norms = self._grad_norms
        else:
            ratios = {}
            grad_norms = _norms(
                {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
            )
        dead = self._probe.take() if self._probe is not None else {}
        where = None if finite else first_nonfinite(model, state.loss)
        record = HealthRecord(
            step, state.loss, grad_norms, ratios, dead, where, weight_names(model)
        )
        self.records.append(record)
        self._before, self._grad_norms = None, {}
        if self.stop_on and not state.should_stop:
            for verdict in diagnose_history(state.history, self.records):
                if verdict.kind in self.stop_on:
                    self.verdict = verdict
                    state.stop(f"Diagnosed {verdict.kind}: {verdict.message}", success=False)
                    break

    def verdicts(self) -> list[Verdict]:
        """:func:`diagnose_history` of the run recorded so far."""
        return diagnose_history(self._history, self.records)

    def state_dict(self) -> dict[str, Any]:
        return {"records": [r.to_dict() for r in self.records]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.records = [HealthRecord.from_dict(d) for d in state_dict.get("records", [])]
