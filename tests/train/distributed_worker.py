"""One training run of the distributed tests: ``torchrun ... distributed_worker.py SPEC.json``,
or :func:`train` called in the test's own process for the one-process reference.

SPEC holds ``out`` (a file rank 0 writes: the step and epoch rows and the final
parameters) and optionally ``strategy``, ``optimizer``, ``options``, ``epochs``,
``checkpoint_dir``, ``checkpoint_every``, ``resume``, ``clip``, ``kill`` ([rank, step]: that
rank SIGKILLs itself after that step, in the first attempt only) and ``hang`` ([rank,
step]: that rank sleeps there).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

import torch
from torch import nn

import descend
from descend.train import Callback, fit
from descend.train.distributed import full_model_state, is_main_process


def data() -> tuple[torch.Tensor, torch.Tensor]:
    """50 samples: with batch_size 16 the last batch holds 2, one per rank."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 6, generator=g, dtype=torch.float64)
    return x, torch.tanh(x @ torch.randn(6, 3, generator=g, dtype=torch.float64))


def model() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).double()


class _Fault(Callback):
    def __init__(self, kill: list[int] | None, hang: list[int] | None) -> None:
        self.kill, self.hang = kill, hang
        self.rank = int(os.environ.get("RANK", "0"))

    def on_step_end(self, state: Any) -> None:
        first = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
        if self.kill and first and [self.rank, state.step] == self.kill:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.hang and [self.rank, state.step] == self.hang:
            time.sleep(3600)


def train(spec: dict[str, Any]) -> None:
    net = model()
    history = fit(
        net,
        data(),
        nn.MSELoss(),
        spec.get("optimizer", "adamw"),
        optimizer_options=spec.get("options", {"lr": 0.01}),
        epochs=spec.get("epochs", 3),
        batch_size=16,
        val_data=data(),
        seed=3,
        clip_grad_norm=spec.get("clip"),
        checkpoint_dir=spec.get("checkpoint_dir"),
        checkpoint_every=spec.get("checkpoint_every"),
        resume=spec.get("resume", False),
        callbacks=[_Fault(spec.get("kill"), spec.get("hang"))],
        progress=False,
        strategy=spec.get("strategy"),
    )
    params = full_model_state(net)
    if is_main_process():
        torch.save({"steps": history.steps, "epochs": history.epochs, "params": params}, spec["out"])


if __name__ == "__main__":
    torch.set_num_threads(1)
    with open(sys.argv[1], encoding="utf-8") as f:
        train(json.load(f))
