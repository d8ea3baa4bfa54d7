"""Smooth test functions with few stationary points: the bowl, the banana, Beale, Himmelblau, the camel.

Each function maps ``(..., dim) -> (...)``; the math is in the docstring.
"""

from __future__ import annotations

import torch
from torch import Tensor


def quadratic(x: Tensor, *, condition: float = 10.0) -> Tensor:
    """An axis-aligned quadratic bowl whose Hessian has condition number ``condition``.

    .. math::
        f(x) = \\tfrac12 \\sum_{i=1}^{n} \\lambda_i x_i^2, \\qquad
        \\lambda_i = \\kappa^{(i-1)/(n-1)},

    so :math:`\\lambda_1 = 1`, :math:`\\lambda_n = \\kappa`; gradient descent is
    stable for :math:`\\eta < 2/\\kappa` and needs about :math:`\\kappa` steps per
    decade of error along the flat axis.

    Example:
        >>> import torch
        >>> float(quadratic(torch.tensor([1.0, 1.0]), condition=10.0))
        5.5
    """
    n = x.shape[-1]
    i = torch.arange(n, dtype=x.dtype, device=x.device)
    lam = condition ** (i / max(n - 1, 1))
    return 0.5 * (lam * x**2).sum(-1)


def rosenbrock(x: Tensor) -> Tensor:
    """The Rosenbrock banana valley in any dimension :math:`n \\ge 2`.

    .. math::
        f(x) = \\sum_{i=1}^{n-1} 100\\,(x_{i+1} - x_i^2)^2 + (1 - x_i)^2,

    with global minimum :math:`f(1, \\dots, 1) = 0` (for :math:`4 \\le n \\le 7`
    there is also a local minimum near :math:`(-1, 1, \\dots, 1)`).

    Example:
        >>> import torch
        >>> float(rosenbrock(torch.tensor([1.0, 1.0, 1.0])))
        0.0
    """
    a, b = x[..., :-1], x[..., 1:]
    return (100.0 * (b - a**2) ** 2 + (1.0 - a) ** 2).sum(-1)


def beale(x: Tensor) -> Tensor:
    """Beale's function: flat valleys and sharp walls.

    .. math::
        f(x, y) = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2,

    global minimum :math:`f(3, 0.5) = 0`, saddle point at :math:`(0, 1)`.

    Example:
        >>> import torch
        >>> float(beale(torch.tensor([3.0, 0.5])))
        0.0
    """
    u, v = x[..., 0], x[..., 1]
    return (1.5 - u + u * v) ** 2 + (2.25 - u + u * v**2) ** 2 + (2.625 - u + u * v**3) ** 2


def himmelblau(x: Tensor) -> Tensor:
    """Himmelblau's function: four global minima of value 0, one maximum, four saddles.

    .. math::
        f(x, y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2

    Example:
        >>> import torch
        >>> float(himmelblau(torch.tensor([3.0, 2.0])))
        0.0
    """
    u, v = x[..., 0], x[..., 1]
    return (u**2 + v - 11.0) ** 2 + (u + v**2 - 7.0) ** 2


def six_hump_camel(x: Tensor) -> Tensor:
    """The six-hump camel: six local minima, two of them global.

    .. math::
        f(x, y) = \\left(4 - 2.1x^2 + \\tfrac{x^4}{3}\\right) x^2 + xy + (-4 + 4y^2)\\, y^2,

    global minima :math:`f(\\pm 0.0898, \\mp 0.7127) \\approx -1.0316`.

    Example:
        >>> import torch
        >>> round(float(six_hump_camel(torch.tensor([0.0898420131, -0.712656403]))), 4)
        -1.0316
    """
    u, v = x[..., 0], x[..., 1]
    return (4.0 - 2.1 * u**2 + u**4 / 3.0) * u**2 + u * v + (-4.0 + 4.0 * v**2) * v**2
