"""Shampoo's eigenbasis, as SOAP keeps it: per-dimension statistics :math:`GG_k`, their
eigenvectors :math:`Q_k`, and rotating a tensor into and out of that basis.

A tensor of shape :math:`(n_1, \\dots, n_d)` is rotated one dimension at a time:
``tensordot`` over its first dimension with :math:`Q_k` moves that dimension, rotated, to
the end, so after :math:`d` contractions the dimensions are back in order. A dimension
larger than ``max_precond_dim`` (or a vector's, unless ``precondition_1d``) has no
:math:`Q_k` (identity: only moved to the end). Plain functions of tensors, in the order
of operations of the authors' ``soap.py`` (Vyas et al., https://github.com/nikhilvyas/SOAP),
so that both compute the same numbers.
"""

from __future__ import annotations

import math
from itertools import chain
from typing import Any

import torch
from torch import Tensor

Basis = list[Tensor | None]


def merged_shape(shape: tuple[int, ...], max_dim: int) -> list[int]:
    """Consecutive dimensions multiplied together while the product stays within
    ``max_dim`` (the reference's ``merge_dims``): ``(64, 3, 3, 3)`` -> ``[64, 27]``."""
    merged: list[int] = []
    current = 1
    for size in shape:
        if current * size > max_dim:
            if current > 1:
                merged.append(current)
                current = size
            else:
                merged.append(size)
                current = 1
        else:
            current *= size
    if current > 1 or not merged:
        merged.append(current)
    return merged


def to_work(x: Tensor, hp: Any) -> Tensor:
    """``x`` in the shape the preconditioner sees: channels first, then merged when
    ``merge_dims`` (a view or a copy; :func:`from_work` undoes it)."""
    if not hp["merge_dims"]:
        return x
    if hp["data_format"] == "channels_last" and x.dim() == 4:
        x = x.permute(0, 3, 1, 2)
    return x.reshape(merged_shape(tuple(x.shape), hp["max_precond_dim"]))


def from_work(x: Tensor, shape: torch.Size, hp: Any) -> Tensor:
    """The inverse of :func:`to_work` for a tensor of the parameter's ``shape``."""
    if not hp["merge_dims"]:
        return x
    if hp["data_format"] == "channels_last" and len(shape) == 4:
        return x.reshape(shape[0], shape[3], shape[1], shape[2]).permute(0, 2, 3, 1)
    return x.reshape(shape)


def rotate(x: Tensor, basis: Basis, *, back: bool = False) -> Tensor:
    r"""``x`` in the eigenbasis, :math:`x \times_1 Q_1^\top \cdots \times_d Q_d^\top`, or
    (``back``) out of it, :math:`x \times_1 Q_1 \cdots \times_d Q_d`."""
    for q in basis:
        if q is None:
            x = x.permute(*range(1, x.dim()), 0)
        else:
            x = torch.tensordot(x, q, dims=([0], [1 if back else 0]))
    return x


def statistics(g: Tensor, hp: Any) -> Basis:
    """Zero :math:`GG_k`, one per dimension of the working shape that is preconditioned."""
    dtype = torch.promote_types(g.dtype, torch.float32)
    if g.dim() == 1:
        sizes = [g.shape[0] if hp["precondition_1d"] else math.inf]
    else:
        sizes = list(to_work(g, hp).shape)
    return [g.new_zeros((n, n), dtype=dtype) if n <= hp["max_precond_dim"] else None for n in sizes]


def accumulate(stats: Basis, g: Tensor, weight: float) -> None:
    r""":math:`GG_k \leftarrow \beta GG_k + (1-\beta)\, G_{(k)} G_{(k)}^\top`, where
    :math:`G_{(k)}` is ``g`` unfolded along dimension :math:`k` and :math:`1-\beta` is
    ``weight``."""
    if g.dim() == 1:
        if stats[0] is not None:
            stats[0].lerp_((g.unsqueeze(1) @ g.unsqueeze(0)).to(stats[0].dtype), weight)
        return
    for k, s in enumerate(stats):
        if s is not None:
            others = [*chain(range(k), range(k + 1, g.dim()))]
            s.lerp_(torch.tensordot(g, g, dims=[others, others]).to(s.dtype), weight)


def eigenvectors(stats: Basis) -> Basis:
    """Each :math:`GG_k`'s eigenvectors, largest eigenvalue first (``eigh``)."""
    out: Basis = []
    for s in stats:
        if s is None:
            out.append(None)
            continue
        # The reference's 1e-30 I keeps an all-zero statistic (a dead row) decomposable.
        eye = torch.eye(s.shape[0], device=s.device, dtype=s.dtype)
        out.append(torch.flip(torch.linalg.eigh(s + 1e-30 * eye)[1], [1]))
    return out


def refresh(stats: Basis, basis: Basis, second: Tensor) -> tuple[Basis, Tensor]:
    r"""One step of power iteration from the current basis, :math:`Q_k \leftarrow
    \operatorname{qr}(GG_k Q_k)`, with the columns first sorted by their estimated
    eigenvalues :math:`\operatorname{diag}(Q_k^\top GG_k Q_k)`, descending; ``second``
    (the second moment, in the working shape) is permuted along with them."""
    out: Basis = []
    for k, (s, q) in enumerate(zip(stats, basis, strict=True)):
        if s is None or q is None:
            out.append(None)
            continue
        order = torch.argsort(torch.diag(q.T @ s @ q), descending=True)
        second = second.index_select(k, order)
        out.append(torch.linalg.qr(s @ q[:, order])[0])
    return out, second
