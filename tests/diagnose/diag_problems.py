"""Small problems with known answers, shared by the diagnose tests."""

from __future__ import annotations

import torch
from torch import nn


def quadratic(
    n: int = 64, d: int = 4, *, seed: int = 0
) -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor], float]:
    """A linear model under MSE: a quadratic loss whose Hessian is ``2/N X^T X``.

    Returns ``(model, (X, y), lambda_max)``; the columns of X have different
    scales so the Hessian is not a multiple of the identity.
    """
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g) * torch.linspace(0.5, 2.0, d)
    y = X @ torch.randn(d, 1, generator=g)
    model = nn.Linear(d, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.randn(1, d, generator=g))
    H = 2.0 / n * (X.double().T @ X.double())
    return model, (X, y), float(torch.linalg.eigvalsh(H)[-1])
