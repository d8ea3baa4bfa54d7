"""Small problems shared by the train tests."""

from __future__ import annotations

import torch


def regression(n: int = 40, d: int = 3, *, seed: int = 0, dtype: torch.dtype = torch.float32):
    """A noisy linear-regression problem ``y = X w + b + noise``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=dtype)
    w = torch.randn(d, 1, generator=g, dtype=dtype)
    y = x @ w + 0.5 + 0.1 * torch.randn(n, 1, generator=g, dtype=dtype)
    return x, y


def mlp(d: int = 3, *, seed: int = 0, dropout: float = 0.0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(d, 8), torch.nn.Tanh(), torch.nn.Dropout(dropout), torch.nn.Linear(8, 1)
    )
