"""The matrix optimizers' benchmark rows (Muon): realistic matrix shapes, and torch's
class, which has one execution path."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def matrix_shapes(n: int) -> list[tuple[int, ...]]:
    """Weight matrices of transformer blocks of width 512, about ``n`` parameters in all.

    A block holds the four attention projections ``(512, 512)`` and the MLP's
    ``(2048, 512)`` and ``(512, 2048)`` (3.1M parameters); ``10M`` gives 3 blocks, 18
    matrices (9.4M parameters). Muon's step is matrix products, so the shapes (square,
    tall, wide) matter as much as the count; its vectors (biases, norms) go to AdamW.
    Below one block, a ``(512, n // 512)`` matrix.
    """
    width = 512
    block = [(width, width)] * 4 + [(4 * width, width), (width, 4 * width)]
    per_block = sum(a * b for a, b in block)
    blocks = round(n / per_block)
    if blocks == 0:
        return [(width, max(1, n // width))]
    return block * blocks


def torch_muon(params: list[Tensor], impl: str) -> Any:
    # torch.optim.Muon has a single (for-loop) implementation and no foreach flag.
    return torch.optim.Muon(params, lr=0.02)
