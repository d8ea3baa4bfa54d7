"""One measurement of gradient health, as plain data (see :mod:`descend.diagnose.health`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class HealthRecord:
    """What one step looked like inside the network.

    Attributes:
        step: the 1-based update this was measured at (0 for a standalone report).
        loss: the batch loss.
        grad_norms: parameter name -> L2 norm of its gradient, in model order.
        update_ratios: parameter name -> :math:`\\lVert \\theta_{t+1} - \\theta_t \\rVert /
            \\lVert \\theta_t \\rVert` for this step (empty when no step was taken).
        dead_fraction: ReLU module name -> fraction of its units that were zero for
            every sample of the batch.
        nonfinite: where a NaN or infinity first appeared (``"loss"`` or a parameter
            name), ``None`` when everything was finite.
        weights: the names of the weight matrices and kernels (parameters with two or
            more dimensions), in model order: the "layers" whose gradients are compared
            from first to last (biases and normalisation scales are left out).
    """

    step: int
    loss: float
    grad_norms: dict[str, float] = field(default_factory=dict)
    update_ratios: dict[str, float] = field(default_factory=dict)
    dead_fraction: dict[str, float] = field(default_factory=dict)
    nonfinite: str | None = None
    weights: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (checkpoint and JSON safe)."""
        return {
            "step": self.step,
            "loss": self.loss,
            "grad_norms": dict(self.grad_norms),
            "update_ratios": dict(self.update_ratios),
            "dead_fraction": dict(self.dead_fraction),
            "nonfinite": self.nonfinite,
            "weights": list(self.weights),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HealthRecord:
        """The inverse of :meth:`to_dict`."""
        return cls(
            step=int(d["step"]),
            loss=float(d["loss"]),
            grad_norms=dict(d.get("grad_norms", {})),
            update_ratios=dict(d.get("update_ratios", {})),
            dead_fraction=dict(d.get("dead_fraction", {})),
            nonfinite=d.get("nonfinite"),
            weights=list(d.get("weights", [])),
        )
