"""Functions unbounded below whose only stationary point is a saddle."""

from __future__ import annotations

from torch import Tensor


def saddle(x: Tensor) -> Tensor:
    """The saddle :math:`f(x, y) = x^2 - y^2`: no minimum, a saddle at the origin.

    Its Hessian is :math:`\\mathrm{diag}(2, -2)`. Gradient descent started on the
    stable manifold :math:`y = 0` converges to the saddle; any :math:`y \\ne 0`
    grows like :math:`(1 + 2\\eta)^t` and escapes.

    Example:
        >>> import torch
        >>> float(saddle(torch.tensor([1.0, 2.0])))
        -3.0
    """
    return x[..., 0] ** 2 - x[..., 1] ** 2


def monkey_saddle(x: Tensor) -> Tensor:
    """The monkey saddle :math:`f(x, y) = x^3 - 3xy^2`: three valleys, a degenerate saddle.

    At the origin gradient and Hessian both vanish, so the second-order test cannot
    tell it from a minimum; near it the Hessian has eigenvalues :math:`\\pm 6r`.

    Example:
        >>> import torch
        >>> float(monkey_saddle(torch.tensor([1.0, 1.0])))
        -2.0
    """
    u, v = x[..., 0], x[..., 1]
    return u**3 - 3.0 * u * v**2
