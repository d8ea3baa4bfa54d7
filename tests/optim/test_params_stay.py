"""Parameters stay the user's: what a training script does to its model between steps
works with descend as with torch.optim (same numbers, or the same refusal)."""

from __future__ import annotations

import copy
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

import descend

NAMES = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"]


def _options(name: str) -> dict:
    return {"lr": 0.01, "momentum": 0.9} if name in ("SGD", "RMSprop") else {"lr": 0.01}


def _batch(t: int) -> torch.Tensor:
    return torch.randn(8, 4, generator=torch.Generator().manual_seed(t))


def _step(model: nn.Module, opt: torch.optim.Optimizer, t: int) -> None:
    opt.zero_grad()
    model(_batch(t)).pow(2).mean().backward()
    opt.step()


def _both(name: str, script) -> None:
    """Run ``script(model, make_optimizer)`` with torch.optim and with descend; the
    models must end equal (float32 rounding: both run their for-loop, foreach=False)."""
    ends = []
    for module in (torch.optim, descend):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4))

        def make(params, module=module):
            return getattr(module, name)(params, foreach=False, **_options(name))

        script(model, make)
        ends.append(model)
    for p, q in zip(ends[0].parameters(), ends[1].parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_freezing_unfreezing_and_a_new_group_mid_run(name: str) -> None:
    def script(model: nn.Sequential, make) -> None:
        opt = make(model[0].parameters())
        for p in model[2].parameters():
            p.requires_grad_(False)
        for t in range(3):
            _step(model, opt, t)
        model[0].weight.requires_grad_(False)  # frozen mid-run: no gradient, no update
        model[0].weight.grad = None
        for t in range(3, 5):
            _step(model, opt, t)
        for p in model[2].parameters():
            p.requires_grad_(True)
        opt.add_param_group({"params": model[2].parameters(), "lr": 0.005})
        for t in range(5, 8):
            _step(model, opt, t)

    _both(name, script)


@pytest.mark.parametrize("name", NAMES)
def test_weight_tying_and_model_load_state_dict(name: str) -> None:
    def script(model: nn.Sequential, make) -> None:
        model[2].weight = model[0].weight  # tied: one parameter in two places
        opt = make(model.parameters())
        for t in range(3):
            _step(model, opt, t)
        saved = copy.deepcopy(model.state_dict())
        for t in range(3, 5):
            _step(model, opt, t)
        model.load_state_dict(saved)  # copies into the same parameters
        for t in range(5, 8):
            _step(model, opt, t)

    _both(name, script)


@pytest.mark.parametrize("name", NAMES)
def test_model_to_another_dtype_between_steps(name: str) -> None:
    """``model.to(float64)`` swaps each parameter's data; the optimizer's state stays
    float32 (as torch's), and the next steps run the same way or fail the same way."""
    outcomes = []
    for module in (torch.optim, descend):
        torch.manual_seed(0)
        model = nn.Linear(4, 3)
        opt = getattr(module, name)(model.parameters(), foreach=False, **_options(name))
        _step(model, opt, 0)
        model.to(torch.float64)
        try:
            opt.zero_grad()
            model(_batch(1).double()).pow(2).mean().backward()
            opt.step()
            outcomes.append([p.detach().clone() for p in model.parameters()])
        except RuntimeError as exc:
            outcomes.append(type(exc))
    if isinstance(outcomes[0], list):
        for p, q in zip(*outcomes, strict=True):
            torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-6)
    else:
        assert outcomes[0] is outcomes[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sharded_worker(rank: int, port: int, results: dict) -> None:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Shard, distribute_tensor

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        mesh = init_device_mesh("cpu", (2,))
        out = {}
        for name, flags in [("Adam", {}), ("Adam", {"foreach": True}), ("SGD", {"momentum": 0.9})]:
            g = torch.Generator().manual_seed(0)
            full = torch.randn(6, 3, generator=g)
            grads = [torch.randn(6, 3, generator=g) for _ in range(3)]
            p = nn.Parameter(distribute_tensor(full.clone(), mesh, [Shard(0)]))
            opt = getattr(descend, name)([p], lr=0.1, **flags)
            q = full.clone().requires_grad_()
            ref = getattr(torch.optim, name)(
                [q], lr=0.1, foreach=False, **{k: v for k, v in flags.items() if k != "foreach"}
            )
            for grad in grads:
                p.grad = distribute_tensor(grad, mesh, [Shard(0)])
                q.grad = grad.clone()
                opt.step()
                ref.step()
            state = next(iter(opt.state.values()))
            moments = [v for k, v in state.items() if k != "step"]
            out[f"{name}{flags}"] = (
                float((p.full_tensor() - q.detach()).abs().max()),
                all(isinstance(v, DTensor) and v.placements == (Shard(0),) for v in moments),
                tuple(p.to_local().shape),
            )
        results[rank] = out
    finally:
        dist.destroy_process_group()


def test_sharded_dtensor_parameters_step_on_their_shards() -> None:
    """FSDP2 keeps each parameter as a DTensor sharded over ranks. Elementwise optimizers
    step each rank's shard where it is: the state is sharded alike (nothing gathered),
    and the full result is torch.optim's on the unsharded tensor."""
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_sharded_worker, args=(_free_port(), results), nprocs=2, join=True)
        results = dict(results)
    for rank in (0, 1):
        for case, (diff, sharded, local) in results[rank].items():
            assert diff < 1e-6, (case, diff)
            assert sharded, case
            assert local == (3, 3), case
