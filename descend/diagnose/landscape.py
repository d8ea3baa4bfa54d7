"""Loss-landscape slices: the loss along a line between two parameter sets, and over a plane.

A network has too many parameters to look at its loss surface directly; a slice
fixes all but one or two coordinates of a chosen coordinate system:

- 1-D: :math:`L((1-\\alpha)\\,\\theta_a + \\alpha\\,\\theta_b)` (Goodfellow et al. 2015,
  "Qualitatively characterizing neural network optimization problems");
- 2-D: :math:`L(\\theta^* + \\alpha\\, d_1 + \\beta\\, d_2)` along random directions
  rescaled filter by filter to the parameters' own norms, so that slices of
  differently scaled networks are comparable (Li et al. 2018, "Visualizing the Loss
  Landscape of Neural Nets", arXiv:1712.09913).

The loss is evaluated with ``torch.func.functional_call`` under ``torch.no_grad``,
in eval mode (BatchNorm on its running statistics, which stay those of the model
as given: they are buffers, not part of :math:`\\theta`). The model is not modified.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from descend._validation import Interval, validate
from descend.train import Callback, TrainState

ParamSet = Tensor | Mapping[str, Tensor]
"""A flat parameter vector (``parameter_vector`` order) or a ``{name: tensor}`` mapping."""


def parameter_vector(model: nn.Module) -> Tensor:
    """All of ``model``'s parameters, flattened and concatenated in ``named_parameters()`` order."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()


def _flat(model: nn.Module, theta: ParamSet) -> Tensor:
    if isinstance(theta, Tensor):
        n = sum(p.numel() for p in model.parameters())
        if theta.numel() != n:
            raise ValueError(
                f"A parameter vector of this model has {n} entries. Got {theta.numel()} instead."
            )
        return theta.detach().reshape(-1)
    names = [n for n, _ in model.named_parameters()]
    missing = [n for n in names if n not in theta]
    if missing:
        raise ValueError(f"The parameter set lacks {missing[:3]} (and maybe more).")
    return torch.cat([theta[n].detach().reshape(-1) for n in names])


def _as_params(model: nn.Module, theta: Tensor) -> dict[str, Tensor]:
    named = list(model.named_parameters())
    pieces = torch.split(theta, [p.numel() for _, p in named])
    return {n: t.view(p.shape).to(p.dtype) for (n, p), t in zip(named, pieces, strict=True)}


def loss_at(
    model: nn.Module, theta: ParamSet, data: tuple[Any, Any], loss: Callable[[Any, Any], Tensor]
) -> float:
    """The loss of ``model`` with parameters ``theta`` on ``data`` (eval mode, no gradients)."""
    x, y = data
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            params = _as_params(model, _flat(model, theta))
            return float(loss(torch.func.functional_call(model, params, (x,)), y))
    finally:
        model.train(was_training)


@dataclass(frozen=True)
class Slice1D:
    """``losses[i]`` at :math:`(1-\\alpha_i)\\theta_a + \\alpha_i \\theta_b`."""

    alphas: np.ndarray
    losses: np.ndarray


_NUM = Interval(2, None, integer=True)


def interpolate(
    model: nn.Module,
    theta_a: ParamSet,
    theta_b: ParamSet,
    data: tuple[Any, Any],
    loss: Callable[[Any, Any], Tensor],
    *,
    num: int = 25,
    margin: float = 0.0,
) -> Slice1D:
    """The loss along the segment from ``theta_a`` (:math:`\\alpha=0`) to ``theta_b`` (:math:`\\alpha=1`).

    .. math::
        L(\\alpha) = L\\big((1-\\alpha)\\,\\theta_a + \\alpha\\,\\theta_b\\big), \\qquad
        \\alpha \\in [-m, 1+m]

    From an initialisation to a trained network the curve is usually smooth and
    monotone: no barrier separates them, which is why descent finds its way.

    Args:
        model: the network (its parameters are not changed).
        theta_a, theta_b: the two ends (flat vectors or ``{name: tensor}``).
        data: ``(inputs, targets)``, evaluated in one forward pass per point.
        loss: ``(output, target) -> scalar tensor``.
        num: points on the line.
        margin: :math:`m`, how far to extend the line beyond both ends.

    Returns:
        :class:`Slice1D`.
    """
    validate(
        "interpolate", {"num": num, "margin": margin}, {"num": _NUM, "margin": Interval(0, None)}
    )
    a, b = _flat(model, theta_a), _flat(model, theta_b)
    alphas = np.linspace(-margin, 1.0 + margin, num)
    losses = np.array([loss_at(model, a + float(t) * (b - a), data, loss) for t in alphas])
    return Slice1D(alphas, losses)


def filter_normalized_direction(model: nn.Module, *, generator: torch.Generator) -> Tensor:
    """A random direction scaled filter by filter to ``model``'s parameters (Li et al. 2018).

    For each weight with two or more dimensions, each filter (slice along dim 0: a
    row of a linear layer, an output channel of a convolution) of a Gaussian
    direction :math:`d` is rescaled to the norm of the same filter of :math:`\\theta`:

    .. math::
        d_{i} \\leftarrow \\frac{d_{i}}{\\lVert d_{i} \\rVert}\\, \\lVert \\theta_{i} \\rVert

    Biases and BatchNorm parameters (one dimension) get 0, as in the paper: the
    slice moves only the weights.

    Returns:
        A flat direction in :func:`parameter_vector` order (float32 on the CPU).
    """
    pieces = []
    for p in model.parameters():
        w = p.detach().to("cpu", torch.float32)
        if w.ndim < 2:
            pieces.append(torch.zeros(w.numel()))
            continue
        d = torch.randn(w.shape, generator=generator)
        d_norms = d.reshape(d.shape[0], -1).norm(dim=1)
        w_norms = w.reshape(w.shape[0], -1).norm(dim=1)
        scale = (w_norms / d_norms.clamp_min(1e-10)).view(-1, *([1] * (w.ndim - 1)))
        pieces.append((d * scale).reshape(-1))
    return torch.cat(pieces)


def random_directions(model: nn.Module, *, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Two filter-normalized random directions (:func:`filter_normalized_direction`), fixed by ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return filter_normalized_direction(model, generator=g), filter_normalized_direction(
        model, generator=g
    )


def pca_directions(trajectory: Tensor, center: Tensor) -> tuple[Tensor, Tensor]:
    """The two principal directions of a trajectory's offsets from ``center`` (unit vectors).

    Random directions in millions of dimensions are nearly orthogonal to any path, so
    a trajectory projected on them shows little; the top two right singular vectors
    of :math:`[\\theta_t - \\theta^*]_t` span the plane in which it moved most
    (Li et al. 2018, section 7).
    """
    offsets = (trajectory - center).to(torch.float64)  # (T, n)
    _, _, vh = torch.linalg.svd(offsets, full_matrices=False)
    if vh.shape[0] < 2:
        raise ValueError("pca_directions needs a trajectory that moves in at least two directions.")
    return vh[0].to(torch.float32), vh[1].to(torch.float32)


def project(trajectory: Tensor, center: Tensor, d1: Tensor, d2: Tensor) -> np.ndarray:
    """Least-squares coordinates :math:`(\\alpha_t, \\beta_t)` of each :math:`\\theta_t - \\theta^*` on the plane.

    .. math::
        (\\alpha_t, \\beta_t) = \\arg\\min_{a, b} \\lVert \\theta_t - \\theta^* - a\\, d_1 - b\\, d_2 \\rVert^2
        = (A^\\top A)^{-1} A^\\top (\\theta_t - \\theta^*), \\quad A = [d_1\\; d_2]

    Args:
        trajectory: ``(T, n)`` parameter vectors.
        center: ``(n,)``, :math:`\\theta^*`.
        d1, d2: ``(n,)`` directions.

    Returns:
        ``(T, 2)`` coordinates.
    """
    A = torch.stack([d1, d2], dim=1).to(torch.float64)  # (n, 2)
    offsets = (trajectory.to(torch.float64) - center.to(torch.float64)).T  # (n, T)
    coords = torch.linalg.solve(A.T @ A, A.T @ offsets)  # (2, T)
    return coords.T.numpy()


@dataclass(frozen=True)
class Plane:
    """``losses[j, i]`` at :math:`\\theta^* + \\alpha_i d_1 + \\beta_j d_2` (rows are :math:`\\beta`)."""

    alphas: np.ndarray
    betas: np.ndarray
    losses: np.ndarray


def plane(
    model: nn.Module,
    center: ParamSet,
    d1: Tensor,
    d2: Tensor,
    data: tuple[Any, Any],
    loss: Callable[[Any, Any], Tensor],
    *,
    grid: int = 21,
    span: float = 1.0,
) -> Plane:
    """The loss on a ``grid x grid`` lattice of :math:`[-s, s]^2` around ``center``.

    .. math::
        L(\\alpha, \\beta) = L(\\theta^* + \\alpha\\, d_1 + \\beta\\, d_2)

    Cost: ``grid**2`` forward passes over ``data`` (keep ``data`` a few hundred samples).

    Args:
        model: the network (not modified).
        center: :math:`\\theta^*`.
        d1, d2: the directions (:func:`random_directions` or :func:`pca_directions`).
        data, loss: as in :func:`interpolate`.
        grid: points per axis.
        span: :math:`s`, the half-width of the square in units of the directions.

    Returns:
        :class:`Plane`.
    """
    validate(
        "plane",
        {"grid": grid, "span": span},
        {"grid": _NUM, "span": Interval(0, None, closed="neither")},
    )
    c = _flat(model, center)
    d1, d2 = d1.to(c), d2.to(c)
    alphas = np.linspace(-span, span, grid)
    betas = np.linspace(-span, span, grid)
    losses = np.empty((grid, grid))
    for j, b in enumerate(betas):
        for i, a in enumerate(alphas):
            losses[j, i] = loss_at(model, c + float(a) * d1 + float(b) * d2, data, loss)
    return Plane(alphas, betas, losses)


class ParameterSnapshots(Callback):
    """Keep a copy of the parameters before training and every ``every_n_steps`` updates.

    The copies (flat, on the CPU) form the trajectory that :func:`project` places on
    a landscape slice. The final parameters are always included.

    Attributes:
        steps: the update count of each snapshot (0 is the initialisation).
        snapshots: the flat parameter vectors, in the same order.
    """

    def __init__(self, *, every_n_steps: int = 1) -> None:
        validate(
            "ParameterSnapshots",
            {"every_n_steps": every_n_steps},
            {"every_n_steps": Interval(1, None, integer=True)},
        )
        self.every_n_steps = int(every_n_steps)
        self.steps: list[int] = []
        self.snapshots: list[Tensor] = []

    def _take(self, state: TrainState) -> None:
        if not self.steps or self.steps[-1] != state.step:
            self.steps.append(state.step)
            self.snapshots.append(parameter_vector(state.model).cpu())

    def on_fit_start(self, state: TrainState) -> None:
        self._take(state)

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every_n_steps == 0:
            self._take(state)

    def on_fit_end(self, state: TrainState) -> None:
        self._take(state)

    def trajectory(self) -> Tensor:
        """``(T, n)``: the snapshots stacked."""
        return torch.stack(self.snapshots)
