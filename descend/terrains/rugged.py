"""Functions with many local minima (Rastrigin, Ackley) and a plateau around a single well."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def rastrigin(x: Tensor, *, a: float = 10.0) -> Tensor:
    """Rastrigin's function: a bowl covered by a grid of local minima near the integers.

    .. math::
        f(x) = a n + \\sum_{i=1}^{n} \\left( x_i^2 - a \\cos(2\\pi x_i) \\right),

    global minimum :math:`f(0) = 0`.

    Example:
        >>> import torch
        >>> float(rastrigin(torch.zeros(2)))
        0.0
    """
    n = x.shape[-1]
    return a * n + (x**2 - a * torch.cos(2.0 * math.pi * x)).sum(-1)


def ackley(x: Tensor) -> Tensor:
    """Ackley's function: a nearly flat, rippled outer region and a deep funnel at the origin.

    .. math::
        f(x) = -20 \\exp\\!\\Big(-0.2 \\sqrt{\\tfrac1n \\textstyle\\sum x_i^2}\\Big)
               - \\exp\\!\\Big(\\tfrac1n \\textstyle\\sum \\cos 2\\pi x_i\\Big) + 20 + e,

    global minimum :math:`f(0) = 0`.

    Example:
        >>> import torch
        >>> abs(float(ackley(torch.zeros(2)))) < 1e-6
        True
    """
    n = x.shape[-1]
    # The 1e-30 keeps sqrt differentiable at the origin (autograd would give 0 * inf = nan)
    # while changing f(0) by about 4e-15.
    r = torch.sqrt((x**2).sum(-1) / n + 1e-30)
    c = torch.cos(2.0 * math.pi * x).sum(-1) / n
    return -20.0 * torch.exp(-0.2 * r) - torch.exp(c) + 20.0 + math.e


def plateau(x: Tensor, *, width: float = 1.0) -> Tensor:
    """A Gaussian well in a flat plateau: far from the well the gradient all but vanishes.

    .. math::
        f(x) = 1 - \\exp\\!\\left(-\\frac{\\lVert x \\rVert^2}{2 w^2}\\right),
        \\qquad \\lVert \\nabla f \\rVert = \\frac{r}{w^2} e^{-r^2 / 2w^2},

    global minimum :math:`f(0) = 0`. Gradient descent crawls across the plateau;
    methods that normalise the gradient (Adam, RMSprop) cross it at speed ~lr.

    Example:
        >>> import torch
        >>> float(plateau(torch.zeros(2)))
        0.0
    """
    return 1.0 - torch.exp(-(x**2).sum(-1) / (2.0 * width**2))
