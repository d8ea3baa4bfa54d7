"""What a diagnosis says: one kind of trouble (or none), a sentence, and the numbers behind it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = (
    "exploding",
    "lr_too_large",
    "mode_collapse",
    "oscillation",
    "vanishing",
    "dead_relu",
    "saddle",
    "plateau",
    "lr_too_small",
    "healthy",
)
"""Every verdict kind, most urgent first (the order :func:`diagnose_history` reports them in).

- ``exploding``: non-finite values, or a gradient norm growing by orders of magnitude;
- ``lr_too_large``: the loss rises or oscillates without decreasing (overshoot, divergence);
- ``mode_collapse``: a generator covers only a few of the data's modes (two-player games);
- ``oscillation``: a game's players chase each other instead of settling: the distance
  between generated and real data jumps from epoch to epoch;
- ``vanishing``: early layers' gradients orders of magnitude below the last layer's;
- ``dead_relu``: most units of a ReLU layer output zero for every sample;
- ``saddle``: the Hessian has a clearly negative eigenvalue where the loss is flat;
- ``plateau``: the loss is flat, the gradient small, and little has been learned;
- ``lr_too_small``: updates are tiny relative to the parameters and the loss crawls;
- ``healthy``: none of the above.
"""


@dataclass(frozen=True)
class Verdict:
    """A diagnosis: ``kind`` (one of :data:`KINDS`), a sentence for a person, and its evidence.

    ``evidence`` holds the numbers the rule compared (plain floats, ints and
    strings), so a report can show why the verdict was reached.
    """

    kind: str
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Verdict kind must be one of {KINDS}. Got {self.kind!r} instead.")

    def to_dict(self) -> dict[str, Any]:
        """``{"kind", "message", "evidence"}`` as plain data (JSON and report safe)."""
        return {"kind": self.kind, "message": self.message, "evidence": dict(self.evidence)}

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"
