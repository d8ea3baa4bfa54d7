"""The GAN's generated points over training, one row per update rule (a PNG)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor


def plot_gan_samples(
    rows: Mapping[str, Mapping[int, Tensor]],
    real: Tensor,
    path: str | os.PathLike[str],
    *,
    captions: Mapping[str, str] | None = None,
) -> None:
    """Write a grid of scatter plots: ``rows[label][epoch]`` is an (n, 2) sample.

    Each row is one run (its label, and ``captions[label]`` under it, e.g. a verdict),
    each column one epoch; the real data is drawn in grey behind every panel.
    """
    epochs = sorted({e for snaps in rows.values() for e in snaps})
    fig = Figure(figsize=(1.6 * len(epochs), 1.7 * len(rows)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), len(epochs), squeeze=False, sharex=True, sharey=True)
    for i, (label, snaps) in enumerate(rows.items()):
        for j, epoch in enumerate(epochs):
            ax = axes[i][j]
            ax.scatter(real[:, 0], real[:, 1], s=1, c="0.8")
            if epoch in snaps:
                pts = snaps[epoch]
                ax.scatter(pts[:, 0], pts[:, 1], s=1, c="tab:blue")
            ax.set(xlim=(-3, 3), ylim=(-3, 3), xticks=[], yticks=[], aspect="equal")
            if i == 0:
                ax.set_title(f"epoch {epoch}", fontsize=8)
        caption = (captions or {}).get(label, "")
        axes[i][0].set_ylabel(label + (f"\n{caption}" if caption else ""), fontsize=7)
    fig.savefig(path, dpi=110)
