"""The learning-rate range test: sweep the rate exponentially, watch the loss, suggest a rate.

Train for a few steps while the learning rate grows from ``start_lr`` to ``end_lr``;
the loss first barely moves (rate too small), then falls fast, then blows up (rate
too large). A good rate sits on the fast fall, before the blow-up (Smith 2017,
"Cyclical Learning Rates for Training Neural Networks", arXiv:1506.01186; the
"valley" rule follows fastai's ``lr_find``). The model and optimizer are put back
exactly as they were: the sweep only measures.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from descend._validation import Interval, OneOf, Satisfies, validate
from descend.optim import make_optimizer
from descend.train.batching import Batches, Data
from descend.train.precision import MixedPrecision

SUGGESTIONS = ("valley", "steepest", "min_over_10")


@dataclass
class LRFindResult:
    """What the sweep saw and the rates it suggests.

    Attributes:
        lrs: the learning rate of each step.
        losses: the batch loss at each step (the last may be the divergent one).
        smoothed: the bias-corrected exponential moving average of ``losses``.
        suggestions: ``{"valley", "steepest", "min_over_10"} -> lr`` (see :func:`lr_find`);
            empty when the curve is too short to suggest anything (see ``note``).
        stop_reason: why the sweep ended (divergence, non-finite loss, or all steps done).
        note: why there are no suggestions, or ``""``.
    """

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestions: dict[str, float] = field(default_factory=dict)
    stop_reason: str = ""
    note: str = ""

    def apply(self, optimizer: torch.optim.Optimizer, which: str = "valley") -> float:
        """Set every param group's ``lr`` of ``optimizer`` to suggestion ``which``; return it."""
        validate("LRFindResult.apply", {"which": which}, {"which": OneOf(SUGGESTIONS)})
        if which not in self.suggestions:
            raise ValueError(f"No learning rate to apply: {self.note}")
        lr = self.suggestions[which]
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def rows(self) -> list[dict[str, float]]:
        """One ``{"step", "lr", "loss", "smoothed"}`` row per step (for a CSV file)."""
        return [
            {"step": i + 1, "lr": lr, "loss": loss, "smoothed": s}
            for i, (lr, loss, s) in enumerate(
                zip(self.lrs, self.losses, self.smoothed, strict=True)
            )
        ]


def valley_index(values: np.ndarray, *, onset: float = 0.05) -> int:
    """The middle of the longest descending stretch of ``values`` (before their minimum).

    The stretch is the longest strictly decreasing subsequence (dynamic programming,
    :math:`O(n^2)`): ``length[i] = 1 + max(length[j] : j < i, v_j > v_i)``. Taking its
    middle, not its end, keeps away from the minimum, beyond which the loss soon
    rises (fastai's ``valley``).

    Unlike fastai, the search starts where the loss has fallen by ``onset`` of its
    total drop :math:`v_0 - \\min v`: a noiseless sweep (full batch) decreases by
    tiny amounts over its whole flat start, which would otherwise join the stretch
    and pull its middle to rates far too small to learn.
    """
    n = len(values)
    end_at = int(np.argmin(values))
    drop = float(values[0] - values[end_at])
    fallen = np.flatnonzero(values[: end_at + 1] <= values[0] - onset * drop)
    begin = int(fallen[0]) if drop > 0 and fallen.size else 0
    v = values[begin : end_at + 1] if end_at >= begin else values[:n]
    length = np.ones(len(v), dtype=int)
    start = np.arange(len(v))
    for i in range(1, len(v)):
        higher = np.flatnonzero(v[:i] > v[i])
        if higher.size:
            j = higher[np.argmax(length[higher])]
            length[i], start[i] = length[j] + 1, start[j]
    end = int(np.argmax(length))
    return begin + int(start[end] + (end - start[end]) // 2)


def suggest(lrs: np.ndarray, smoothed: np.ndarray) -> dict[str, float]:
    """The three suggestions from a sweep's learning rates and smoothed losses.

    - ``steepest``: :math:`\\arg\\min_i \\, d\\tilde L / d \\log \\eta` up to the minimum of
      :math:`\\tilde L` (where the loss falls fastest);
    - ``valley``: the middle of the longest descending stretch (:func:`valley_index`);
    - ``min_over_10``: :math:`\\arg\\min_i \\tilde L_i / 10` (a tenth of the rate of the lowest loss).
    """
    if lrs.size < 2:
        only = float(lrs[0]) if lrs.size else math.nan
        return {"valley": only, "steepest": only, "min_over_10": only / 10}
    # Past the minimum the loss is on its way up; a dip after a spike there is no candidate.
    upto = int(np.argmin(smoothed)) + 1
    slope = np.gradient(smoothed, np.log(lrs))[:upto]
    return {
        "valley": float(lrs[valley_index(smoothed)]),
        "steepest": float(lrs[int(np.argmin(slope))]),
        "min_over_10": float(lrs[int(np.argmin(smoothed))]) / 10.0,
    }


_POSITIVE = Interval(0, None, closed="neither", finite=True)
MIN_STEPS = 10
"""Fewer steps than this cannot trace a curve worth reading."""
MIN_CURVE = 5
"""Finite points before the divergence needed to suggest anything."""
_TABLE = {
    "start_lr": _POSITIVE,
    "end_lr": _POSITIVE,
    "num_steps": Interval(MIN_STEPS, None, integer=True),
    "smooth": Interval(0, 1, closed="left"),
    "diverge_factor": Interval(1, None, closed="neither"),
    "batch_size": (Interval(1, None, integer=True), Satisfies(lambda v: v is None, "None")),
}


def lr_find(
    model: nn.Module,
    data: Data,
    loss: Callable[[Any, Any], Tensor],
    optimizer: str | torch.optim.Optimizer = "sgd",
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    smooth: float = 0.98,
    diverge_factor: float = 4.0,
    batch_size: int | None = 64,
    seed: int = 0,
    precision: str = "fp32",
) -> LRFindResult:
    """Run the learning-rate range test on ``model``; leave model and optimizer as they were.

    Step :math:`i = 0..N-1` uses the rate and records the smoothed loss

    .. math::
        \\eta_i = \\eta_0 \\,(\\eta_1/\\eta_0)^{i/(N-1)}, \\qquad
        a_i = \\beta a_{i-1} + (1-\\beta) L_i, \\qquad \\tilde L_i = a_i / (1 - \\beta^{i+1})

    (:math:`a_{-1} = 0`; the division removes the bias toward 0 of the first averages).
    The sweep stops early when :math:`\\tilde L_i > \\text{diverge\\_factor} \\cdot \\min_{j \\le i} \\tilde L_j`
    or the loss is not finite. Suggestions: see :func:`suggest`.

    Args:
        model: the network; its parameters, buffers and train/eval mode are restored.
        data: ``(X, y)`` tensors or a ``Dataset``; batches cycle through it, reshuffled each pass.
        loss: ``(output, target) -> scalar tensor``.
        optimizer: a registry name (built over ``model.parameters()``) or an optimizer
            over them, whose state and learning rates are restored afterwards.
        start_lr, end_lr: the ends of the sweep.
        num_steps: steps of the sweep (fewer when it diverges).
        smooth: :math:`\\beta`, the smoothing factor.
        diverge_factor: stop when the smoothed loss exceeds this multiple of its best.
        batch_size: mini-batch size (``None``: the whole set each step).
        seed: the data order (the global RNG is restored too).
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"``: the forward pass under autocast,
            as in ``fit`` (:class:`~descend.train.precision.MixedPrecision`); the sweep runs
            on the device the model's parameters are on.

    Returns:
        :class:`LRFindResult`; apply a suggestion with ``result.apply(optimizer)``.

    Example:
        >>> import torch
        >>> X = torch.linspace(-1, 1, 64).unsqueeze(1); model = torch.nn.Linear(1, 1)
        >>> r = lr_find(model, (X, 2 * X), torch.nn.MSELoss(), num_steps=60, batch_size=None)
        >>> 0.05 < r.suggestions["valley"] < 1.0  # stable below 2/lambda_max = 1 here
        True
    """
    validate(
        "lr_find",
        {
            "start_lr": start_lr,
            "end_lr": end_lr,
            "num_steps": num_steps,
            "smooth": smooth,
            "diverge_factor": diverge_factor,
            "batch_size": batch_size,
        },
        _TABLE,
    )
    if end_lr <= start_lr:
        raise ValueError(
            f"lr_find needs end_lr > start_lr. Got start_lr={start_lr}, end_lr={end_lr}."
        )
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    amp = MixedPrecision(device, precision)
    batches = Batches(data, batch_size, device, name="data")
    model_state = copy.deepcopy(model.state_dict())
    grads = [(p, None if p.grad is None else p.grad.detach().clone()) for p in model.parameters()]
    was_training = model.training
    if isinstance(optimizer, torch.optim.Optimizer):
        opt, opt_state = optimizer, copy.deepcopy(optimizer.state_dict())
    else:
        opt, opt_state = make_optimizer(optimizer, model.parameters(), lr=start_lr), None

    lrs = start_lr * (end_lr / start_lr) ** (np.arange(num_steps) / (num_steps - 1))
    seen_lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    reason = f"All {num_steps} steps done."
    avg, best = 0.0, math.inf
    model.train()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            order, epoch, b = batches.order(seed, 1, True), 1, 0
            for i, lr in enumerate(lrs):
                if b == batches.n_batches:
                    epoch, b = epoch + 1, 0
                    order = batches.order(seed, epoch, True)
                x, y = batches.batch(order, b)
                b += 1
                for group in opt.param_groups:
                    group["lr"] = float(lr)
                opt.zero_grad(set_to_none=True)
                with amp.autocast():
                    value = loss(model(x), y)
                amp.backward(value)
                amp.unscale(opt)
                current = float(value.detach())
                seen_lrs.append(float(lr))
                losses.append(current)
                if not math.isfinite(current):
                    smoothed.append(math.nan)
                    reason = f"The loss became {current} at lr {lr:.3g}."
                    break
                avg = smooth * avg + (1 - smooth) * current
                smoothed.append(avg / (1 - smooth ** (i + 1)))
                best = min(best, smoothed[-1])
                if smoothed[-1] > diverge_factor * best:
                    reason = (
                        f"Diverged at lr {lr:.3g}: smoothed loss {smoothed[-1]:.3g} > "
                        f"{diverge_factor:g} x best {best:.3g}."
                    )
                    break
                amp.step(opt)
    finally:
        model.load_state_dict(model_state)
        model.train(was_training)
        if opt_state is not None:
            opt.load_state_dict(opt_state)
        for p, g in grads:
            p.grad = g

    # The suggestions come from finite points before the divergent one.
    n_ok = sum(1 for s in smoothed if math.isfinite(s))
    keep = n_ok - 1 if n_ok == len(smoothed) and reason.startswith("Diverged") else n_ok
    if keep < MIN_CURVE:
        note = (
            f"The curve is too short to suggest a learning rate: {max(keep, 0)} usable step(s) "
            f"before the sweep ended ({reason}) Start lower (start_lr) or sweep more steps."
        )
        return LRFindResult(seen_lrs, losses, smoothed, {}, reason, note)
    found = suggest(np.array(seen_lrs[:keep]), np.array(smoothed[:keep]))
    return LRFindResult(seen_lrs, losses, smoothed, found, reason)
