"""The figures of a run or a comparison, drawn from plain run dicts.

Each optimizer gets one color in every figure. With several seeds, a line is the
mean over seeds and the shaded band spans the lowest to the highest seed (min–max):
the width of the band is the optimizer's sensitivity to initialization, which a
single curve hides.

Figures are :class:`matplotlib.figure.Figure` objects built directly (no pyplot),
so drawing touches no global state and needs no display; :func:`png_bytes`
renders one with the Agg canvas.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from descend.report.summary import group_by_optimizer, lower_is_better

DPI = 110
_WIDE = (11.0, 4.2)  # inches: two panels side by side, legend to the right
_NARROW = (7.5, 4.0)
# Mini-batch losses are noisy; a running mean over ~1/30 of the run keeps the trend
# readable with several optimizers on one axis while a divergence still shows.
_SMOOTH_FRACTION = 1 / 30

Runs = Sequence[Mapping[str, Any]]


_TAB10 = ("blue", "orange", "green", "red", "purple", "brown", "pink", "gray", "olive", "cyan")
# Darker extra colors for an 11th optimizer and beyond, distinct from tab10's.
_EXTRA = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354")


def colors_for(names: Sequence[str]) -> dict[str, str]:
    """One stable color per optimizer, in the order given (tab10, then darker extras)."""
    colors = [f"tab:{c}" for c in _TAB10] + list(_EXTRA)
    return {name: colors[i % len(colors)] for i, name in enumerate(names)}


_LINE_STYLES = ("-", "--", "-.", ":")


def styles_for(names: Sequence[str]) -> dict[str, str]:
    """A line style per optimizer as well as a colour, so that equal curves (two optimizers
    at the same learning rate, say) do not hide one another."""
    return {name: _LINE_STYLES[i % len(_LINE_STYLES)] for i, name in enumerate(names)}


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG bytes (Agg canvas, the figure's dpi)."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=figure.dpi)
    return buffer.getvalue()


def _fmt(value: Any) -> str:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return f"{value:g}" if number else str(value)


def _seeds_text(runs: Runs) -> str:
    seeds = list(dict.fromkeys(run.get("seed") for run in runs))
    label = "seed" if len(seeds) == 1 else "seeds"
    return f"{label} {', '.join(_fmt(s) for s in seeds)}"


def _title(task_name: str, runs: Runs, what: str, *, band: bool = True) -> str:
    """'<what> — <task>: <optimizer (lr)...>' and a second line saying what the lines are."""
    groups = group_by_optimizer(runs)
    who = ", ".join(f"{name} (lr {_fmt(group[0].get('lr'))})" for name, group in groups.items())
    if len(who) > 70:
        # Many optimizers: the legend carries each lr; the title stays one line.
        who = f"{len(groups)} optimizers"
    several = any(len(group) > 1 for group in groups.values())
    how = (
        f"mean over {_seeds_text(runs)}" + (", band min–max" if band else "")
        if several
        else _seeds_text(runs)
    )
    return f"{what} — {task_name}: {who}\n{how}"


def _label(name: str, group: Runs) -> str:
    return f"{name}  lr={_fmt(group[0].get('lr'))}"


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centered running mean; the window shrinks at the ends instead of padding.

    A run with non-finite losses (a divergence) is left raw: a running sum would
    smear one inf over every later point.
    """
    if window <= 1 or values.size < 3 or not np.all(np.isfinite(values)):
        return values
    half = window // 2
    padded = np.concatenate([[0.0], np.cumsum(values)])
    idx = np.arange(values.size)
    lo = np.clip(idx - half, 0, values.size)
    hi = np.clip(idx + half + 1, 0, values.size)
    return (padded[hi] - padded[lo]) / (hi - lo)


def _series(
    runs: Runs, part: str, key: str, window: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps, mean time, mean, min, max) of ``key`` over seeds, aligned on the step number."""
    values: dict[float, list[float]] = {}
    times: dict[float, list[float]] = {}
    for run in runs:
        records = [r for r in (run.get("history") or {}).get(part) or [] if r.get(key) is not None]
        if not records:
            continue
        ys = _smooth(np.array([float(r[key]) for r in records]), window)
        for record, y in zip(records, ys, strict=True):
            step = float(record.get("step", 0))
            values.setdefault(step, []).append(float(y))
            if record.get("time") is not None:
                times.setdefault(step, []).append(float(record["time"]))
    steps = np.array(sorted(values))
    stacked = [np.array(values[s]) for s in steps]
    mean = np.array([v.mean() for v in stacked])
    low = np.array([v.min() for v in stacked])
    high = np.array([v.max() for v in stacked])
    time = np.array([np.mean(times[s]) if s in times else np.nan for s in steps])
    return steps, time, mean, low, high


def _draw(
    ax: Axes,
    x: np.ndarray,
    mean: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    *,
    color: str,
    label: str,
    alpha: float,
    marker: str | None = None,
    ls: str = "-",
) -> None:
    ax.plot(x, mean, color=color, lw=1.8, label=label, marker=marker, ms=4, ls=ls)
    if np.any(high > low):
        ax.fill_between(x, low, high, color=color, alpha=alpha, lw=0)


def _band_alpha(optimizers: int) -> float:
    # Overlapping bands of many optimizers turn muddy; fainter bands keep the lines legible.
    return 0.18 if optimizers <= 3 else 0.1


def _style(ax: Axes, *, xlabel: str, ylabel: str, log: bool) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.1)
    ax.spines[["top", "right"]].set_visible(False)


def _all_positive(arrays: Sequence[np.ndarray]) -> bool:
    finite = [a[np.isfinite(a)] for a in arrays]
    return any(a.size for a in finite) and all(np.all(a > 0) for a in finite if a.size)


def _two_panel(title: str) -> tuple[Figure, Axes, Axes]:
    figure = Figure(figsize=_WIDE, dpi=DPI, layout="constrained")
    left, right = figure.subplots(1, 2, sharey=True)
    figure.suptitle(title, fontsize=11)
    return figure, left, right


def _finish(figure: Figure, ax: Axes) -> None:
    handles, labels = ax.get_legend_handles_labels()
    # Outside the axes, so no curve is ever hidden behind the legend.
    figure.legend(handles, labels, loc="outside right upper", frameon=False, fontsize=9)


def loss_figure(runs: Runs, *, task_name: str) -> Figure | None:
    """Training loss against steps (left) and wall time (right); log scale; None without step losses."""
    groups = group_by_optimizer(runs)
    colors = colors_for(list(groups))
    styles = styles_for(list(groups))
    alpha = _band_alpha(len(groups))
    longest = max(len((run.get("history") or {}).get("steps") or []) for run in runs)
    window = max(1, int(longest * _SMOOTH_FRACTION))
    what = "Training loss" + (f" (running mean over {window} steps)" if window > 1 else "")
    figure, by_step, by_time = _two_panel(_title(task_name, runs, what))
    drawn: list[np.ndarray] = []
    for name, group in groups.items():
        steps, time, mean, low, high = _series(group, "steps", "loss", window)
        if not steps.size:
            continue
        drawn += [low, high]
        for ax, x in ((by_step, steps), (by_time, time)):
            _draw(
                ax,
                x,
                mean,
                low,
                high,
                color=colors[name],
                label=_label(name, group),
                alpha=alpha,
                ls=styles[name],
            )
    if not drawn:
        return None
    log = _all_positive(drawn)
    _style(by_step, xlabel="step", ylabel="training loss", log=log)
    _style(by_time, xlabel="wall time (s)", ylabel="", log=log)
    _finish(figure, by_step)
    return figure


def validation_figure(
    runs: Runs, *, task_name: str, metric: str, target: float | None = None
) -> Figure | None:
    """``metric`` at the end of each epoch against steps and wall time, target dashed; None if absent."""
    groups = group_by_optimizer(runs)
    colors = colors_for(list(groups))
    styles = styles_for(list(groups))
    alpha = _band_alpha(len(groups))
    figure, by_step, by_time = _two_panel(_title(task_name, runs, f"{metric} per epoch"))
    drawn: list[np.ndarray] = []
    for name, group in groups.items():
        steps, time, mean, low, high = _series(group, "epochs", metric)
        if not steps.size:
            continue
        drawn += [low, high]
        for ax, x in ((by_step, steps), (by_time, time)):
            label = _label(name, group)
            _draw(
                ax,
                x,
                mean,
                low,
                high,
                color=colors[name],
                label=label,
                alpha=alpha,
                marker="o",
                ls=styles[name],
            )
    if not drawn:
        return None
    if target is not None:
        for ax in (by_step, by_time):
            ax.axhline(target, color="black", ls="--", lw=1.1, label=f"target {target:g}")
    log = lower_is_better(metric) and _all_positive(drawn)
    _style(by_step, xlabel="step", ylabel=metric, log=log)
    _style(by_time, xlabel="wall time (s)", ylabel="", log=log)
    _finish(figure, by_step)
    return figure


def lr_figure(runs: Runs, *, task_name: str) -> Figure | None:
    """Learning rate against steps, one line per optimizer; None when no step logs an lr."""
    groups = group_by_optimizer(runs)
    colors = colors_for(list(groups))
    styles = styles_for(list(groups))
    figure = Figure(figsize=_NARROW, dpi=DPI, layout="constrained")
    ax = figure.subplots()
    figure.suptitle(_title(task_name, runs, "Learning rate", band=False), fontsize=11)
    drawn: list[np.ndarray] = []
    for i, (name, group) in enumerate(groups.items()):
        steps, _, mean, _, _ = _series(group, "steps", "lr")
        if not steps.size:
            continue
        drawn.append(mean)
        # Equal rates are common (momentum and nesterov share one): earlier lines wider,
        # later ones dashed on top, so every one shows.
        width = max(1.2, 4.0 - 0.6 * i)
        ax.plot(
            steps, mean, color=colors[name], lw=width, ls=styles[name], label=_label(name, group)
        )
    if not drawn:
        return None
    # Log scale only to fit rates of different optimizers that differ by orders of
    # magnitude; one schedule on a log axis would exaggerate its final decay.
    peaks = [float(np.nanmax(d)) for d in drawn]
    spread = max(peaks) / min(peaks) if min(peaks) > 0 else 1.0
    _style(ax, xlabel="step", ylabel="learning rate", log=spread > 10 and _all_positive(drawn))
    _finish(figure, ax)
    return figure
