"""``mnist1d``: the MNIST-1D benchmark, generated offline, with a small 1-D CNN.

The dataset is built by ``mnist1d.data.make_dataset(get_dataset_args())``, the
package's own generator with its default (published) arguments. Its
``get_dataset`` is never called: that path downloads a pickle from GitHub.
"""

from __future__ import annotations

import functools
import random

import numpy as np
import torch
from torch import nn

from descend.tasks._common import accuracy, lr_table
from descend.tasks.digits import cross_entropy
from descend.tasks.task import Target, Task, TaskData

LENGTH = 40


@functools.cache
def _generated() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    # make_dataset reseeds the global `random` and NumPy generators; restore
    # them so generating the data does not change the caller's random streams.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        d = make_dataset(get_dataset_args())
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    arrays = (d["x"], d["y"], d["x_test"], d["y_test"])
    for a in arrays:
        a.setflags(write=False)
    return arrays


def _data(seed: int) -> TaskData:
    # The train/test split is the package's canonical one (seed 42 inside
    # mnist1d), so results compare with published numbers; ``seed`` only
    # changes model initialisation and batch order, not the data.
    x, y, x_test, y_test = _generated()

    def to_tensors(xs: np.ndarray, ys: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tensor(xs, dtype=torch.float32).unsqueeze(1), torch.tensor(
            ys, dtype=torch.long
        )

    return TaskData(
        train=to_tensors(x, y), val=to_tensors(x_test, y_test), meta={"seed_ignored": True}
    )


def _model() -> nn.Module:
    return nn.Sequential(
        nn.Conv1d(1, 32, 5, padding=2),  # (B, 32, 40)
        nn.ReLU(),
        nn.Conv1d(32, 32, 3, padding=1, stride=2),  # (B, 32, 20)
        nn.ReLU(),
        nn.Conv1d(32, 32, 3, padding=1, stride=2),  # (B, 32, 10)
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 10, 10),
    )


def mnist1d() -> Task:
    """Ten-class classification of 1-D signals of length 40 (4,000 train, 1,000 test)."""
    return Task(
        name="mnist1d",
        summary="classify 1-D digit signals of length 40 (10 classes)",
        data_source=(
            "generated offline by the mnist1d package (Greydanus, Apache-2.0): "
            "make_dataset(get_dataset_args()), canonical 4,000/1,000 split"
        ),
        model_summary="1-D CNN: 3 conv layers (ReLU, stride 2), linear (~9k params)",
        target=Target("val_accuracy", 0.8, "max"),
        epochs=12,
        batch_size=64,
        lrs=lr_table(3e-3, gd=0.1, sgd=0.05, momentum=0.02, nesterov=0.02, adagrad=0.02),
        default_optimizer="adam",
        measured="val_accuracy 0.876 (seeds 1, 2: 0.872, 0.887), at target from epoch 7",
        metrics={"accuracy": accuracy},
        make_data=_data,
        make_model=_model,
        loss_fn=cross_entropy,
    )
