"""Figures of the diagnostics: the learning-rate range test, loss-landscape slices, gradients by layer.

Plain arrays in, :class:`matplotlib.figure.Figure` out (no pyplot, no global state);
render with :func:`descend.report.png_bytes`. This module knows nothing of models
or optimizers beyond the numbers it is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import ListedColormap, LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from descend.report.plots import colors_for

DPI = 110
# viridis without its palest end, so white contour lines stay visible near the rim.
_CMAP = ListedColormap(colormaps["viridis"](np.linspace(0.0, 0.85, 256)))
_MARKS = {"valley": "tab:green", "steepest": "tab:orange", "min_over_10": "tab:purple"}
# Distinct shapes, largest first, so suggestions that nearly coincide stay visible.
_SHAPES = {"valley": ("o", 11), "steepest": ("s", 8), "min_over_10": ("D", 6)}


def lr_find_figure(
    lrs: Sequence[float],
    losses: Sequence[float],
    smoothed: Sequence[float],
    suggestions: Mapping[str, float],
    *,
    title: str,
) -> Figure:
    """Loss against learning rate (log axis), raw and smoothed, with each suggestion marked.

    The y-axis stops a little above the starting loss, so the divergence at the end
    of the sweep does not flatten the part that matters.
    """
    lr = np.asarray(lrs, dtype=float)
    raw = np.asarray(losses, dtype=float)
    smooth = np.asarray(smoothed, dtype=float)
    fig = Figure(figsize=(7.5, 4.4), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.plot(lr, raw, color="0.7", lw=1.0, label="batch loss")
    ax.plot(lr, smooth, color="tab:blue", lw=2.0, label="smoothed loss")
    ax.set_xscale("log")
    finite = smooth[np.isfinite(smooth)]
    if finite.size:
        low, start = float(finite.min()), float(finite[0])
        pad = 0.08 * max(start - low, 1e-12)
        ax.set_ylim(low - pad, max(start, low) + 3 * pad)
    for name, value in suggestions.items():
        if not np.isfinite(value) or value <= 0:
            continue
        color = _MARKS.get(name, "black")
        ax.axvline(value, color=color, ls="--", lw=1.2, label=f"{name}: {value:.2g}")
        if lr.size:
            i = int(np.argmin(np.abs(np.log(lr) - np.log(value))))
            if np.isfinite(smooth[i]):
                shape, size = _SHAPES.get(name, ("o", 7))
                ax.plot([lr[i]], [smooth[i]], shape, color=color, ms=size, mec="white", zorder=5)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower left", fontsize=9)
    return fig


def landscape_2d_figure(
    alphas: np.ndarray,
    betas: np.ndarray,
    losses: np.ndarray,
    *,
    trajectory: np.ndarray | None = None,
    title: str,
    xlabel: str = "direction 1 (alpha)",
    ylabel: str = "direction 2 (beta)",
) -> Figure:
    """Filled contours of ``losses[j, i]`` over ``(alphas[i], betas[j])``, with a trajectory.

    Levels are spaced logarithmically (loss surfaces span orders of magnitude between
    the basin and the rim). The trajectory ``(T, 2)`` runs from a hollow circle (start)
    to a star (end, the centre of the slice when the slice is taken there).
    """
    Z = np.asarray(losses, dtype=float)
    fig = Figure(figsize=(7.2, 6.0), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    finite = Z[np.isfinite(Z)]
    lo = max(float(finite.min()), 1e-12) if finite.size else 1e-12
    hi = max(float(finite.max()), lo * 1.001) if finite.size else 1.0
    Zc = np.clip(np.where(np.isfinite(Z), Z, hi), lo, hi)
    levels = np.geomspace(lo, hi, 25)
    A, B = np.meshgrid(alphas, betas)
    filled = ax.contourf(A, B, Zc, levels=levels, cmap=_CMAP, norm=LogNorm(lo, hi))
    ax.contour(A, B, Zc, levels=levels[::3], colors="white", linewidths=0.5, alpha=0.6)
    fig.colorbar(filled, ax=ax, label="loss (log scale)", format="%.3g")
    if trajectory is not None and len(trajectory):
        t = np.asarray(trajectory, dtype=float)
        ax.plot(t[:, 0], t[:, 1], "-", color="tab:red", lw=1.8, label="training trajectory")
        ax.plot(t[:, 0], t[:, 1], ".", color="tab:red", ms=4)
        ax.plot(t[0, 0], t[0, 1], "o", mfc="white", mec="tab:red", ms=9, mew=2, label="start")
        ax.plot(t[-1, 0], t[-1, 1], "*", color="black", ms=14, label="end")
        ax.legend(loc="upper right", fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_aspect("equal", adjustable="box")
    return fig


def landscape_1d_figure(
    alphas: np.ndarray,
    losses: np.ndarray,
    *,
    title: str,
    start_label: str = "initial",
    end_label: str = "final",
) -> Figure:
    """The loss along a line between two parameter sets (alpha = 0 and alpha = 1 marked)."""
    a = np.asarray(alphas, dtype=float)
    z = np.asarray(losses, dtype=float)
    fig = Figure(figsize=(7.0, 4.0), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.plot(a, z, "-o", color="tab:blue", ms=3.5, lw=1.8)
    for where, label, color in ((0.0, start_label, "tab:red"), (1.0, end_label, "black")):
        ax.axvline(where, color=color, ls=":", lw=1.2)
        i = int(np.argmin(np.abs(a - where)))
        ax.annotate(label, (a[i], z[i]), textcoords="offset points", xytext=(6, 8), color=color)
    finite = z[np.isfinite(z)]
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > 30:
        ax.set_yscale("log")
    ax.set_xlabel(f"alpha: (1 - alpha) * {start_label} + alpha * {end_label}")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    return fig


def layer_gradients_figure(
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
) -> Figure:
    """Gradient norm of each weight layer, first layer on the left, log scale; one line per model.

    A line falling from right to left by orders of magnitude is a vanishing gradient.
    """
    fig = Figure(figsize=(7.5, 4.2), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    colors = colors_for(list(series))
    for name, values in series.items():
        v = np.asarray(values, dtype=float)
        ax.plot(np.arange(1, v.size + 1), v, "-o", color=colors[name], label=name, lw=1.8)
    positive = [x for values in series.values() for x in values if x > 0 and np.isfinite(x)]
    if positive:  # all-zero gradients (a diverged, saturated net) cannot be drawn on a log axis
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # layers are counted, not measured
    ax.set_xlabel("weight layer (1 = first, next to the input)")
    ax.set_ylabel("gradient norm (log scale)")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=9)
    return fig
