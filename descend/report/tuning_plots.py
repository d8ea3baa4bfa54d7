"""The tuning trials of a comparison: each optimizer's score against its learning rate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from matplotlib.figure import Figure

from descend.report.plots import DPI, colors_for


def tuning_figure(tuning: Mapping[str, Mapping[str, Any]], *, title: str) -> Figure | None:
    """Score on the tuning split against lr (log axis), one line per optimizer; chosen lr ringed.

    ``tuning`` maps optimizer name to ``{"hyperparameters", "trials", "metric"}`` as
    :class:`descend.comparison.tuning.Tuned` writes it. Diverged trials are crosses on
    the lower edge. ``None`` when no trial has an lr.
    """
    series = {
        name: [t for t in found.get("trials") or [] if "lr" in (t.get("hyperparameters") or {})]
        for name, found in tuning.items()
    }
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    metric = next((str(f.get("metric") or "") for f in tuning.values()), "")
    fig = Figure(figsize=(7.5, 4.2), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    colors = colors_for(list(series))
    styles = ["-", "--", "-.", ":"]
    for i, (name, trials) in enumerate(series.items()):
        lrs = [t["hyperparameters"]["lr"] for t in trials]
        scores = [t["score"] for t in trials]
        ok = [(x, y) for x, y in zip(lrs, scores, strict=True) if y is not None]
        if ok:
            # A line style per optimizer as well as a colour: equal scores would hide a line.
            ax.plot(
                *zip(*ok, strict=True),
                marker="o",
                ls=styles[i % len(styles)],
                color=colors[name],
                label=name,
                lw=1.6,
                ms=4,
            )
        chosen = (tuning[name].get("hyperparameters") or {}).get("lr")
        picked = [(x, y) for x, y in ok if x == chosen]
        if picked:
            ax.plot(*picked[0], "o", ms=11, mfc="none", mec=colors[name], mew=2)
        bad = [x for x, y in zip(lrs, scores, strict=True) if y is None]
        if bad:
            low = ax.get_ylim()[0]
            ax.plot(bad, [low] * len(bad), "x", color=colors[name], ms=8, clip_on=False)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel(f"{metric} on the tuning split")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncols=2)
    return fig
