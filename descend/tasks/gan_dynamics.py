"""The GAN under several update rules: the recipes, a run of each, and snapshots of its samples.

Every recipe is a descend optimizer over both players' parameters, stepped once per
batch on the task's summed loss, so each is a *simultaneous* update (see
:mod:`descend.tasks.gan`). They differ only in the update rule:

- ``simultaneous_gd``: plain gradient descent, lr 0.01: in 40 epochs it does not fit
  (a wide cloud over the ring, few modes);
- ``adam_beta1_0.9``: Adam with the usual betas (0.9, 0.999), lr 1e-3;
- ``adam_beta1_0.5``: the GAN recipe of Radford et al. (2016), betas (0.5, 0.999),
  lr 1e-3 — the task's default;
- ``optimistic_adam``: :func:`~descend.optim.optimism` before Adam (betas (0.5, 0.999)):
  Adam fed :math:`2 g_t - g_{t-1}` (Daskalakis et al., 2018), lr 1e-3;
- ``adam_lr_3e-2``: Adam (0.9, 0.999) at lr 3e-2, too fast — the stated bad recipe: the
  generator collapses to a narrow cloud that jumps between modes (``tests/tasks/test_task_gan.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from descend.optim import Optimizer, chain, optimism, scale_by_adam, scale_by_lr
from descend.tasks.gan import GAN, gan, sample
from descend.train import Callback, History, fit
from descend.train.state import TrainState


@dataclass(frozen=True)
class Recipe:
    """An update rule for both players: how to build it, and its hyperparameters."""

    label: str
    build: Callable[[nn.Module], torch.optim.Optimizer]


def _adam(lr: float, beta1: float, *, optimistic: bool = False) -> Callable[[nn.Module], Any]:
    parts = (optimism(),) if optimistic else ()
    rule = chain(*parts, scale_by_adam(), scale_by_lr())
    return lambda m: Optimizer(m.parameters(), rule, lr=lr, betas=(beta1, 0.999))


RECIPES: dict[str, Recipe] = {
    "simultaneous_gd": Recipe(
        "simultaneous GD, lr 0.01", lambda m: Optimizer(m.parameters(), scale_by_lr(), lr=0.01)
    ),
    "adam_beta1_0.9": Recipe("Adam β1=0.9, lr 1e-3", _adam(1e-3, 0.9)),
    "adam_beta1_0.5": Recipe("Adam β1=0.5, lr 1e-3 (default)", _adam(1e-3, 0.5)),
    "optimistic_adam": Recipe("optimistic Adam β1=0.5, lr 1e-3", _adam(1e-3, 0.5, optimistic=True)),
    "adam_lr_3e-2": Recipe("Adam β1=0.9, lr 3e-2", _adam(3e-2, 0.9)),
}


class SampleSnapshots(Callback):
    """Generated points every ``every`` epochs (and after the last): ``snapshots[epoch] = (n, 2)``.

    The latent draws come from their own generator (``seed``), the same at every
    snapshot, so consecutive pictures show the generator moving, not new noise.
    """

    def __init__(self, every: int = 5, n: int = 512, seed: int = 0) -> None:
        self.every, self.n, self.seed = every, n, seed
        self.snapshots: dict[int, Tensor] = {}

    def on_fit_start(self, state: TrainState) -> None:
        self.snapshots[0] = sample(state.model, self.n, seed=self.seed)  # type: ignore[arg-type]

    def on_epoch_end(self, state: TrainState) -> None:
        if state.epoch % self.every == 0 or state.epoch == state.max_epochs:
            self.snapshots[state.epoch] = sample(state.model, self.n, seed=self.seed)  # type: ignore[arg-type]


def run_recipe(
    name: str, *, seed: int = 0, epochs: int | None = None, every: int = 5
) -> tuple[History, SampleSnapshots, GAN]:
    """Train the ``gan`` task's model with recipe ``name`` (a key of :data:`RECIPES`).

    Returns:
        The history (epoch rows with ``val_modes``, ``val_quality``, ``val_sliced_w``),
        the snapshots callback and the trained model.
    """
    if name not in RECIPES:
        raise ValueError(f"Unknown GAN recipe {name!r}; choose one of {', '.join(RECIPES)}.")
    task = gan()
    data, model = task.data(seed), task.model(seed)
    snapshots = SampleSnapshots(every=every, seed=seed)
    history = fit(
        model,
        data.train,
        task.loss,
        RECIPES[name].build(model),
        epochs=epochs or task.epochs,
        batch_size=task.batch_size,
        val_data=data.val,
        metrics=task.metrics,
        seed=seed,
        eval_train=False,
        progress=False,
        callbacks=[snapshots],
    )
    return history, snapshots, model  # type: ignore[return-value]
