"""Linear regression with two parameters, slope and intercept: a loss surface one can draw.

The lessons on batch size and schedules train ``nn.Linear(1, 1)`` with descend's own
loop (:func:`descend.train.fit`: ``batch_size=None`` is batch gradient descent, ``1``
stochastic, ``k`` mini-batch) and record the two parameters after every update.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from descend.train import fit
from descend.train.callback import Callback
from descend.train.state import TrainState

N_SAMPLES = 64
BATCH_SIZES = (1, 2, 4, 8, 16, 32, N_SAMPLES)  # N_SAMPLES: the whole set, batch descent
START = (-1.0, 3.0)  # (slope, intercept), away from the optimum near (2, -1)
DOMAIN = ((-2.0, 4.0), (-3.0, 4.0))


@functools.lru_cache(maxsize=1)
def samples() -> tuple[torch.Tensor, torch.Tensor]:
    """``N_SAMPLES`` points of y = 2x − 1 + noise, x ~ N(0, 1), fixed by seed 0."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N_SAMPLES, 1, generator=g)
    y = 2.0 * x - 1.0 + 0.5 * torch.randn(N_SAMPLES, 1, generator=g)
    return x, y


def loss_grid(points: int = 61) -> tuple[list[float], list[float], list[list[float]]]:
    """The mean squared error over a (slope, intercept) grid: ``(w, b, z[b][w])``."""
    x, y = samples()
    w = torch.linspace(*DOMAIN[0], points)
    b = torch.linspace(*DOMAIN[1], points)
    pred = w[None, :, None] * x[:, 0][None, None, :] + b[:, None, None]  # (b, w, samples)
    z = (pred - y[:, 0]).pow(2).mean(-1)
    return w.tolist(), b.tolist(), z.tolist()


class _Recorder(Callback):
    """Keeps (slope, intercept) after every update."""

    def __init__(self, model: nn.Linear) -> None:
        self.model = model
        self.points = [self._now()]

    def _now(self) -> tuple[float, float]:
        return float(self.model.weight.detach()), float(self.model.bias.detach())

    def on_step_end(self, state: TrainState) -> None:
        self.points.append(self._now())


def path_of(
    *,
    lr: float,
    batch_size: int | None,
    steps: int = 100,
    schedule: Callable[[int], float] | None = None,
) -> np.ndarray:
    """The (slope, intercept) path of ``steps`` SGD updates from :data:`START`, ``(steps + 1, 2)``."""
    model = nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(START[0])
        model.bias.fill_(START[1])
    recorder = _Recorder(model)
    full = batch_size is None or batch_size >= N_SAMPLES
    fit(
        model,
        samples(),
        nn.functional.mse_loss,
        "sgd",
        optimizer_options={"lr": lr},
        batch_size=None if full else batch_size,
        max_steps=steps,
        schedule=schedule,
        callbacks=[recorder],
        seed=0,
        progress=False,
        eval_train=False,
        track_grad_norm=False,
    )
    return np.array(recorder.points)
