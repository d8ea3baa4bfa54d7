"""Figures of descents over a 2-D terrain: contour lines with trajectories, and f per iteration.

Plain arrays in, :class:`matplotlib.figure.Figure` out (no pyplot, no global state);
this module knows nothing of terrains or optimizers beyond the numbers it is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, LogNorm, Normalize
from matplotlib.figure import Figure

from descend.report.plots import colors_for

DPI = 110
# viridis without its palest yellow end: the highest contour lines stay visible on white.
_CMAP = ListedColormap(colormaps["viridis"](np.linspace(0.0, 0.82, 256)))


def trajectories_figure(
    X: np.ndarray,
    Y: np.ndarray,
    Z: np.ndarray,
    paths: Mapping[str, np.ndarray],
    *,
    title: str,
    f_min: float | None = None,
    minima: Sequence[Sequence[float]] = (),
    saddles: Sequence[Sequence[float]] = (),
    start: Sequence[float] | None = None,
) -> Figure:
    """Contour lines of ``Z`` over the grid ``(X, Y)`` with one trajectory per label.

    Levels are spaced logarithmically in :math:`f - f_{\\min}` when ``f_min`` is
    known (valleys and plateaus both get lines), linearly otherwise.

    Args:
        X, Y, Z: grid coordinates and values, each ``(ny, nx)``.
        paths: label -> points visited, ``(T, 2)``.
        title: what was run (function, start, lr per optimizer, steps).
        f_min: the global minimum value, ``None`` for functions unbounded below.
        minima: known global minimizers (drawn as stars).
        saddles: known saddle points (drawn as crosses).
        start: the start point (drawn as a black dot).

    Returns:
        The figure.
    """
    fig = Figure(figsize=(8.0, 6.4), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    if f_min is not None:
        gap = np.maximum(Z - f_min, 0.0)
        positive = gap[gap > 0]
        hi = float(gap.max())
        lo = max(float(positive.min()) if positive.size else hi * 1e-9, hi * 1e-9)
        levels = np.logspace(np.log10(lo), np.log10(hi), 30)
        norm: Normalize = LogNorm(lo, hi)
        ax.contour(X, Y, gap, levels=levels, cmap=_CMAP, norm=norm, linewidths=0.7, alpha=0.8)
        label = "f − f_min  (log scale)" if f_min != 0 else "f  (log scale)"
    else:
        lo, hi = float(Z.min()), float(Z.max())
        norm = Normalize(lo, hi)
        ax.contour(X, Y, Z, levels=30, cmap=_CMAP, norm=norm, linewidths=0.7, alpha=0.8)
        label = "f  (unbounded below)"
    fig.colorbar(ScalarMappable(norm=norm, cmap=_CMAP), ax=ax, label=label)
    colors = colors_for(list(paths))
    n = len(paths)
    for i, (label, path) in enumerate(paths.items()):
        p = np.asarray(path, dtype=float)
        # Earlier paths are drawn wider, so a path that follows the same valley as a later
        # one still shows as a coloured rim around it.
        width = 1.2 + 2.4 * (n - 1 - i) / max(n - 1, 1)
        ax.plot(p[:, 0], p[:, 1], "-", color=colors[label], lw=width, label=label, alpha=0.9)
        ax.plot(p[:, 0], p[:, 1], ".", color=colors[label], ms=2.5, alpha=0.6)
        # End points on top of every line: paths that end close together stay visible.
        ax.plot(p[-1, 0], p[-1, 1], "o", color=colors[label], ms=6, mec="black", mew=0.8, zorder=5)
    if minima:
        m = np.asarray(minima, dtype=float)
        ax.plot(
            m[:, 0],
            m[:, 1],
            "*",
            color="gold",
            ms=16,
            mec="black",
            mew=1.0,
            label="global minimum",
            linestyle="none",
            zorder=6,
        )
    if saddles:
        s = np.asarray(saddles, dtype=float)
        ax.plot(
            s[:, 0],
            s[:, 1],
            "X",
            color="white",
            ms=10,
            mec="black",
            mew=1.0,
            label="saddle point",
            linestyle="none",
            zorder=6,
        )
    if start is not None:
        ax.plot(
            start[0], start[1], "o", color="black", ms=8, label="start", linestyle="none", zorder=6
        )
    ax.set_xlim(float(X.min()), float(X.max()))
    ax.set_ylim(float(Y.min()), float(Y.max()))
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="best", fontsize=8, framealpha=0.85)
    return fig


def values_figure(
    values: Mapping[str, np.ndarray],
    *,
    title: str,
    f_min: float | None = None,
) -> Figure:
    """The value per iteration of each run: :math:`f - f_{\\min}` on a log axis.

    When ``f_min`` is ``None`` (unbounded below) the raw value goes on a symmetric
    log axis, and the label says so. Exact zeros of :math:`f - f_{\\min}` are not drawn.

    Args:
        values: label -> value per iteration (row 0 is the start).
        title: what was run.
        f_min: the global minimum value, or ``None``.

    Returns:
        The figure.
    """
    fig = Figure(figsize=(8.0, 4.6), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    colors = colors_for(list(values))
    for label, v in values.items():
        y = np.asarray(v, dtype=float)
        if f_min is not None:
            y = np.where(y - f_min > 0, y - f_min, np.nan)
        ax.plot(np.arange(len(y)), y, color=colors[label], lw=1.5, label=label)
    if f_min is None:
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_ylabel("f(x)  (symlog scale; no minimum: unbounded below)")
    elif f_min == 0:
        ax.set_yscale("log")
        ax.set_ylabel("f(x)  (log scale; f_min = 0)")
    else:
        ax.set_yscale("log")
        ax.set_ylabel(f"f(x) − f_min  (log scale; f_min = {f_min:.6g})")
    ax.set_xlabel("iteration")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="best", fontsize=8)
    return fig
