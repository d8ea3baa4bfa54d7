"""Curvature of a network's loss: extreme Hessian eigenvalues from Hessian-vector products.

The loss on a batch becomes a function of one flat parameter vector
(``torch.func.functional_call``), and :mod:`descend.curvature` runs Lanczos on
its Hessian-vector products: the Hessian itself (``n x n`` for ``n`` parameters)
is never formed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from descend._validation import Interval, Satisfies, validate
from descend.curvature import hessian_eigenvalues
from descend.diagnose.verdict import Verdict


def flat_loss(
    model: nn.Module, data: tuple[Any, Any], loss: Callable[[Any, Any], Tensor]
) -> tuple[Callable[[Tensor], Tensor], Tensor]:
    """The loss on ``data`` as a function of one flat vector of the trainable parameters.

    .. math::
        f(\\theta) = \\text{loss}\\big(\\text{model}(x; \\theta), y\\big), \\qquad
        \\theta = \\text{concat}(\\text{vec}(W_1), \\text{vec}(b_1), \\dots)

    in ``model.named_parameters()`` order. Buffers (BatchNorm running statistics)
    are the model's own and are not part of :math:`\\theta`.

    Returns:
        ``(f, theta0)``: the function and the current parameters, flat and detached.
    """
    x, y = data
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    shapes = [p.shape for _, p in named]
    sizes = [p.numel() for _, p in named]
    theta0 = torch.cat([p.detach().reshape(-1) for _, p in named])

    def f(theta: Tensor) -> Tensor:
        pieces = torch.split(theta, sizes)
        params = {n: t.view(s) for (n, _), t, s in zip(named, pieces, shapes, strict=True)}
        return loss(torch.func.functional_call(model, params, (x,)), y)

    return f, theta0


@dataclass(frozen=True)
class Curvature:
    """Extreme Hessian eigenvalues of a loss at a point.

    Attributes:
        largest: :math:`\\lambda_{\\max}`, the sharpness.
        smallest: :math:`\\lambda_{\\min}`; clearly negative means a direction of
            descent remains (a saddle point, not a minimum).
        stability_lr: :math:`2/\\lambda_{\\max}`: plain gradient descent with a
            larger learning rate grows along the sharpest direction instead of
            shrinking (on a quadratic, :math:`|1 - \\eta\\lambda_{\\max}| > 1`).
            ``inf`` when :math:`\\lambda_{\\max} \\le 0`.
        iters: Lanczos steps taken.
        grad_norm: :math:`\\lVert \\nabla f \\rVert` at the point: a negative eigenvalue
            makes a *saddle* only where the gradient is small too.
    """

    largest: float
    smallest: float
    stability_lr: float
    iters: int
    grad_norm: float = float("nan")

    def verdicts(self, lr: float | None = None, *, saddle_tol: float = 1e-3) -> list[Verdict]:
        """``lr_too_large`` when ``lr`` exceeds :attr:`stability_lr`; ``saddle`` when
        :math:`\\lambda_{\\min} < -\\text{saddle\\_tol}\\cdot|\\lambda_{\\max}|`; else ``healthy``."""
        found: list[Verdict] = []
        evidence = {
            "largest": self.largest,
            "smallest": self.smallest,
            "stability_lr": self.stability_lr,
            "grad_norm": self.grad_norm,
        }
        if lr is not None and lr > self.stability_lr:
            found.append(
                Verdict(
                    "lr_too_large",
                    f"lr {lr:g} is {lr / self.stability_lr:.3g} times the stability limit "
                    f"2/lambda_max = {self.stability_lr:.3g} of plain gradient descent.",
                    {**evidence, "lr": lr},
                )
            )
        if self.smallest < -saddle_tol * max(abs(self.largest), 1e-30):
            found.append(
                Verdict(
                    "saddle",
                    f"The Hessian has a negative eigenvalue ({self.smallest:.3g}, against "
                    f"{self.largest:.3g} at the top; gradient norm {self.grad_norm:.3g}): this is no "
                    "minimum, the loss still falls along that direction. Where the gradient is "
                    "small too, the descent sits at a saddle and slows down until it turns.",
                    evidence,
                )
            )
        return found or [
            Verdict("healthy", "Curvature is consistent with a stable minimum.", evidence)
        ]


_ITERS = Interval(1, None, integer=True)
_NONE = Satisfies(lambda v: v is None, "None")


def curvature(
    model: nn.Module,
    data: tuple[Any, Any],
    loss: Callable[[Any, Any], Tensor],
    *,
    iters: int = 20,
    max_samples: int | None = 512,
    seed: int = 0,
) -> Curvature:
    """The largest and smallest Hessian eigenvalues of ``loss`` at ``model``'s parameters.

    Lanczos (:func:`descend.curvature.hessian_eigenvalues`) on the Hessian-vector
    product :math:`v \\mapsto \\nabla_\\theta(\\nabla_\\theta f(\\theta)^\\top v)` of
    :func:`flat_loss`; each step costs one double backward pass. The extreme Ritz
    values converge first: the largest is usually accurate within 20 steps, the
    smallest (of a spectrum crowded near zero) is a rougher estimate. With
    ``iters >= n`` parameters the values are exact.

    The model is evaluated in eval mode, so BatchNorm uses its running statistics:
    in train mode the batch statistics would make the loss of one sample depend on
    the others and the Hessian would not be that of a fixed function. The mode is
    restored afterwards; parameters and ``.grad`` are not touched.

    Args:
        model: the network.
        data: ``(inputs, targets)``.
        loss: ``(output, target) -> scalar tensor``.
        iters: Lanczos steps.
        max_samples: use the first this many samples (``None``: all).
        seed: seed of the Lanczos start vector.

    Returns:
        :class:`Curvature` with ``stability_lr = 2 / largest``.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(1, 1, bias=False)
        >>> x = torch.tensor([[1.0], [3.0]]); y = torch.zeros(2, 1)
        >>> c = curvature(model, (x, y), torch.nn.MSELoss())  # L = mean((w x)^2), L'' = 2 mean(x^2)
        >>> round(c.largest, 4), round(c.stability_lr, 4)
        (10.0, 0.2)
    """
    validate(
        "curvature",
        {"iters": iters, "max_samples": max_samples},
        {"iters": _ITERS, "max_samples": (_ITERS, _NONE)},
    )
    x, y = data
    if max_samples is not None:
        x, y = x[:max_samples], y[:max_samples]
    was_training = model.training
    model.eval()
    try:
        f, theta0 = flat_loss(model, (x, y), loss)
        values = hessian_eigenvalues(f, theta0, iters=iters, seed=seed)
        point = theta0.clone().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(f(point), point)
    finally:
        model.train(was_training)
    largest, smallest = float(values[-1]), float(values[0])
    stability = 2.0 / largest if largest > 0 else math.inf
    return Curvature(largest, smallest, stability, int(values.numel()), float(grad.norm()))
