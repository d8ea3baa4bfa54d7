"""Performance profiles: how often each optimizer is within a factor of the best, across tasks.

For tasks :math:`t` and optimizers :math:`s` with cost :math:`c_{t,s}` (mean steps to
the target over seeds; :math:`\\infty` when no seed reached it), the ratio to the best is

.. math::
    r_{t,s} = \\frac{c_{t,s}}{\\min_{s'} c_{t,s'}}, \\qquad
    \\rho_s(\\tau) = \\frac{1}{|T|} \\, \\bigl|\\{t : r_{t,s} \\le \\tau\\}\\bigr|

:math:`\\rho_s(1)` is the share of tasks on which :math:`s` was fastest; the curve's
height at large :math:`\\tau` is the share it solved at all. This is how AlgoPerf scores
training-algorithm submissions (Dahl et al., 2023, "Benchmarking Neural Network
Training Algorithms", https://arxiv.org/abs/2306.07179), after Dolan & Moré (2002).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from descend.report.plots import DPI, colors_for


def ratios(costs: Mapping[str, Mapping[str, float | None]]) -> dict[str, dict[str, float]]:
    """``{task: {optimizer: r}}`` from ``{task: {optimizer: cost or None}}`` (None: not reached).

    A task no optimizer solved gives every optimizer :math:`\\infty`.

    Example:
        >>> ratios({"a": {"sgd": 200.0, "adam": 100.0}, "b": {"sgd": 50.0, "adam": None}})
        {'a': {'sgd': 2.0, 'adam': 1.0}, 'b': {'sgd': 1.0, 'adam': inf}}
    """
    out: dict[str, dict[str, float]] = {}
    for task, by_opt in costs.items():
        finite = [c for c in by_opt.values() if c is not None and math.isfinite(c) and c > 0]
        best = min(finite) if finite else None
        out[task] = {
            name: (
                c / best if best is not None and c is not None and math.isfinite(c) else math.inf
            )
            for name, c in by_opt.items()
        }
    return out


def profile(
    costs: Mapping[str, Mapping[str, float | None]], taus: Sequence[float]
) -> dict[str, list[float]]:
    """``{optimizer: [rho(tau) for tau in taus]}``: the fraction of tasks within ``tau`` of the best.

    Example:
        >>> profile({"a": {"sgd": 200.0, "adam": 100.0}, "b": {"sgd": 50.0, "adam": None}}, [1, 2])
        {'sgd': [0.5, 1.0], 'adam': [0.5, 0.5]}
    """
    r = ratios(costs)
    names = list(dict.fromkeys(n for by_opt in costs.values() for n in by_opt))
    n_tasks = len(r)
    return {
        name: [
            sum(1 for by_opt in r.values() if by_opt.get(name, math.inf) <= tau) / n_tasks
            for tau in taus
        ]
        for name in names
    }


def profile_figure(costs: Mapping[str, Mapping[str, float | None]], *, title: str) -> Figure:
    """The performance profile as step curves, :math:`\\tau` on a log axis from 1 to the largest ratio."""
    finite = [v for by_opt in ratios(costs).values() for v in by_opt.values() if math.isfinite(v)]
    top = max(2.0, 1.2 * max(finite, default=2.0))
    taus = list(np.geomspace(1.0, top, 200))
    curves = profile(costs, taus)
    fig = Figure(figsize=(7.5, 4.2), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    colors = colors_for(list(curves))
    styles = ["-", "--", "-.", ":"]
    for i, (name, rho) in enumerate(curves.items()):
        # Line styles as well as colours: equal curves would otherwise hide one another.
        ax.step(taus, rho, where="post", color=colors[name], ls=styles[i % 4], lw=2, label=name)
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("τ: steps to target within τ × the best optimizer's (log scale)")
    ax.set_ylabel(f"fraction of the {len(costs)} tasks")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig
