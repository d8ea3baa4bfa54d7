"""One training run of the distributed tests: ``torchrun ... distributed_worker.py SPEC.json``,
or :func:`train` called in the test's own process for the one-process reference.

SPEC holds ``out`` (a file rank 0 writes: the step and epoch rows and the final
parameters) and optionally ``strategy``, ``optimizer``, ``options``, ``epochs``,
``checkpoint_dir``, ``checkpoint_every``, ``resume``, ``clip``, ``kill`` ([rank, step]: that
rank SIGKILLs itself after that step, in the first attempt only), ``hang`` ([rank,
step]: that rank sleeps there) and ``fail`` ([rank, step]: that rank raises there).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

import descend
from descend.train import Callback, fit
from descend.train.distributed import PeerFailure, full_model_state, is_main_process, leave


def data() -> tuple[torch.Tensor, torch.Tensor]:
    """50 samples: with batch_size 16 the last batch holds 2, one per rank."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 6, generator=g, dtype=torch.float64)
    return x, torch.tanh(x @ torch.randn(6, 3, generator=g, dtype=torch.float64))


def model() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).double()


class _Fault(Callback):
    def __init__(self, spec: dict[str, Any]) -> None:
        self.kill, self.hang, self.fail = spec.get("kill"), spec.get("hang"), spec.get("fail")
        self.out = spec["out"]
        self.rank = int(os.environ.get("RANK", "0"))

    def on_step_end(self, state: Any) -> None:
        first = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
        if self.kill and first and [self.rank, state.step] == self.kill:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.hang and [self.rank, state.step] == self.hang:
            Path(self.out + ".hung").write_text(repr(time.time()))
            time.sleep(3600)
        if self.fail and [self.rank, state.step] == self.fail:
            raise ValueError(f"injected failure on rank {self.rank} after step {state.step}")


def train(spec: dict[str, Any]) -> None:
    net = model()
    try:
        history = _fit(net, spec)
    except PeerFailure:
        Path(spec["out"] + ".failed").write_text(repr(time.time()))
        raise
    params = full_model_state(net)
    if is_main_process():
        torch.save(
            {"steps": history.steps, "epochs": history.epochs, "params": params}, spec["out"]
        )


def _fit(net: nn.Module, spec: dict[str, Any]) -> Any:
    return fit(
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
        callbacks=[_Fault(spec)],
        progress=False,
        strategy=spec.get("strategy"),
    )


def full_state(net: nn.Module, opt: torch.optim.Optimizer) -> dict[str, Any]:
    """Model and optimizer state as whole tensors on the CPU (collective under FSDP2)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    model_state, optim_state = get_state_dict(net, opt, options=options)
    return {"model": model_state, "optimizer": optim_state}


def round_trip(spec: dict[str, Any]) -> None:
    """``spec["phase"]``: "save" (FSDP2 on every rank: 3 AdamW steps, a sharded checkpoint
    into ``first``, the whole state into ``out``), "move" (load ``first``, save it into
    ``second``: run in one plain process) or "load" (FSDP2: load ``second``, whole state
    into ``out``)."""
    from torch.distributed.fsdp import fully_shard

    from descend.train.sharded_checkpoint import load_sharded, save_sharded

    net = model()
    distributed = torch.distributed.is_available() and "RANK" in os.environ
    if distributed:
        torch.distributed.init_process_group("gloo")
        fully_shard(net[0])
        fully_shard(net[2])
        fully_shard(net)
    opt = descend.AdamW(net.parameters(), lr=0.01, weight_decay=0.1)
    if spec["phase"] == "save":
        x, y = data()
        for t in range(3):
            opt.zero_grad()
            nn.functional.mse_loss(net(x[t::3]), y[t::3]).backward()
            opt.step()
        save_sharded(spec["first"], net, opt, {"loop": {"step": 3}}, 3)
    else:
        source = spec["first"] if spec["phase"] == "move" else spec["second"]
        assert load_sharded(source, net, opt) is not None
        if spec["phase"] == "move":
            save_sharded(spec["second"], net, opt, {"loop": {"step": 3}}, 3)
    state = full_state(net, opt)
    if is_main_process() and spec["phase"] != "move":
        torch.save(state, spec["out"])
    if distributed:
        leave()


if __name__ == "__main__":
    torch.set_num_threads(1)
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    (round_trip if "phase" in spec else train)(spec)
