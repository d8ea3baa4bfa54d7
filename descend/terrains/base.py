"""A terrain: a test function together with what is known about it.

The function takes points as the last axis of a tensor, ``(..., dim) -> (...)``, so
one call evaluates a whole plotting grid; on a single point ``(dim,)`` it returns a
scalar that autograd can differentiate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

Point = tuple[float, ...]


@dataclass(frozen=True, eq=False)
class Terrain:
    """A test function with its known minima, saddle points, plotting domain and start points.

    Args:
        name: registry name.
        fun: ``(..., dim) -> (...)``, differentiable by autograd.
        dim: number of coordinates.
        minima: the global minimizers; empty when the function has none.
        f_min: the global minimum value, ``None`` when the function is unbounded below.
        saddles: known saddle points (gradient zero, indefinite or degenerate Hessian).
        bounded_below: ``False`` for functions with no minimum at all.
        domain: ``(low, high)`` per coordinate for plots.
        starts: standard start points, the first one is the default.
        lrs: default learning rate per optimizer name, chosen so each descent shows
            its character from ``starts[0]``.
        steps: default number of steps for the explorer.
        description: one line for users.
    """

    name: str
    fun: Callable[[Tensor], Tensor]
    dim: int
    minima: tuple[Point, ...]
    f_min: float | None
    domain: tuple[tuple[float, float], ...]
    starts: tuple[Point, ...]
    saddles: tuple[Point, ...] = ()
    bounded_below: bool = True
    lrs: Mapping[str, float] = field(default_factory=dict)
    steps: int = 500
    description: str = ""

    def __call__(self, x: Tensor) -> Tensor:
        return self.fun(x)

    @property
    def start(self) -> Point:
        """The default start point, ``starts[0]``."""
        return self.starts[0]

    def tensor(self, point: Sequence[float], *, dtype: torch.dtype = torch.float64) -> Tensor:
        """A point as a tensor of shape ``(dim,)``."""
        if len(point) != self.dim:
            raise ValueError(
                f"A point of terrain {self.name!r} must have {self.dim} coordinates. "
                f"Got {len(point)} instead."
            )
        return torch.tensor([float(v) for v in point], dtype=dtype)

    def distance_to_minimum(self, x: Sequence[float] | Tensor) -> float:
        """Euclidean distance from ``x`` to the nearest known global minimizer (inf if none)."""
        if not self.minima:
            return math.inf
        p = torch.as_tensor(x, dtype=torch.float64).reshape(-1).cpu()
        m = torch.tensor(self.minima, dtype=torch.float64)
        return float((m - p).norm(dim=1).min())
