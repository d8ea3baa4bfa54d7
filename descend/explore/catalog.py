"""What the explorer offers: every terrain and every registry optimizer, with slider ranges.

Nothing here is a list of names: the terrains come from ``descend.terrains``, the
optimizers from ``descend.optim``'s registry, their sliders from the tuning search
spaces (``descend/tune/spaces.py``). An optimizer added to the registry appears on the
page without a change here. One that cannot descend a 2-D point (Muon needs matrix
parameters) is listed as unavailable, with the reason its own constructor or step gave.
"""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass
from typing import Any

import torch

from descend.minimize import minimize
from descend.optim.registry import OPTIMIZERS, get_spec
from descend.terrains import TERRAIN_NAMES, Terrain, get_terrain
from descend.terrains.registry import terrain_knobs
from descend.tune.spaces import SPACES, Param

GRID_POINTS = 81  # contour and surface resolution: enough for the shapes, small enough to send


@dataclass(frozen=True)
class Slider:
    """One hyperparameter slider: its range, scale and default value.

    The range is the values the optimizer accepts (``Param.bounds``) where they are
    finite, else the tuning search range; the learning rate's upper end is raised to
    at least 1 so that a step too large to be stable can be shown.
    """

    name: str
    low: float
    high: float
    log: bool
    default: float

    def contains(self, value: float) -> bool:
        return math.isfinite(value) and self.low <= value <= self.high

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "low": self.low,
            "high": self.high,
            "log": self.log,
            "default": self.default,
        }


_LR_FALLBACK = Param("lr", 1e-5, 1.0, log=True)
_FRACTION_TOP = 0.999  # a decay of exactly 1 never forgets: the slider stops short of it


def _default(name: str, spec_defaults: dict[str, Any], signature_defaults: dict[str, Any]) -> Any:
    if name in ("beta1", "beta2"):
        betas = spec_defaults.get("betas", signature_defaults.get("betas", (0.9, 0.999)))
        return betas[0 if name == "beta1" else 1]
    return spec_defaults.get(name, signature_defaults.get(name))


def _slider(p: Param, default: Any) -> Slider:
    lo_bound, hi_bound, _ = p.bounds
    if p.name == "lr":
        low, high = p.low, max(p.high, 1.0)
    elif not p.log and math.isfinite(hi_bound):
        low, high = lo_bound, min(hi_bound, _FRACTION_TOP)
    else:
        low, high = p.low, p.high
    value = float(default) if isinstance(default, int | float) else low
    if not low <= value <= high:
        value = min(max(value, low), high)
    return Slider(p.name, float(low), float(high), p.log, value)


@functools.cache
def sliders(optimizer: str) -> tuple[Slider, ...]:
    """The sliders of a registry optimizer, ``lr`` first (``lr`` only without a search space)."""
    spec = get_spec(optimizer)
    signature = {
        k: v.default
        for k, v in inspect.signature(spec.cls).parameters.items()
        if v.default is not inspect.Parameter.empty
    }
    space = SPACES.get(spec.name, (_LR_FALLBACK,))
    return tuple(_slider(p, _default(p.name, dict(spec.defaults), signature)) for p in space)


@functools.cache
def unavailable_reason(optimizer: str) -> str | None:
    """Why ``optimizer`` cannot descend a 2-D terrain point, or ``None`` when it can.

    Decided by trying: two steps on a quadratic from a 2-vector. An optimizer that
    needs matrix-shaped parameters refuses the vector, and its message is the reason.
    """
    try:
        x0 = torch.tensor([1.0, -1.0], dtype=torch.float64)
        minimize(lambda x: (x**2).sum(), x0, optimizer, max_iter=2, check_curvature=False)
    except Exception as exc:  # noqa: BLE001 - whatever the optimizer raised is the reason shown
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{optimizer} cannot step a 2-D point: {first}"
    return None


def optimizer_catalog() -> list[dict[str, Any]]:
    """Every registry optimizer: name, summary, sliders, and whether it runs on 2-D terrains."""
    out = []
    for name, spec in OPTIMIZERS.items():
        reason = unavailable_reason(name)
        out.append(
            {
                "name": name,
                "summary": spec.summary,
                "sliders": [s.to_dict() for s in sliders(name)],
                "available": reason is None,
                "reason": reason,
            }
        )
    return out


def terrain_lr(terrain: Terrain, optimizer: str) -> float:
    """The terrain's own learning rate for ``optimizer``, clipped into the slider's range."""
    lr = next(s for s in sliders(optimizer) if s.name == "lr")
    return min(max(terrain.lrs.get(optimizer, lr.default), lr.low), lr.high)


# The terrain settings the page offers, wherever a terrain takes one (``dim`` stays 2:
# the page draws planes). Ranges: wide enough to teach, small enough to draw.
KNOBS = {
    "condition": Slider("condition", 1.0, 1000.0, True, 10.0),
    "width": Slider("width", 0.25, 4.0, True, 1.0),
}

Knobs = tuple[tuple[str, float], ...]


def knob_sliders(terrain: str) -> tuple[Slider, ...]:
    """The sliders of ``terrain``'s settings, each at the terrain's own default."""
    out = []
    for name, default in terrain_knobs(terrain).items():
        if name in KNOBS:
            s = KNOBS[name]
            out.append(Slider(name, s.low, s.high, s.log, float(default)))
    return tuple(out)


@functools.lru_cache(maxsize=32)
def terrain_view(name: str, knobs: Knobs = ()) -> dict[str, Any]:
    """A 2-D terrain as plain data: its grid, minima, saddles, starts and default rates."""
    t = get_terrain(name, **dict(knobs))
    from descend.terrains.explore import grid

    X, Y, Z = grid(t, points=GRID_POINTS)
    return {
        "name": t.name,
        "knobs": dict(knobs),
        "description": t.description,
        "domain": [list(d) for d in t.domain],
        "minima": [list(m) for m in t.minima],
        "saddles": [list(s) for s in t.saddles],
        "f_min": t.f_min,
        "starts": [list(s) for s in t.starts],
        "steps": t.steps,
        "lrs": {o: terrain_lr(t, o) for o in OPTIMIZERS},
        "x": X[0].tolist(),
        "y": Y[:, 0].tolist(),
        "z": Z.tolist(),
    }


def terrain_catalog() -> list[dict[str, Any]]:
    """Every terrain name with its one-line description and its settings' sliders."""
    return [
        {
            "name": n,
            "description": get_terrain(n).description,
            "knobs": [k.to_dict() for k in knob_sliders(n)],
        }
        for n in TERRAIN_NAMES
    ]
