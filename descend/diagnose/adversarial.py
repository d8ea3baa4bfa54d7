r"""Verdicts for two-player training (a GAN): mode collapse and oscillation.

The terrain picture of one loss going downhill does not describe a game: each
player descends its own loss while the other moves, and the joint gradient field
can rotate, so simultaneous gradient descent may cycle around an equilibrium
instead of reaching it (Mescheder et al., 2017). What a person sees is either a
generator that settles on a few modes of the data (*mode collapse*) or a
generated distribution that keeps jumping (*oscillation*). Both are read from
the epoch rows of a run's history, from two columns the ``gan`` task logs:
modes covered, and a distance between generated and real samples.

References:
    Mescheder, Nowozin, Geiger, "The Numerics of GANs", NeurIPS 2017.
    https://arxiv.org/abs/1705.10461
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from descend.diagnose.verdict import Verdict

COLLAPSE_SHARE = 0.5
"""Mode collapse: over the last quarter of training the median modes covered is at most this
share of the modes (4 of 8)..."""
NARROW = 0.8
"""...and the generated cloud is at most this wide relative to the data (RMS distance from the
mean). A generator that covers few modes because it sprays points everywhere has not
collapsed: it has not fitted."""
JUMP = 0.3
"""Oscillation: the mean epoch-to-epoch change of log(distance) over the last half is at least
this (a typical factor of 1.35 between consecutive epochs). A converging run measured
0.18 and a settled, unfitted one 0.05; collapsed runs of Adam at lr 1e-2 and 3e-2
(beta1 = 0.9) 0.4 and more (``tests/tasks/test_task_gan.py``)."""


def diagnose_adversarial(
    epochs: Sequence[Mapping[str, Any]],
    *,
    modes: int,
    modes_column: str = "val_modes",
    distance_column: str = "val_sliced_w",
    spread_column: str = "val_spread",
) -> list[Verdict]:
    """Mode collapse and oscillation verdicts for a two-player run (empty when neither holds).

    Args:
        epochs: the run's epoch rows (``History.epochs``), at least 4.
        modes: how many modes the data has.
        modes_column, distance_column, spread_column: the columns with the modes
            covered, the distance between generated and real samples, and the width of
            the generated cloud relative to the data's.

    Returns:
        ``mode_collapse`` and/or ``oscillation`` verdicts, in that order, with evidence.
    """
    if len(epochs) < 4:
        raise ValueError(f"diagnose_adversarial needs at least 4 epoch rows, got {len(epochs)}")
    tail = epochs[len(epochs) // 2 :]
    last = epochs[(3 * len(epochs)) // 4 :]
    covered = np.array([float(r[modes_column]) for r in last])
    width = float(np.median([float(r[spread_column]) for r in last]))
    distance = np.array([float(r[distance_column]) for r in tail])
    found = []
    median_modes = float(np.median(covered))
    if median_modes <= COLLAPSE_SHARE * modes and width <= NARROW:
        found.append(
            Verdict(
                "mode_collapse",
                f"the generator covers a median of {median_modes:g} of {modes} modes over the "
                f"last quarter of training ({covered[-1]:g} at the end), in a cloud {width:.2f} times as "
                "wide as the data: mode collapse",
                {
                    "median_modes": median_modes,
                    "final_modes": float(covered[-1]),
                    "modes": modes,
                    "median_spread": width,
                },
            )
        )
    finite = distance[np.isfinite(distance) & (distance > 0)]
    jump = float(np.abs(np.diff(np.log(finite))).mean()) if len(finite) > 1 else math.inf
    if jump >= JUMP:
        found.append(
            Verdict(
                "oscillation",
                f"the distance to the data jumps by a factor of {math.exp(jump):.2f} per epoch "
                f"on average over the last half (between {distance.min():.3g} and "
                f"{distance.max():.3g}): the players cycle instead of settling",
                {
                    "mean_log_jump": jump,
                    "min_distance": float(distance.min()),
                    "max_distance": float(distance.max()),
                },
            )
        )
    return found
