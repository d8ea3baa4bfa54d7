"""Batch gradient descent, stochastic and mini-batch as one setting: which samples each update sees.

``batch_size=None`` is batch gradient descent (every update sees the whole
training set, one update per epoch), ``1`` is stochastic gradient descent (``N``
updates per epoch) and ``k`` is mini-batch (``ceil(N / k)`` updates per epoch, the
last batch holding the remainder).

The order of an epoch is a pure function of ``(seed, epoch)``: a fresh
``torch.Generator`` draws the permutation, so a resumed run sees the same order
as an uninterrupted one without carrying generator state around.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import Dataset, TensorDataset, default_collate

from descend._validation import InvalidParameterError

Data = tuple[torch.Tensor, torch.Tensor] | Dataset[Any]

# Evaluation needs no gradients, so it can use chunks larger than training batches;
# this bounds the memory of one evaluation forward pass.
EVAL_CHUNK = 4096


def epoch_seed(seed: int, epoch: int) -> int:
    """The data-order seed of a 1-based ``epoch``: distinct for every (seed, epoch) pair in practice."""
    return (seed * 1_000_003 + epoch) % (2**63)


class Batches:
    """A training or validation set cut into batches of one size.

    Tensor data ``(X, y)`` is moved to ``device`` once and indexed directly (no
    per-sample overhead); any other dataset is indexed per sample and collated
    with ``torch.utils.data.default_collate``.
    """

    def __init__(
        self, data: Data, batch_size: int | None, device: torch.device, *, name: str = "data"
    ) -> None:
        self.device = device
        self._tensors: tuple[torch.Tensor, torch.Tensor] | None = None
        self._dataset: Dataset[Any] | None = None
        if isinstance(data, TensorDataset) and len(data.tensors) == 2:
            data = (data.tensors[0], data.tensors[1])
        if isinstance(data, tuple):
            if len(data) != 2 or not all(isinstance(t, torch.Tensor) for t in data):
                raise InvalidParameterError(
                    f"The {name!r} parameter of fit must be an (X, y) tuple of tensors or a "
                    f"Dataset. Got a tuple of {len(data)} items of types "
                    f"{', '.join(type(t).__name__ for t in data)} instead."
                )
            x, y = data
            if len(x) != len(y):
                raise InvalidParameterError(
                    f"The {name!r} parameter of fit must hold as many targets as inputs. "
                    f"Got {len(x)} inputs and {len(y)} targets instead."
                )
            self._tensors = (x.to(device), y.to(device))
            self.n = len(x)
        elif isinstance(data, Dataset) and hasattr(data, "__len__"):
            self._dataset = data
            self.n = len(data)  # type: ignore[arg-type]
        else:
            raise InvalidParameterError(
                f"The {name!r} parameter of fit must be an (X, y) tuple of tensors or a "
                f"Dataset with a length. Got {type(data).__name__} instead."
            )
        if self.n == 0:
            raise InvalidParameterError(
                f"The {name!r} parameter of fit must hold at least one sample. Got 0 instead."
            )
        self.size = self.n if batch_size is None else min(int(batch_size), self.n)
        self.n_batches = math.ceil(self.n / self.size)

    def order(self, seed: int, epoch: int, shuffle: bool) -> torch.Tensor | None:
        """The sample permutation of an epoch, or ``None`` for the natural order.

        A full batch is never permuted: every update sees the same set.
        """
        if not shuffle or self.n_batches == 1:
            return None
        g = torch.Generator().manual_seed(epoch_seed(seed, epoch))
        order = torch.randperm(self.n, generator=g)
        return order.to(self.device) if self._tensors is not None else order

    def batch(
        self, order: torch.Tensor | None, b: int, *, part: tuple[int, int] | None = None
    ) -> tuple[Any, Any]:
        """The inputs and targets of batch ``b`` (0-based) under ``order``.

        ``part=(i, k)`` keeps every ``k``-th sample of the batch from its ``i``-th: one
        rank's share of a global batch (``descend.train.distributed``).
        """
        start, stop = b * self.size, min((b + 1) * self.size, self.n)
        if self._tensors is not None:
            x, y = self._tensors
            if part is not None:
                idx = (
                    torch.arange(start, stop, device=x.device)
                    if order is None
                    else order[start:stop]
                )
                idx = idx[part[0] :: part[1]]
                return x[idx], y[idx]
            if order is None:
                return (x, y) if self.n_batches == 1 else (x[start:stop], y[start:stop])
            idx = order[start:stop]
            return x[idx], y[idx]
        indices = range(start, stop) if order is None else order[start:stop].tolist()
        if part is not None:
            indices = indices[part[0] :: part[1]]
        return self._collate(indices)

    def chunks(self) -> Iterator[tuple[Any, Any]]:
        """The whole set in natural order, in chunks of at least the batch size (for evaluation)."""
        step = max(self.size, EVAL_CHUNK)
        for start in range(0, self.n, step):
            stop = min(start + step, self.n)
            if self._tensors is not None:
                x, y = self._tensors
                yield x[start:stop], y[start:stop]
            else:
                yield self._collate(range(start, stop))

    def _collate(self, indices: Any) -> tuple[Any, Any]:
        assert self._dataset is not None
        x, y = default_collate([self._dataset[i] for i in indices])
        return _to(x, self.device), _to(y, self.device)


def _to(value: Any, device: torch.device) -> Any:
    return value.to(device) if isinstance(value, torch.Tensor) else value
