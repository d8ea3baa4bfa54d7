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
100 steps of a contracting update keep that below 1e-12. Muon gathers each matrix and
orthogonalizes it whole on every rank: bit-identical too (see MATRIX), with one all-gather
per matrix per step, counted with its bytes.
"""

from __future__ import annotations

import os
import socket
from collections import Counter
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


def _muon(groups):
    # Muon takes matrices only: the weights, in two groups (the first, 7x5, has a shape
    # ratio sqrt(7/5) that its shards, 4x5 and 3x5, would get wrong: 1); the biases get no
    # step (their grads are set all the same, so they stay equal trivially).
    first, *rest = groups[0]["params"]
    return descend.Muon(
        [
            {"params": [first]},
            {"params": rest, "lr": 0.005, "adjust_lr_fn": "match_rms_adamw"},
        ],
        lr=0.02,
        weight_decay=0.01,
        momentum=0.95,
        nesterov=True,
    )


# Elementwise rules: bit-identical on shards. Matrix rules need each matrix whole: each
# rank gathers it (cast to bfloat16 first, elementwise, so the gathered matrix is the
# unsharded one cast, bit for bit) and runs the same Newton-Schulz operations on the same
# bfloat16 matrix as the unsharded optimizer in the same process (one thread): the update
# is bit-identical, and so are the parameters (the rest of the step is elementwise).
EXACT: dict[str, Callable] = {"SGD": _sgd, "AdamW": _adamw}
CLIPPED: dict[str, Callable] = {"clip+Adam": _clipped_adam}
MATRIX: dict[str, Callable] = {"Muon": _muon}
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


def _bytes_mode():
    from torch.distributed.tensor.debug import CommDebugMode

    class Bytes(CommDebugMode):
        """CommDebugMode (which counts the collectives DTensor issues), also adding up the
        bytes each all-gather brings to this rank: its output less its own input."""

        received = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = super().__torch_dispatch__(func, types, args, kwargs)
            if func is torch.ops._c10d_functional.all_gather_into_tensor.default:
                self.received += out.nbytes - args[0].nbytes
            return out

    return Bytes()


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
        comm = _bytes_mode()
        counts: Counter = Counter()
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
                if name in MATRIX:
                    with comm:
                        opt.step()
                    counts.update(comm.get_comm_counts())  # entering the mode clears them
                else:
                    opt.step()
                ref.step()
            diffs = [
                float(((p.detach().full_tensor() - q.detach()) / q.detach().abs()).abs().max())
                for p, q in zip(sharded.parameters(), whole.parameters(), strict=True)
            ]
            states = [v for st in opt.state.values() for v in st.values() if v.dim() > 0]
            out[name] = (max(diffs), all(isinstance(v, DTensor) for v in states))

        gathers = counts[torch.ops.c10d_functional.all_gather_into_tensor]
        out["comm"] = (comm.received / STEPS, gathers / STEPS, counts.total() / STEPS)

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


def test_muon_on_fsdp_shards_equals_unsharded(results: dict) -> None:
    """Muon gathers each matrix (its momentum-blended update, in bfloat16), orthogonalizes
    it whole on every rank and keeps its own rows: after 100 steps, two param groups, dim-0
    splits even (4x7 -> 2+2) and not (7x5 -> 4+3, 3x4 -> 2+1), bit-identical to Muon on
    the whole matrices, with the shape ratio of the whole matrix; momentum stays sharded."""
    for rank in (0, 1):
        diff, sharded = results[rank]["Muon"]
        assert diff == 0.0, (rank, diff)
        assert sharded, rank


def test_muon_gathers_each_matrix_once_per_step_and_nothing_else(results: dict) -> None:
    """Per step and rank: one all-gather per matrix (3), no other collective (bringing the
    result back to the shards slices locally), and the bytes the all-gathers bring each rank
    are the other rank's rows in bfloat16 (2 bytes), each shard padded to ceil(A/2) rows as
    DTensor pads uneven shards for the collective: (N-1) * ceil(A/N) * B per matrix, here
    4*5 + 2*7 + 2*4 = 42 elements, 84 bytes, on both ranks (unpadded: 33 on rank 0, 42 on
    rank 1)."""
    for rank in (0, 1):
        received, gathers, total = results[rank]["comm"]
        assert (gathers, total) == (3, 3), (rank, gathers, total)
        assert received == 42 * 2, (rank, received)
