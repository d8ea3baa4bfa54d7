"""The figures of a tuning study, drawn from plain trial dicts (``descend.tune``'s records).

- optimization history: each trial's value, and the best so far;
- parallel coordinates: one line per trial across the hyperparameters (log axes in
  log scale), colored by its value;
- importances: Optuna's fANOVA importances as bars;
- sensitivity: the final validation metric against the learning rate, one color per
  optimizer. A wide plateau near the best value is an optimizer that forgives a
  learning rate chosen badly; a sharp peak is one that must be tuned.

Trials are dicts with ``number``, ``state``, ``value``, ``last_value``, ``params``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from descend.report.plots import DPI, colors_for

Trials = Sequence[Mapping[str, Any]]
_SIZE = (7.5, 4.0)


def _finished(trials: Trials) -> list[Mapping[str, Any]]:
    return [t for t in trials if not t.get("lost") and t.get("state") in ("COMPLETE", "PRUNED")]


def history_figure(trials: Trials, *, metric: str, maximize: bool) -> Figure | None:
    """Each completed trial's value by trial number, pruned ones at their last report."""
    done = [t for t in trials if t.get("state") == "COMPLETE" and t.get("value") is not None]
    if not done:
        return None
    fig = Figure(figsize=_SIZE, dpi=DPI)
    ax = fig.add_subplot()
    x = [t["number"] for t in done]
    y = [t["value"] for t in done]
    ax.scatter(x, y, s=22, color="tab:blue", label="completed", zorder=3)
    pruned = [t for t in trials if t.get("state") == "PRUNED" and t.get("last_value") is not None]
    if pruned:
        ax.scatter(
            [t["number"] for t in pruned],
            [t["last_value"] for t in pruned],
            s=22,
            facecolors="none",
            edgecolors="tab:gray",
            label="pruned (last report)",
            zorder=2,
        )
    best = np.maximum.accumulate(y) if maximize else np.minimum.accumulate(y)
    ax.step(x, best, where="post", color="tab:red", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _axis_values(values: Sequence[float], log: bool) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if log:
        v = np.log10(v)
    lo, hi = float(np.min(v)), float(np.max(v))
    return (v - lo) / (hi - lo) if hi > lo else np.full_like(v, 0.5)


def parallel_figure(
    trials: Trials, space: Sequence[Mapping[str, Any]], *, metric: str
) -> Figure | None:
    """Parallel coordinates of the completed trials: hyperparameters then the metric."""
    done = [t for t in trials if t.get("state") == "COMPLETE" and t.get("value") is not None]
    names = [p["name"] for p in space]
    done = [t for t in done if all(n in t["params"] for n in names)]
    if len(done) < 2:
        return None
    logs = {p["name"]: bool(p.get("log")) for p in space}
    columns = [_axis_values([t["params"][n] for t in done], logs[n]) for n in names]
    values = [t["value"] for t in done]
    columns.append(_axis_values(values, False))
    labels = [f"{n}\n(log)" if logs[n] else n for n in names] + [metric]
    fig = Figure(figsize=(max(5.0, 1.8 * len(labels)), 4.0), dpi=DPI)
    ax = fig.add_subplot()
    lo, hi = min(values), max(values)
    colormap = matplotlib.colormaps["viridis"]
    for i in range(len(done)):
        shade = (values[i] - lo) / (hi - lo) if hi > lo else 0.5
        ax.plot(range(len(labels)), [c[i] for c in columns], color=colormap(shade), alpha=0.7)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks([0, 1], ["low", "high"])
    for x in range(len(labels)):
        ax.axvline(x, color="black", lw=0.6)
    ax.set_title(f"each line a completed trial; color: {metric} (yellow = higher)", fontsize=9)
    fig.tight_layout()
    return fig


def importance_figure(importances: Mapping[str, float]) -> Figure | None:
    """Horizontal bars, most important on top."""
    if not importances:
        return None
    items = sorted(importances.items(), key=lambda kv: kv[1])
    fig = Figure(figsize=(6.0, 0.5 + 0.45 * len(items)), dpi=DPI)
    ax = fig.add_subplot()
    ax.barh([k for k, _ in items], [v for _, v in items], color="tab:blue")
    ax.set_xlabel("importance (fANOVA, sums to 1)")
    ax.set_xlim(0, 1)
    fig.tight_layout()
    return fig


def sensitivity_figure(
    studies: Mapping[str, Trials], *, metric: str, title: str = ""
) -> Figure | None:
    """Final validation metric against lr, one color per optimizer (log x axis).

    ``studies`` maps an optimizer's name to its trials. Completed trials are filled
    dots joined in lr order; pruned trials are hollow at their last reported value
    (they were stopped, so their final value is unknown but not better).
    """
    fig = Figure(figsize=_SIZE, dpi=DPI)
    ax = fig.add_subplot()
    colors = colors_for(list(studies))
    drawn = False
    for name, trials in studies.items():
        done = sorted(
            (
                t
                for t in trials
                if t.get("state") == "COMPLETE"
                and t.get("value") is not None
                and "lr" in t["params"]
            ),
            key=lambda t: t["params"]["lr"],
        )
        pruned = [
            t
            for t in _finished(trials)
            if t["state"] == "PRUNED"
            and "lr" in t["params"]
            and t.get("last_value") is not None
            and math.isfinite(t["last_value"])
        ]
        if not done and not pruned:
            continue
        drawn = True
        c = colors[name]
        if done:
            ax.plot(
                [t["params"]["lr"] for t in done],
                [t["value"] for t in done],
                "o-",
                color=c,
                ms=4,
                lw=1,
                label=name,
            )
        if pruned:
            ax.scatter(
                [t["params"]["lr"] for t in pruned],
                [t["last_value"] for t in pruned],
                s=18,
                facecolors="none",
                edgecolors=c,
                lw=0.8,
            )
    if not drawn:
        return None
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"final {metric}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, title="filled: completed · hollow: pruned", title_fontsize=7)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
