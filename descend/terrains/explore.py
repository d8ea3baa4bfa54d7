"""Run several optimizers (or one at several learning rates) over a terrain and summarize.

This is the library side of ``descend terrain``: it returns plain numbers and arrays,
the command draws and prints them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from descend._validation import Interval, validate
from descend.minimize import MinimizeResult, minimize
from descend.minimize.result import SADDLE
from descend.terrains.base import Point, Terrain


@dataclass(frozen=True)
class Descent:
    """One optimizer's run on a terrain, with the numbers of the explorer's table.

    Attributes:
        label: legend text (the optimizer, plus its lr in a sweep).
        optimizer: registry name.
        lr: learning rate used.
        result: the full :class:`~descend.minimize.MinimizeResult`.
        path: points visited, ``(nit + 1, dim)`` numpy array.
        gap: :math:`f - f_{\\min}` per iteration (plain :math:`f` when unbounded below).
        iters_to_tol: first iteration with :math:`f - f_{\\min} \\le` tol, ``None`` if never.
        distance: distance from the final point to the nearest known minimum (inf if none).
        stop: short stop reason for the table (``"gtol"``, ``"max_iter"``, ``"saddle"``, ...).
    """

    label: str
    optimizer: str
    lr: float
    result: MinimizeResult
    path: np.ndarray
    gap: np.ndarray
    iters_to_tol: int | None
    distance: float
    stop: str


def explore(
    terrain: Terrain,
    optimizers: Sequence[str],
    *,
    lrs: Sequence[float] | None = None,
    steps: int | None = None,
    start: Point | None = None,
    tol: float = 1e-6,
    gtol: float = 1e-8,
) -> list[Descent]:
    """Descend ``terrain`` from ``start`` with each optimizer at its learning rate.

    An optimizer may appear several times (a learning-rate sweep). Each run stops at
    ``steps`` updates, at :math:`\\lVert \\nabla f \\rVert \\le` ``gtol``, or on divergence.

    Args:
        terrain: the terrain.
        optimizers: registry names, one per run.
        lrs: one learning rate per run; default the terrain's ``lrs[name]``.
        steps: most updates per run; default ``terrain.steps``.
        start: start point; default ``terrain.start``.
        tol: threshold on :math:`f - f_{\\min}` for ``iters_to_tol``.
        gtol: gradient-norm tolerance that ends a run early.

    Returns:
        One :class:`Descent` per run, in the order given.

    Example:
        >>> from descend.terrains import get_terrain
        >>> [d.stop for d in explore(get_terrain("quadratic"), ["gd"], lrs=[0.15])]
        ['gtol']
    """
    steps = terrain.steps if steps is None else steps
    validate(
        "explore",
        {"steps": steps, "tol": tol, "gtol": gtol},
        {
            "steps": Interval(1, None, integer=True),
            "tol": Interval(0, None),
            "gtol": Interval(0, None),
        },
    )
    if lrs is None:
        lrs = [terrain.lrs.get(o, 1e-3) for o in optimizers]
    if len(lrs) != len(optimizers):
        raise ValueError(
            f"Give one learning rate or one per optimizer ({len(optimizers)}). Got {len(lrs)} instead."
        )
    x0 = terrain.tensor(terrain.start if start is None else start)
    sweep = len(set(optimizers)) < len(optimizers)
    out = []
    for name, lr in zip(optimizers, lrs):
        res = minimize(terrain, x0, name, lr=lr, max_iter=steps, gtol=gtol)
        f = res.trajectory.f.numpy()
        gap = f - terrain.f_min if terrain.f_min is not None else f
        reached = np.flatnonzero(gap <= tol) if terrain.f_min is not None else np.array([])
        out.append(
            Descent(
                label=f"{name} lr={lr:g}" if sweep else name,
                optimizer=name,
                lr=float(lr),
                result=res,
                path=res.trajectory.x.numpy(),
                gap=gap,
                iters_to_tol=int(reached[0]) if reached.size else None,
                distance=terrain.distance_to_minimum(res.x),
                stop="saddle" if res.status == SADDLE else res.criterion,
            )
        )
    return out


def grid(terrain: Terrain, *, points: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The terrain on a ``points x points`` grid over its plotting domain (2-D terrains).

    Returns:
        ``(X, Y, Z)`` arrays of shape ``(points, points)``.
    """
    if terrain.dim != 2:
        raise ValueError(f"Only 2-D terrains can be drawn. {terrain.name!r} has dim={terrain.dim}.")
    (x_lo, x_hi), (y_lo, y_hi) = terrain.domain
    xs = torch.linspace(x_lo, x_hi, points, dtype=torch.float64)
    ys = torch.linspace(y_lo, y_hi, points, dtype=torch.float64)
    X, Y = torch.meshgrid(xs, ys, indexing="xy")
    Z = terrain(torch.stack([X, Y], dim=-1))
    return X.numpy(), Y.numpy(), Z.numpy()


def format_table(descents: Sequence[Descent], *, tol: float, f_min: float | None) -> str:
    """The explorer's table as Markdown: iterations to tol, final f, distance, stop reason."""
    tol_head = f"iters to f−f_min ≤ {tol:g}" if f_min is not None else "iters to tol"
    rows = [["optimizer", "lr", tol_head, "final f", "dist. to min", "stop"]]
    for d in descents:
        rows.append(
            [
                d.label if "lr=" not in d.label else d.optimizer,
                f"{d.lr:g}",
                "—" if d.iters_to_tol is None else str(d.iters_to_tol),
                f"{d.result.fun:.4g}",
                "—" if math.isinf(d.distance) else f"{d.distance:.3g}",
                d.stop,
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
