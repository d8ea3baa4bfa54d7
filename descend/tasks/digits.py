"""``digits``: a small CNN with BatchNorm on scikit-learn's 8x8 handwritten digits."""

from __future__ import annotations

from torch import Tensor, nn

from descend.tasks._common import accuracy, digits_split, lr_table
from descend.tasks.task import Target, Task, TaskData


def cross_entropy(output: Tensor, target: Tensor) -> Tensor:
    """Softmax cross-entropy on class logits (mean over the batch)."""
    return nn.functional.cross_entropy(output, target)


def _data(seed: int) -> TaskData:
    x_tr, y_tr, x_va, y_va = digits_split(seed)
    # (N, 64) -> (N, 1, 8, 8): one grey channel for the convolutions.
    return TaskData(
        train=(x_tr.view(-1, 1, 8, 8), y_tr),
        val=(x_va.view(-1, 1, 8, 8), y_va),
        meta={"classes": tuple(range(10))},
    )


def _model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),  # (B, 16, 8, 8)
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),  # (B, 32, 8, 8)
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),  # (B, 32, 4, 4)
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 10),
    )


def digits() -> Task:
    """Ten-class image classification on 1,797 8x8 digits."""
    return Task(
        name="digits",
        summary="classify 8x8 handwritten digits (10 classes)",
        data_source=(
            "scikit-learn's bundled optical-recognition digits (UCI, 1,797 images, CC BY 4.0); "
            "80/20 split by seed"
        ),
        model_summary="CNN: 2 x (conv3x3 + BatchNorm + ReLU), max-pool, linear (10k params)",
        target=Target("val_accuracy", 0.95, "max"),
        epochs=5,
        batch_size=64,
        lrs=lr_table(3e-3, gd=0.1, sgd=0.05, momentum=0.02, nesterov=0.02, adagrad=0.02),
        default_optimizer="adam",
        measured="val_accuracy 0.986, at target from epoch 2",
        metrics={"accuracy": accuracy},
        make_data=_data,
        make_model=_model,
        loss_fn=cross_entropy,
    )
