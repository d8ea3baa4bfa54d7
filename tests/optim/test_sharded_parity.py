"""descend optimizers on FSDP2's sharded parameters (2 gloo processes) against the same
optimizer on the whole, unsharded parameters; and as ZeroRedundancyOptimizer's local
optimizer.

Both processes run the same 100 steps with the same gradients (drawn from a seeded
generator, never from a backward pass, so the comparison isolates the optimizer). An
elementwise rule computes each coordinate with the same float64 operations whether the
coordinate sits in a shard or in the whole tensor: the result is bit-identical (both sides
run the eager transforms, ``foreach=True``: torch's fused kernel, which the whole tensors
would take by default, orders some operations differently). Global
norm clipping sums squared norms over the ranks' shards, in another order than over the
whole tensors: its factor differs by a few ulps per step (float64, relative ~1e-15), and
100 steps of a contracting update keep that below 1e-12.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

import descend
from descend.optim import chain, clip_by_global_norm, scale_by_adam, scale_by_lr

STEPS = 100


def _sgd(params):
    return descend.SGD(
        params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3, foreach=True
    )


def _adamw(params):
    return descend.AdamW(params, lr=0.01, weight_decay=0.1, foreach=True)


def _clipped_adam(params):
    return descend.Optimizer(
        params,
        chain(clip_by_global_norm(), scale_by_adam(), scale_by_lr()),
        lr=0.01,
        max_norm=0.5,
        betas=(0.9, 0.999),
        eps=1e-8,
    )


# Elementwise rules: bit-identical on shards. Matrix rules (descend.Muon, being built on
# another branch) need each matrix whole: add them to MATRIX once they exist, with the
# tolerance of their Newton-Schulz iteration on gathered matrices (docs/scale.md).
EXACT: dict[str, Callable] = {"SGD": _sgd, "AdamW": _adamw}
CLIPPED: dict[str, Callable] = {"clip+Adam": _clipped_adam}
MATRIX: dict[str, Callable] = {}
CLIP_TOLERANCE = 1e-12


def _model() -> nn.Module:
    torch.manual_seed(0)
    # Shapes whose first dimension 2 ranks split unevenly (7 -> 4 + 3) and evenly.
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 4), nn.Linear(4, 3)).double()


def _groups(model: nn.Module) -> list[dict]:
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    return [{"params": weights}, {"params": biases, "lr": 0.003}]


def _grads(model: nn.Module) -> list[list[torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    shapes = [p.shape for p in model.parameters()]
    return [
        [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes] for _ in range(STEPS)
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, results: dict) -> None:
    import torch.distributed as dist
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from torch.distributed.tensor import DTensor, distribute_tensor

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        out: dict[str, tuple] = {}
        for name, make in {**EXACT, **CLIPPED, **MATRIX}.items():
            sharded, whole = _model(), _model()
            grads = _grads(whole)
            for layer in (sharded[0], sharded[2], sharded[3]):
                fully_shard(layer)
            fully_shard(sharded)
            opt, ref = make(_groups(sharded)), make(_groups(whole))
            for step in grads:
                for p, q, g in zip(sharded.parameters(), whole.parameters(), step, strict=True):
                    p.grad = distribute_tensor(g, p.device_mesh, p.placements)
                    q.grad = g.clone()
                opt.step()
                ref.step()
            diffs = [
                float(((p.detach().full_tensor() - q.detach()) / q.detach().abs()).abs().max())
                for p, q in zip(sharded.parameters(), whole.parameters(), strict=True)
            ]
            states = [v for st in opt.state.values() for v in st.values() if v.dim() > 0]
            out[name] = (max(diffs), all(isinstance(v, DTensor) for v in states))

        # ZeRO: each rank keeps the state of its share of the parameters.
        zeroed, whole = _model(), _model()
        zero = ZeroRedundancyOptimizer(
            zeroed.parameters(), optimizer_class=descend.AdamW, lr=0.01, weight_decay=0.1
        )
        ref = descend.AdamW(whole.parameters(), lr=0.01, weight_decay=0.1)
        for step in _grads(whole):
            for p, q, g in zip(zeroed.parameters(), whole.parameters(), step, strict=True):
                p.grad, q.grad = g.clone(), g.clone()
            zero.step()
            ref.step()
        same = all(torch.equal(p, q) for p, q in zip(zeroed.parameters(), whole.parameters()))
        owned = sum(1 for st in zero.optim.state.values() if st)
        out["ZeRO(AdamW)"] = (0.0 if same else 1.0, owned < len(list(whole.parameters())))
        results[rank] = out
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def results() -> dict:
    with mp.Manager() as manager:
        shared = manager.dict()
        mp.spawn(_worker, args=(_free_port(), shared), nprocs=2, join=True)
        return dict(shared)


@pytest.mark.parametrize("name", [*EXACT, "ZeRO(AdamW)"])
def test_elementwise_optimizers_on_fsdp_shards_equal_unsharded(results: dict, name: str) -> None:
    """Bit-identical after 100 steps, two param groups, shapes split evenly and not; the
    state is sharded like the parameters (or, under ZeRO, held by fewer than all ranks)."""
    for rank in (0, 1):
        diff, sharded = results[rank][name]
        assert diff == 0.0, (rank, diff)
        assert sharded, rank


def test_global_norm_clipping_reduces_the_norm_across_ranks(results: dict) -> None:
    """The clipping factor is the whole gradient's: were each rank to clip by its own shard's
    norm, the parameters would differ by far more than CLIP_TOLERANCE (max_norm 0.5 < the
    norms of these gradients, so every step clips)."""
    for rank in (0, 1):
        diff, sharded = results[rank]["clip+Adam"]
        assert diff < CLIP_TOLERANCE, (rank, diff)
        assert sharded, rank
