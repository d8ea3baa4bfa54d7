"""The learning-rate sensitivity figure of docs/tuning.md: every seed optimizer on digits.

Each optimizer gets the same study: 16 trials over its lr range (log-uniform, the
table of descend.tune.spaces), 3 epochs, seed 0, no pruning (every trial's final
value is known). Run: .venv/bin/python scripts/tune_sensitivity_figure.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from descend.report import png_bytes, sensitivity_figure
from descend.tune import tune

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")


def main() -> None:
    torch.set_num_threads(1)
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img/tune_sensitivity_digits.png")
    studies = {}
    for name in OPTIMIZERS:
        start = time.perf_counter()
        result = tune("digits", name, trials=16, epochs=3, pruner="none", seed=0)
        studies[name] = result.trials
        lr = result.best_params["lr"]
        print(
            f"{name:9s} best val_accuracy {result.best_value:.4f} at lr {lr:.3g} "
            f"({time.perf_counter() - start:.0f} s)"
        )
    fig = sensitivity_figure(
        studies, metric="val_accuracy", title="digits: 16 trials each, 3 epochs"
    )
    out.write_bytes(png_bytes(fig))
    print(out)


if __name__ == "__main__":
    main()
