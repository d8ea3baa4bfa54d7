"""Helpers shared by the task files: splits, standardisation, cached loads, metrics."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from torch import Tensor

from descend.optim.registry import OPTIMIZERS


def lr_table(base: float, **overrides: float) -> dict[str, float]:
    """A per-optimizer learning-rate table covering every registry name.

    Adaptive methods (adam, adamw, rmsprop) share ``base``; the plain and
    momentum methods need their own scale, given in ``overrides`` as
    ``gd=..., sgd=..., momentum=..., nesterov=..., adagrad=...``. Every other registry
    optimizer takes its entry's rule (:class:`~descend.optim.registry.OptimizerSpec`'s
    ``lr_relative_to``/``lr_factor``: Lion a third of AdamW's rate, Schedule-Free SGD ten
    times momentum's, muon AdamW's since its entry runs Muon at AdamW's update RMS, ...) or, when it has none, its own default (scale-free rates such as
    Prodigy's and Adadelta's 1.0); ``overrides`` may set any of them.
    """
    table = {"adam": base, "adamw": base, "rmsprop": base}
    table.update(overrides)
    for spec in OPTIMIZERS.values():
        if spec.name in table:
            continue
        if spec.lr_relative_to in table:
            table[spec.name] = spec.lr_factor * table[spec.lr_relative_to]
        elif spec.lr_relative_to is None and "lr" in spec.defaults:
            table[spec.name] = float(spec.defaults["lr"])
    return table


def split(n: int, val_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """A random train/validation index split of ``range(n)``, fixed by ``seed``."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    n_val = round(n * val_fraction)
    return perm[n_val:], perm[:n_val]


def standardize(train: Tensor, val: Tensor) -> tuple[Tensor, Tensor]:
    """Scale both sets with the *train* mean and std (the val set must not leak into them)."""
    mean = train.mean(0, keepdim=True)
    std = train.std(0, keepdim=True).clamp_min(1e-8)
    return (train - mean) / std, (val - mean) / std


@functools.cache
def sklearn_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A dataset bundled inside scikit-learn (read from its package files, never downloaded)."""
    from sklearn import datasets

    loaders: dict[str, Any] = {
        "digits": datasets.load_digits,
        "breast_cancer": datasets.load_breast_cancer,
    }
    bunch = loaders[name]()
    x, y = bunch.data, bunch.target
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def digits_split(seed: int, *, val_fraction: float = 0.2) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """scikit-learn's 8x8 digits scaled to [0, 1], split by ``seed``: (x_train, y_train, x_val, y_val)."""
    x_np, y_np = sklearn_dataset("digits")
    x = torch.tensor(x_np, dtype=torch.float32) / 16.0
    y = torch.tensor(y_np, dtype=torch.long)
    tr, va = split(len(y), val_fraction, seed)
    return x[tr], y[tr], x[va], y[va]


def accuracy(output: Tensor, target: Tensor) -> float:
    """Fraction of rows whose arg-max class equals the integer target."""
    return (output.argmax(-1) == target).float().mean().item()


def binary_accuracy(output: Tensor, target: Tensor) -> float:
    """Fraction of logits on the right side of 0 for 0/1 targets."""
    return ((output > 0).to(target.dtype) == target).float().mean().item()


def rmse(output: Tensor, target: Tensor) -> float:
    """Root mean squared error."""
    return (output - target).pow(2).mean().sqrt().item()
