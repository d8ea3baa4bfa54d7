"""From what a run recorded to verdicts: each rule compares a few numbers with a declared threshold.

The rules read the per-step loss and gradient norm of a :class:`~descend.train.History`
and, when :class:`~descend.diagnose.GradientHealth` was used, its per-parameter records.
Every threshold is a field of :class:`Thresholds`, so a verdict can always be traced
to the comparison that produced it; the numbers compared go in the verdict's evidence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from descend.diagnose.record import HealthRecord
from descend.diagnose.verdict import KINDS, Verdict

HistoryLike = Any
"""A :class:`~descend.train.History`, its ``to_dict()`` form, or ``None`` (records only)."""


@dataclass(frozen=True)
class Thresholds:
    """The thresholds of :func:`diagnose_history`, with the reason for each default.

    Attributes:
        vanishing_ratio: first-layer over last-layer gradient norm below this is
            *vanishing* (two orders of magnitude).
        exploding_ratio: the same ratio above this is *exploding*.
        growth: the gradient norm (rolling median) growing by more than this factor
            from the start of the run is *exploding*.
        window: width of the rolling median that tames mini-batch noise in the loss.
        rise_factor: the loss (rolling median) above this multiple of its best value
            so far, and still rising, is *lr_too_large* (divergence starts as a rise).
        alternation: fraction of successive loss differences that change sign,
            above which the loss oscillates (independent noise gives about 2/3).
        swing: mean absolute loss difference over the mean loss, above which an
            oscillation is large enough to matter.
        small_update: median update-to-parameter ratio below this is tiny (the rule
            of thumb is about 1e-3; this is an order of magnitude under it).
        slow_progress: relative loss decrease over the run below this is "slow".
        flat: relative loss change over the second half of the run below this is flat.
        small_grad: a gradient norm below this (absolute) is small ...
        grad_drop: ... and so is one below this fraction of the largest seen.
        learned: a flat loss still above this fraction of its initial value has learned
            little (a plateau); below it the run has converged.
        dead: a ReLU layer with more than this fraction of dead units is *dead_relu*.
        min_steps: steps needed before the rules on loss trends speak.
    """

    vanishing_ratio: float = 1e-2
    exploding_ratio: float = 1e2
    growth: float = 1e3
    window: int = 5
    rise_factor: float = 4.0
    alternation: float = 0.9
    swing: float = 0.2
    small_update: float = 1e-4
    slow_progress: float = 0.5
    flat: float = 1e-2
    small_grad: float = 1e-3
    grad_drop: float = 1e-2
    learned: float = 0.5
    dead: float = 0.5
    min_steps: int = 10


def _g(x: float) -> float:
    """A float rounded to 4 significant digits, for evidence a person reads."""
    return float(f"{x:.4g}") if math.isfinite(x) else x


def _rows(history: HistoryLike) -> list[Mapping[str, Any]]:
    if history is None:
        return []
    if isinstance(history, Mapping):
        return list(history.get("steps", []))
    return list(getattr(history, "steps", []))


def _column(rows: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    return np.array([float(r.get(key, math.nan)) for r in rows], dtype=float)


def _rolling_median(x: np.ndarray, w: int) -> np.ndarray:
    if len(x) < w or w <= 1:
        return x.copy()
    windows = np.lib.stride_tricks.sliding_window_view(x, w)
    return np.median(windows, axis=1)


def _first_bad_step(rows: Sequence[Mapping[str, Any]]) -> int | None:
    for r in rows:
        if not (
            math.isfinite(float(r.get("loss", 0.0)))
            and math.isfinite(float(r.get("grad_norm", 0.0)))
        ):
            return int(r.get("step", 0))
    return None


def _finite_prefix(x: np.ndarray) -> np.ndarray:
    bad = np.flatnonzero(~np.isfinite(x))
    return x if bad.size == 0 else x[: bad[0]]


def layer_ratio(record: HealthRecord) -> tuple[str, str, float] | None:
    """``(first, last, ratio)``: first weight layer's gradient norm over the last one's.

    ``None`` when the record has fewer than three weight layers (too shallow to
    speak of vanishing) or a norm is not finite.
    """
    names = [n for n in record.weights if n in record.grad_norms]
    if len(names) < 3:
        return None
    first, last = record.grad_norms[names[0]], record.grad_norms[names[-1]]
    if not (math.isfinite(first) and math.isfinite(last)) or last <= 0.0:
        return None
    return names[0], names[-1], first / last


def _median_layer_ratio(
    records: Sequence[HealthRecord],
) -> tuple[str, str, float, HealthRecord] | None:
    found = [(r, layer_ratio(r)) for r in records]
    found = [(r, lr) for r, lr in found if lr is not None]
    if not found:
        return None
    # Median in log space: ratios span orders of magnitude.
    logs = [math.log10(max(lr[2], 1e-300)) for _, lr in found]
    k = int(np.argsort(logs)[len(logs) // 2])
    record, (first, last, _) = found[k]
    return first, last, 10 ** float(np.median(logs)), record


def _exploding(
    rows: Sequence[Mapping[str, Any]], records: Sequence[HealthRecord], th: Thresholds
) -> Verdict | None:
    bad_step = _first_bad_step(rows)
    culprit = next((r for r in records if r.nonfinite), None)
    if bad_step is not None or culprit is not None:
        step = bad_step if bad_step is not None else culprit.step  # type: ignore[union-attr]
        where = culprit.nonfinite if culprit is not None else "loss"
        losses = _finite_prefix(_column(rows, "loss"))
        evidence = {
            "step": int(step),
            "first_nonfinite_in": where,
            "last_finite_loss": _g(float(losses[-1])) if losses.size else None,
        }
        return Verdict(
            "exploding",
            f"Values became NaN or infinite at step {step}; they first appeared in {where!r}. "
            "Lower the learning rate, clip the gradient norm, or check the initialisation.",
            evidence,
        )
    grads = _finite_prefix(_column(rows, "grad_norm"))
    w = th.window
    if grads.size >= 3 * w:
        smooth = _rolling_median(grads, w)
        start, peak = float(smooth[0]), float(smooth.max())
        if start > 0.0 and peak / start > th.growth:
            return Verdict(
                "exploding",
                f"The gradient norm grew {peak / start:.3g}-fold during the run "
                f"(from {start:.3g} to {peak:.3g}).",
                {
                    "grad_norm_start": _g(start),
                    "grad_norm_peak": _g(peak),
                    "growth": _g(peak / start),
                },
            )
    found = _median_layer_ratio(records)
    if found is not None and found[2] > th.exploding_ratio:
        first, last, ratio, _ = found
        return Verdict(
            "exploding",
            f"The gradient at {first!r} is {ratio:.3g} times the one at {last!r}: it grows on its "
            "way back through the layers. Normalisation or a smaller initialisation scale helps.",
            {"first_layer": first, "last_layer": last, "ratio_first_to_last": _g(ratio)},
        )
    return None


def _lr_too_large(rows: Sequence[Mapping[str, Any]], th: Thresholds) -> Verdict | None:
    losses = _finite_prefix(_column(rows, "loss"))
    n = losses.size
    if n < 3:
        return None
    lr = float(rows[min(n, len(rows)) - 1].get("lr", math.nan))
    # Short runs use a narrower median so a divergence is seen within a few steps.
    w = max(1, min(th.window, n // 3))
    smooth = _rolling_median(losses, w)
    best_at = int(np.argmin(smooth))
    best, now = float(smooth[best_at]), float(smooth[-1])
    if (
        best_at < smooth.size - 1
        and now > th.rise_factor * max(best, 1e-300)
        and smooth[-1] > smooth[-2]
    ):
        return Verdict(
            "lr_too_large",
            f"The loss is rising: {now:.3g} now against {best:.3g} at its best "
            f"({now / max(best, 1e-300):.3g}x), at lr {lr:g}. The steps overshoot the minimum; "
            "lower the learning rate (an lr-find sweep suggests one).",
            {
                "loss_best": _g(best),
                "loss_now": _g(now),
                "rise": _g(now / max(best, 1e-300)),
                "lr": _g(lr),
                "steps": int(n),
            },
        )
    # The first loss is measured before any update: a run that blew up within its first
    # few steps and stayed up has no low point of its own smoothed curve to rise from.
    initial = float(losses[0])
    if initial > 0.0 and now > th.rise_factor * initial:
        return Verdict(
            "lr_too_large",
            f"The loss rose from {initial:.3g} at the start to {now:.3g} "
            f"({now / initial:.3g}x) at lr {lr:g}: the run diverged. The steps overshoot "
            "the minimum; lower the learning rate (an lr-find sweep suggests one).",
            {
                "loss_start": _g(initial),
                "loss_now": _g(now),
                "rise": _g(now / initial),
                "lr": _g(lr),
                "steps": int(n),
            },
        )
    if n >= th.min_steps:
        recent = losses[-min(20, n) :]
        d = np.diff(recent)
        signs = np.sign(d[d != 0])
        if signs.size >= 4:
            alternation = float(np.mean(signs[1:] != signs[:-1]))
            swing = float(np.mean(np.abs(d)) / max(float(np.mean(np.abs(recent))), 1e-300))
            half = recent.size // 2
            stalled = float(np.mean(recent[half:])) >= 0.95 * float(np.mean(recent[:half]))
            if alternation >= th.alternation and swing >= th.swing and stalled:
                return Verdict(
                    "lr_too_large",
                    f"The loss oscillates without decreasing: it changes direction at "
                    f"{alternation:.0%} of the last {recent.size} steps, by {swing:.0%} of its size, "
                    f"at lr {lr:g}. The steps bounce across the valley; lower the learning rate.",
                    {
                        "alternation": _g(alternation),
                        "swing": _g(swing),
                        "lr": _g(lr),
                        "window": int(recent.size),
                    },
                )
    return None


def _progress(losses: np.ndarray, th: Thresholds) -> tuple[float, float]:
    """(first, last) loss levels: medians of the first and last windows."""
    w = max(1, min(th.window, losses.size // 3))
    return float(np.median(losses[:w])), float(np.median(losses[-w:]))


def _plateau(rows: Sequence[Mapping[str, Any]], th: Thresholds) -> Verdict | None:
    losses = _column(rows, "loss")
    grads = _column(rows, "grad_norm")
    if losses.size < th.min_steps or not np.all(np.isfinite(losses)):
        return None
    first, last = _progress(losses, th)
    half_first, _ = _progress(losses[losses.size // 2 :], th)
    change = abs(half_first - last) / max(abs(half_first), 1e-300)
    w = max(1, min(th.window, grads.size // 3))
    g_now, g_max = float(np.median(grads[-w:])), float(np.max(grads))
    small = g_now <= th.small_grad or g_now <= th.grad_drop * g_max
    little = last >= th.learned * first
    if change < th.flat and small and little:
        return Verdict(
            "plateau",
            f"The loss is flat ({change:.2%} change over the second half, still {last:.3g} "
            f"against {first:.3g} at the start) and the gradient is small ({g_now:.3g}). "
            "The descent is on a plateau or near a saddle: momentum, an adaptive optimizer or a "
            "larger learning rate help it leave; the curvature diagnostic tells a saddle "
            "(negative eigenvalue) from a minimum.",
            {
                "loss_start": _g(first),
                "loss_now": _g(last),
                "relative_change": _g(change),
                "grad_norm_now": _g(g_now),
                "grad_norm_max": _g(g_max),
            },
        )
    return None


def _median_update_ratio(records: Sequence[HealthRecord]) -> float | None:
    values = [
        v
        for r in records
        for n, v in r.update_ratios.items()
        if (not r.weights or n in r.weights) and math.isfinite(v)
    ]
    return float(np.median(values)) if values else None


def _change_words(decrease: float) -> str:
    """``"fell only 12.0%"``, or ``"rose 1.0%"`` when the relative decrease is negative."""
    return f"fell only {decrease:.1%}" if decrease >= 0 else f"rose {-decrease:.1%}"


def _lr_too_small(
    rows: Sequence[Mapping[str, Any]], records: Sequence[HealthRecord], th: Thresholds
) -> Verdict | None:
    ratio = _median_update_ratio(records)
    losses = _column(rows, "loss")
    if ratio is None or losses.size < 2 or not np.all(np.isfinite(losses)):
        return None
    first, last = _progress(losses, th)
    progress = (first - last) / max(abs(first), 1e-300)
    if ratio < th.small_update and progress < th.slow_progress:
        lr = float(rows[-1].get("lr", math.nan))
        return Verdict(
            "lr_too_small",
            f"Each step changes the weights by {ratio:.2g} of their size (about 1e-3 is typical) "
            f"and the loss {_change_words(progress)} in {losses.size} steps, at lr {lr:g}. "
            "Raise the learning rate (an lr-find sweep suggests one).",
            {
                "median_update_ratio": _g(ratio),
                "loss_start": _g(first),
                "loss_now": _g(last),
                "relative_decrease": _g(progress),
                "lr": _g(lr),
            },
        )
    return None


def _vanishing(records: Sequence[HealthRecord], th: Thresholds) -> Verdict | None:
    found = _median_layer_ratio(records)
    if found is None or found[2] >= th.vanishing_ratio:
        return None
    first, last, ratio, record = found
    per_layer = {n: _g(record.grad_norms[n]) for n in record.weights if n in record.grad_norms}
    return Verdict(
        "vanishing",
        f"The gradient reaching the first layer {first!r} is {ratio:.2g} of the one at the last "
        f"layer {last!r}: early layers barely learn. Residual connections, normalisation, "
        "ReLU-family activations or a careful initialisation carry the gradient back.",
        {
            "first_layer": first,
            "last_layer": last,
            "ratio_first_to_last": _g(ratio),
            "grad_norms": per_layer,
            "records": len(records),
        },
    )


def _dead_relu(records: Sequence[HealthRecord], th: Thresholds) -> Verdict | None:
    latest = next((r for r in reversed(records) if r.dead_fraction), None)
    if latest is None:
        return None
    name, worst = max(latest.dead_fraction.items(), key=lambda kv: kv[1])
    if worst <= th.dead:
        return None
    return Verdict(
        "dead_relu",
        f"{worst:.0%} of the units after ReLU {name!r} output zero for every sample at step "
        f"{latest.step}; they get no gradient and stop learning. A smaller learning rate, "
        "He initialisation or a leaky ReLU keep them alive.",
        {
            "module": name,
            "dead_fraction": _g(worst),
            "step": latest.step,
            "all_layers": {k: _g(v) for k, v in latest.dead_fraction.items()},
        },
    )


def _healthy(
    rows: Sequence[Mapping[str, Any]], records: Sequence[HealthRecord], th: Thresholds
) -> Verdict:
    evidence: dict[str, Any] = {}
    losses = _column(rows, "loss")
    if losses.size:
        first, last = _progress(losses, th)
        evidence.update(loss_start=_g(first), loss_now=_g(last), steps=int(losses.size))
    ratio = _median_update_ratio(records)
    if ratio is not None:
        evidence["median_update_ratio"] = _g(ratio)
    found = _median_layer_ratio(records)
    if found is not None:
        evidence["ratio_first_to_last"] = _g(found[2])
    return Verdict(
        "healthy", "No sign of trouble: the checks on loss, gradients and updates pass.", evidence
    )


def diagnose_history(
    history: HistoryLike,
    health_records: Sequence[HealthRecord | Mapping[str, Any]] = (),
    *,
    thresholds: Thresholds | None = None,
) -> list[Verdict]:
    """Verdicts on a run, most urgent first; ``[healthy]`` when no rule fires.

    The rules (thresholds in :class:`Thresholds`, :math:`\\tilde L` a rolling median
    of the per-step loss, :math:`g_\\ell` the gradient norm of weight layer
    :math:`\\ell = 1..D`, :math:`r` the median update-to-parameter ratio):

    - exploding: a NaN/inf (naming where it first appeared), or
      :math:`\\max_t \\tilde g_t / \\tilde g_0 >` ``growth``, or :math:`g_1/g_D >` ``exploding_ratio``;
    - lr_too_large: :math:`\\tilde L_T >` ``rise_factor`` :math:`\\cdot L_1` (the loss ends far
      above where it started: diverged), or :math:`\\tilde L_t >` ``rise_factor``
      :math:`\\cdot \\min_{s<t} \\tilde L_s` and rising, or the loss alternating direction with
      large swings and no progress;
    - vanishing: :math:`g_1 / g_D <` ``vanishing_ratio`` (median over records);
    - dead_relu: a ReLU layer with more than ``dead`` of its units never active on a batch;
    - plateau: loss flat over the second half, gradient small, loss still above
      ``learned`` times its initial value;
    - lr_too_small: :math:`r <` ``small_update`` while the loss fell less than ``slow_progress``
      (never alongside exploding or lr_too_large).

    Args:
        history: the run's :class:`~descend.train.History` (or its dict), or ``None``
            to judge health records alone (e.g. one :func:`gradient_report`).
        health_records: :class:`HealthRecord` objects (or their dicts) from
            :class:`GradientHealth` or :func:`gradient_report`.
        thresholds: override the defaults.

    Returns:
        The verdicts, ordered as :data:`~descend.diagnose.KINDS`.
    """
    th = thresholds or Thresholds()
    records = [
        r if isinstance(r, HealthRecord) else HealthRecord.from_dict(r) for r in health_records
    ]
    rows = _rows(history)
    found = [
        _exploding(rows, records, th),
        _lr_too_large(rows, th),
        _vanishing(records, th),
        _dead_relu(records, th),
    ]
    plateau = _plateau(rows, th)
    found.append(plateau)
    # A run whose loss blew up is never told to raise its learning rate (its updates look
    # tiny only because its weights grew huge).
    too_fast = any(v is not None and v.kind in ("exploding", "lr_too_large") for v in found)
    if plateau is None and not too_fast:
        # A plateau also makes updates tiny; the small gradient, not the lr, is the cause then.
        found.append(_lr_too_small(rows, records, th))
    verdicts = sorted((v for v in found if v is not None), key=lambda v: KINDS.index(v.kind))
    return verdicts or [_healthy(rows, records, th)]
