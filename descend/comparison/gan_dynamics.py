"""The GAN's update rules side by side: samples over training, modes, distances and verdicts.

``write_gan_dynamics(out)`` runs every recipe of :data:`descend.tasks.gan_dynamics.RECIPES`
on the ``gan`` task, diagnoses each run with :func:`descend.diagnose.diagnose_adversarial`
and writes ``gan_dynamics.png`` (the generated points every few epochs, one row per
recipe) and ``gan_dynamics.json`` (per recipe: final modes, sliced distance, verdicts).
``docs/img/gan_dynamics.png`` is its figure for seed 0 (``write_gan_dynamics("docs/img")``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from descend.diagnose import diagnose_adversarial
from descend.report.gan_plots import plot_gan_samples
from descend.tasks.gan import MODES, gan
from descend.tasks.gan_dynamics import RECIPES, run_recipe


def write_gan_dynamics(
    out: str | Path, *, seed: int = 0, recipes: tuple[str, ...] = tuple(RECIPES), every: int = 8
) -> dict[str, Any]:
    """Run ``recipes`` on the ``gan`` task with ``seed``; write the figure and the numbers to ``out``.

    Returns:
        ``{recipe: {"label", "final_modes", "final_sliced_w", "final_spread", "verdicts"}}``.
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    rows, captions, found = {}, {}, {}
    for name in recipes:
        history, snapshots, _ = run_recipe(name, seed=seed, every=every)
        last = history.epochs[-1]
        verdicts = diagnose_adversarial(history.epochs, modes=MODES)
        label = RECIPES[name].label
        rows[label] = snapshots.snapshots
        kinds = ", ".join(v.kind for v in verdicts) or "no verdict"
        captions[label] = f"modes {int(last['val_modes'])}/{MODES}; {kinds}"
        found[name] = {
            "label": label,
            "final_modes": float(last["val_modes"]),
            "final_sliced_w": float(last["val_sliced_w"]),
            "final_spread": float(last["val_spread"]),
            "verdicts": [v.to_dict() for v in verdicts],
        }
    real = gan().data(seed).val[0][:1024]
    plot_gan_samples(rows, real, folder / "gan_dynamics.png", captions=captions)
    (folder / "gan_dynamics.json").write_text(json.dumps(found, indent=2) + "\n")
    return found
