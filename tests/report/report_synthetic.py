"""Synthetic runs shaped like the tasks layer's output, built without training anything."""

from __future__ import annotations

import math
import random
from typing import Any

TASK: dict[str, Any] = {
    "name": "digits",
    "summary": "8x8 handwritten digits, 10 classes",
    "data_source": "scikit-learn load_digits (ships with the package)",
    "model_summary": "MLP 64-64-10",
    "target": {"metric": "val_accuracy", "value": 0.9, "mode": "max"},
}


def make_run(
    optimizer: str, seed: int, *, lr: float, rate: float, epochs: int = 3, steps_per_epoch: int = 30
) -> dict[str, Any]:
    """One run whose loss decays like exp(-rate * step) with seed-dependent noise."""
    rng = random.Random(f"{optimizer}-{seed}")
    steps, epoch_records = [], []
    reached = None
    for step in range(1, epochs * steps_per_epoch + 1):
        epoch = (step - 1) // steps_per_epoch + 1
        loss = 2.3 * math.exp(-rate * step) * (1 + 0.2 * rng.random()) + 0.01
        steps.append(
            {
                "step": step,
                "epoch": epoch,
                "loss": loss,
                "lr": lr * (1 - step / 200),
                "grad_norm": loss * 0.5,
                "time": step * 0.01,
            }
        )
        if step % steps_per_epoch == 0:
            acc = 1 - 0.9 * math.exp(-rate * step) - 0.01 * rng.random()
            if reached is None and acc >= TASK["target"]["value"]:
                reached = step
            epoch_records.append(
                {
                    "epoch": epoch,
                    "step": step,
                    "time": step * 0.01,
                    "train_loss": loss,
                    "val_loss": loss * 1.1,
                    "train_accuracy": acc + 0.01,
                    "val_accuracy": acc,
                }
            )
    accs = [e["val_accuracy"] for e in epoch_records]
    return {
        "optimizer": optimizer,
        "seed": seed,
        "lr": lr,
        "lr_source": "task default table",
        "config": {"epochs": epochs, "batch_size": 32},
        "history": {
            "steps": steps,
            "epochs": epoch_records,
            "stop_reason": f"finished {epochs} epochs",
            "stop_success": True,
        },
        "summary": {
            "final": {
                k: v for k, v in epoch_records[-1].items() if k not in ("epoch", "step", "time")
            },
            "best": {
                "val_accuracy": max(accs),
                "val_loss": min(e["val_loss"] for e in epoch_records),
            },
            "steps_to_target": reached,
            "time_to_target": None if reached is None else reached * 0.01,
            "seconds_per_step": 0.01,
            "steps": len(steps),
            "time": len(steps) * 0.01,
        },
    }


def synthetic_runs() -> list[dict[str, Any]]:
    """2 optimizers x 2 seeds; adam reaches the target, sgd does not."""
    return [
        make_run("sgd", 0, lr=0.1, rate=0.005),
        make_run("sgd", 1, lr=0.1, rate=0.006),
        make_run("adam", 0, lr=0.001, rate=0.04),
        make_run("adam", 1, lr=0.001, rate=0.03),
    ]


def synthetic_config() -> dict[str, Any]:
    """What a ``descend compare`` would have asked for."""
    return {"command": "compare", "epochs": 3, "batch_size": 32, "schedule": "constant"}
