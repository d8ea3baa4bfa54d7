"""``logreg``: logistic regression on scikit-learn's bundled breast-cancer set."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from descend.tasks._common import binary_accuracy, lr_table, sklearn_dataset, split, standardize
from descend.tasks.task import Target, Task, TaskData

N_FEATURES = 30


def _bce(output: Tensor, target: Tensor) -> Tensor:
    return nn.functional.binary_cross_entropy_with_logits(output, target)


def _data(seed: int) -> TaskData:
    x_np, y_np = sklearn_dataset("breast_cancer")
    x = torch.tensor(x_np, dtype=torch.float32)
    y = torch.tensor(y_np, dtype=torch.float32).unsqueeze(1)  # (N, 1), 1 = benign
    tr, va = split(len(y), 0.2, seed)
    x_tr, x_va = standardize(x[tr], x[va])
    return TaskData(
        train=(x_tr, y[tr]), val=(x_va, y[va]), meta={"classes": ("malignant", "benign")}
    )


def logreg() -> Task:
    """Binary logistic regression (one linear layer, sigmoid cross-entropy)."""
    return Task(
        name="logreg",
        summary="logistic regression: malignant vs benign tumours from 30 measurements",
        data_source=(
            "scikit-learn's bundled Wisconsin breast-cancer set (UCI, 569 samples, CC BY 4.0); "
            "80/20 split by seed, standardised with train statistics"
        ),
        model_summary=f"nn.Linear({N_FEATURES}, 1) + sigmoid cross-entropy",
        target=Target("val_accuracy", 0.95, "max"),
        epochs=20,
        batch_size=32,
        lrs=lr_table(0.01, gd=0.5, sgd=0.1, momentum=0.05, nesterov=0.05, adagrad=0.1),
        default_optimizer="adam",
        measured="val_accuracy 0.974, at target from epoch 4",
        metrics={"accuracy": binary_accuracy},
        make_data=_data,
        make_model=lambda: nn.Linear(N_FEATURES, 1),
        loss_fn=_bce,
    )
