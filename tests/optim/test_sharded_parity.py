"""descend optimizers on FSDP2's sharded parameters (2 gloo processes) against the same
optimizer on the whole, unsharded parameters — every registry name and the wrappers; and
as ZeroRedundancyOptimizer's local optimizer.

Both processes run the same 100 steps with the same gradients (drawn from a seeded
generator, never from a backward pass, so the comparison isolates the optimizer). An
elementwise rule computes each coordinate with the same float64 operations whether the
coordinate sits in a shard or in the whole tensor: the result is bit-identical (both sides
run the eager transforms, ``foreach=True``: torch's fused kernel, which the whole tensors
would take by default, orders some operations differently). Global
norm clipping sums squared norms over the ranks' shards, in another order than over the
whole tensors: its factor differs by a few ulps per step (float64, relative ~1e-15), and
100 steps of a contracting update keep that below 1e-12. Muon orthogonalizes each matrix
whole on one rank, its owner, which sends every rank its rows: bit-identical too (see
MATRIX), with two all-to-alls per step for all the matrices, counted with their bytes.
"""

from __future__ import annotations

import functools
import os
import socket
from collections import Counter
from collections.abc import Callable

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

import descend
from descend.optim import (
    cautious,
    centralize_gradient,
    chain,
    clip_by_global_norm,
    ema,
    lookahead,
    scale_by_adam,
    scale_by_lr,
)
from descend.optim.registry import make_optimizer, optimizer_names

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


def _soap(groups):
    # Two groups, a refresh of the basis every 3 steps, vectors preconditioned too: every
    # part of SOAP's state (moments, statistics, bases) is exercised on shards.
    return descend.SOAP(
        [groups[0], {**groups[1], "precondition_1d": True}],
        lr=0.01,
        weight_decay=0.01,
        precondition_frequency=3,
    )


# Elementwise rules: bit-identical on shards. Matrix rules need each matrix whole: its
# owner rank receives its rows (cast to bfloat16 first, elementwise, so the matrix is the
# unsharded one cast, bit for bit) and runs the same Newton-Schulz operations on the same
# bfloat16 matrix as the unsharded optimizer in the same process (one thread): the update
# is bit-identical, and so are the parameters (the rest of the step is elementwise).
def _rprop(params):
    return descend.Rprop(params, lr=0.01, foreach=True)


def _prodigy(groups):
    # One lr for every group (Prodigy's d is shared); the biases without decay.
    weights, biases = (g["params"] for g in groups)
    return descend.Prodigy(
        [{"params": weights}, {"params": biases, "weight_decay": 0.0}], lr=1.0, weight_decay=0.01
    )


EXACT: dict[str, Callable] = {"SGD": _sgd, "AdamW": _adamw, "Rprop": _rprop}
CLIPPED: dict[str, Callable] = {"clip+Adam": _clipped_adam}
# Prodigy's estimate d is a ratio of two sums over every parameter: on shards each rank
# sums its part and the parts are added across ranks, in another order than over the
# whole tensors (each sum differs by about n * 2^-53 relative, n <= 35 terms per tensor;
# d scales every update), so the parameters drift by a few ulps per step: 100 steps stay
# below GLOBAL_SUM_TOLERANCE, normwise.
GLOBAL_SUM: dict[str, Callable] = {"Prodigy": _prodigy}
GLOBAL_SUM_TOLERANCE = 1e-11
# Every registry name on shards, at its registry defaults, 30 steps. The whole tensors
# take torch's fused kernel where descend's default does (AdamW, SGD with momentum...),
# which orders operations differently from the eager transforms on the shards, and the
# sums of Prodigy, LAMB's trust ratio and Adafactor's column factors are reduced in
# another order: each a few ulps per operation, about 30 steps x 20 operations x 2^-52 =
# 1.3e-13 (the largest measured: 2e-14). REGISTRY_TOLERANCE (normwise, float64) is 100x
# that bound, and far below what a wrong reduction does (a rank's own norm for the
# whole one, a mean of uneven shards' means: 1e-3 to 5, relative).
REGISTRY_STEPS = 30
REGISTRY_TOLERANCE = 1e-11


def _wrapped(transform) -> Callable:
    return lambda params: descend.Optimizer(params, transform, lr=0.01)


# Every registry name, and the transforms and wrapper that work around any rule.
EVERY: dict[str, Callable] = {
    **{name: functools.partial(make_optimizer, name) for name in optimizer_names()},
    "cautious": _wrapped(chain(cautious(scale_by_adam()), scale_by_lr())),
    "lookahead": _wrapped(lookahead(chain(scale_by_adam(), scale_by_lr()))),
    "ema": _wrapped(ema(chain(scale_by_adam(), scale_by_lr()))),
    "centralize_gradient": _wrapped(chain(centralize_gradient(), scale_by_adam(), scale_by_lr())),
    "SAM": lambda params: descend.SAM(params, descend.SGD, rho=0.05, lr=0.1, momentum=0.9),
}
MATRIX: dict[str, Callable] = {"Muon": _muon}
# SOAP: every rank gathers each gradient (float64 here) and computes the whole step, with
# the same operations as the unsharded optimizer: bit-identical, its state whole.
REPLICATED: dict[str, Callable] = {"SOAP": _soap}
RESUMED = 20  # steps after a sharded checkpoint of SOAP, on 2 processes and on 1
CLIP_TOLERANCE = 1e-12


def _model() -> nn.Module:
    torch.manual_seed(0)
    # Shapes whose first dimension 2 ranks split unevenly (7 -> 4 + 3) and evenly, wide and
    # tall (Newton-Schulz returns a tall matrix's result transposed, not contiguous).
    return nn.Sequential(
        nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 4), nn.Linear(4, 3), nn.Linear(3, 6)
    ).double()


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
    import torch.distributed as dist
    from torch.distributed.tensor.debug import CommDebugMode

    class Bytes(CommDebugMode):
        """CommDebugMode (which counts the collectives), also adding up the bytes each
        all-gather or all-to-all brings to this rank from the others."""

        received = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = super().__torch_dispatch__(func, types, args, kwargs)
            if func is torch.ops._c10d_functional.all_gather_into_tensor.default:
                self.received += out.nbytes - args[0].nbytes
            if func is torch.ops.c10d._allgather_base_.default:
                self.received += args[0].nbytes - args[1].nbytes
            if func is torch.ops.c10d.broadcast_.default and args[2] != dist.get_rank():
                self.received += sum(x.nbytes for x in args[0])
            if func is torch.ops.c10d.alltoall_base_.default:
                output, splits = args[0], args[3]
                others = sum(splits) - splits[dist.get_rank()]
                self.received += others * output.element_size()
            return out

    return Bytes()


def _normwise(sharded: nn.Module, whole: nn.Module) -> float:
    """max over parameters of |p_sharded - p_whole| / |p_whole| (Frobenius norms)."""
    return max(
        float((p.detach().full_tensor() - q.detach()).norm() / q.detach().norm())
        for p, q in zip(sharded.parameters(), whole.parameters(), strict=True)
    )


def _is_array(v) -> bool:
    return isinstance(v, torch.Tensor) and v.dim() > 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, results: dict, folder: str) -> None:
    import torch.distributed as dist
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from torch.distributed.tensor import DTensor, distribute_tensor

    from descend.train.sharded_checkpoint import load_sharded, save_sharded

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        out: dict[str, tuple] = {}
        comm = _bytes_mode()
        counts: Counter = Counter()

        def shard(model: nn.Module) -> nn.Module:
            for layer in (model[0], model[2], model[3], model[4]):
                fully_shard(layer)
            return fully_shard(model)

        def give(model: nn.Module, step: list[torch.Tensor]) -> None:
            for p, g in zip(model.parameters(), step, strict=True):
                p.grad = distribute_tensor(g, p.device_mesh, p.placements)

        for name, make in {**EXACT, **CLIPPED, **GLOBAL_SUM, **MATRIX, **REPLICATED}.items():
            sharded, whole = shard(_model()), _model()
            grads = _grads(whole)
            opt, ref = make(_groups(sharded)), make(_groups(whole))
            for step in grads:
                give(sharded, step)
                for q, g in zip(whole.parameters(), step, strict=True):
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
            states = [v for st in opt.state.values() for v in st.values() if _is_array(v)]
            out[name] = (max(diffs), all(isinstance(v, DTensor) for v in states))
            out[name + " normwise"] = _normwise(sharded, whole)

        # SOAP's whole state through a sharded checkpoint: saved by 2 ranks, loaded by 2
        # here (and by 1 in the test), then RESUMED more steps on each side.
        save_sharded(folder, sharded, opt, {"loop": {}}, step=STEPS)
        again = shard(_model())
        again_opt = _soap(_groups(again))
        load_sharded(folder, again, again_opt)
        more = _grads(whole)[:RESUMED]
        for step in more:
            for model in (sharded, again):
                give(model, step)
            for q, g in zip(whole.parameters(), step, strict=True):
                q.grad = g.clone()
            opt.step()
            again_opt.step()
            ref.step()
        out["SOAP resumed"] = (
            all(
                torch.equal(p.full_tensor(), q.full_tensor())
                for p, q in zip(sharded.parameters(), again.parameters(), strict=True)
            ),
            all(
                not isinstance(v, DTensor)
                for st in opt.state.values()
                for v in st.values()
                if _is_array(v)
            ),
        )
        out["SOAP after"] = [q.detach().clone() for q in whole.parameters()]

        exchanges = counts[torch.ops.c10d.alltoall_base_]
        out["comm"] = (comm.received / STEPS, exchanges / STEPS, counts.total() / STEPS)

        for name, make in EVERY.items():
            sharded, whole = shard(_model()), _model()
            opt, ref = make(sharded.parameters()), make(whole.parameters())
            for step in _grads(whole)[:REGISTRY_STEPS]:

                def on_shards(step=step, model=sharded) -> None:
                    give(model, step)

                def on_whole(step=step, model=whole) -> None:
                    for q, g in zip(model.parameters(), step, strict=True):
                        q.grad = g.clone()

                on_shards()
                on_whole()
                # SAM's closure: the same gradients again (the test's are not the loss's).
                opt.step(on_shards) if name == "SAM" else opt.step()
                ref.step(on_whole) if name == "SAM" else ref.step()
            out["every " + name] = _normwise(sharded, whole)

        # DDP's replicated parameters: each rank orthogonalizes its share, one all-gather.
        from descend.optim.sharded import replicated

        shared, whole = _model(), _model()
        opt, ref = _muon(_groups(shared)), _muon(_groups(whole))
        counts.clear()
        comm.received = 0
        for step in _grads(whole):
            for p, q, g in zip(shared.parameters(), whole.parameters(), step, strict=True):
                p.grad, q.grad = g.clone(), g.clone()
            with replicated(), comm:
                opt.step()
            counts.update(comm.get_comm_counts())
            ref.step()
        same = all(torch.equal(p, q) for p, q in zip(shared.parameters(), whole.parameters()))
        gathers = counts[torch.ops.c10d._allgather_base_] / STEPS
        casts = counts[torch.ops.c10d.broadcast_] / STEPS
        out["replicated"] = (same, gathers, casts, counts.total() / STEPS, comm.received / STEPS)

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
def checkpoints(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("sharded"))


@pytest.fixture(scope="module")
def results(checkpoints: str) -> dict:
    with mp.Manager() as manager:
        shared = manager.dict()
        mp.spawn(_worker, args=(_free_port(), shared, checkpoints), nprocs=2, join=True)
        return dict(shared)


@pytest.mark.parametrize("name", [*EXACT, "ZeRO(AdamW)"])
def test_elementwise_optimizers_on_fsdp_shards_equal_unsharded(results: dict, name: str) -> None:
    """Bit-identical after 100 steps, two param groups, shapes split evenly and not; the
    state is sharded like the parameters (or, under ZeRO, held by fewer than all ranks)."""
    for rank in (0, 1):
        diff, sharded = results[rank][name]
        assert diff == 0.0, (rank, diff)
        assert sharded, rank


def test_prodigy_reduces_its_sums_across_ranks(results: dict) -> None:
    """Prodigy on shards follows Prodigy on the whole tensors within GLOBAL_SUM_TOLERANCE
    (see there); were each rank to estimate d from its own shards, d would differ from the
    first step on, by far more."""
    for rank in (0, 1):
        assert results[rank]["Prodigy normwise"] < GLOBAL_SUM_TOLERANCE, rank


@pytest.mark.parametrize("name", EVERY)
def test_every_optimizer_steps_on_fsdp_shards(results: dict, name: str) -> None:
    """Every registry optimizer at its defaults, and cautious, lookahead, EMA, gradient
    centralization and SAM: 30 steps on shards equal 30 steps on the whole tensors within
    REGISTRY_TOLERANCE (normwise; see there for why not bit for bit)."""
    for rank in (0, 1):
        assert results[rank]["every " + name] < REGISTRY_TOLERANCE, (rank, name)


def test_global_norm_clipping_reduces_the_norm_across_ranks(results: dict) -> None:
    """The clipping factor is the whole gradient's: were each rank to clip by its own shard's
    norm, the parameters would differ by far more than CLIP_TOLERANCE (max_norm 0.5 < the
    norms of these gradients, so every step clips)."""
    for rank in (0, 1):
        diff, sharded = results[rank]["clip+Adam"]
        assert diff < CLIP_TOLERANCE, (rank, diff)
        assert sharded, rank


def test_muon_on_fsdp_shards_equals_unsharded(results: dict) -> None:
    """Each matrix (its momentum-blended update, in bfloat16) is orthogonalized whole on its
    owner rank and every rank gets its rows back: after 100 steps, two param groups, dim-0
    splits even (4x7 -> 2+2) and not (7x5 -> 4+3, 3x4 -> 2+1), bit-identical to Muon on
    the whole matrices, with the shape ratio of the whole matrix (a tall 6x3 too, 3+3);
    momentum stays sharded."""
    for rank in (0, 1):
        diff, sharded = results[rank]["Muon"]
        assert diff == 0.0, (rank, diff)
        assert sharded, rank


def test_soap_on_fsdp_shards_equals_unsharded(results: dict) -> None:
    """SOAP gathers each gradient and steps the whole tensor on every rank: after 100 steps
    (two groups, a new basis every 3 steps, vectors preconditioned, uneven splits)
    bit-identical to SOAP on the whole tensors."""
    for rank in (0, 1):
        diff, _ = results[rank]["SOAP"]
        assert diff == 0.0, (rank, diff)


def test_soap_state_is_whole_and_resumes_from_a_sharded_checkpoint(
    results: dict, checkpoints: str
) -> None:
    """SOAP's state is whole (plain tensors, the same on every rank, written once by the
    distributed checkpoint). Loaded by 2 processes from the checkpoint the 2 wrote, 20
    more steps equal the uninterrupted run's bit for bit; loaded by 1 process into
    unsharded parameters, too (2 -> 1)."""
    from descend.train.sharded_checkpoint import load_sharded

    for rank in (0, 1):
        same, whole_state = results[rank]["SOAP resumed"]
        assert same and whole_state, rank
    model = _model()
    opt = _soap(_groups(model))
    load_sharded(checkpoints, model, opt)
    for step in _grads(model)[:RESUMED]:
        for p, g in zip(model.parameters(), step, strict=True):
            p.grad = g.clone()
        opt.step()
    for p, q in zip(model.parameters(), results[0]["SOAP after"], strict=True):
        assert torch.equal(p.detach(), q), (p, q)


def test_muon_under_ddp_orthogonalizes_a_share_per_rank(results: dict) -> None:
    """Within ``replicated()`` (which fit enters under DDP) the same plain matrices on both
    ranks: each rank orthogonalizes its share and one collective per param group brings
    the rest, bit-identical to Muon computing all four. The first group is one 7x5 matrix
    (and in some steps the owners put all of the second group on one rank too): a
    broadcast from its owner sends its 35 elements to the other rank only, where an
    all-gather would also bring the owner 35 elements of padding. Each rank receives
    fewer than the 93 elements of all four matrices (2 bytes each) on average; both
    together at least each step's 93 results, once (measured: 252.6 bytes per step
    between them, the rest the all-gathers' padding)."""
    both = 0.0
    for rank in (0, 1):
        same, gathers, casts, total, received = results[rank]["replicated"]
        assert same, rank
        assert gathers + casts == total == 2 and casts >= 1, (rank, gathers, casts, total)
        assert 0 < received < 93 * 2, (rank, received)
        both += received
    assert both >= 93 * 2, both


def test_muon_sends_each_owner_its_rows_and_each_rank_its_results(results: dict) -> None:
    """Per step and rank: two all-to-alls per param group (two groups), no other collective.
    Each matrix is computed on one rank, balanced by Newton-Schulz cost over groups and
    steps; each piece is a shard padded to ceil(A/2) rows, in bfloat16 (2 bytes). For each
    matrix a rank receives either the other rank's rows (it owns the matrix) or its own
    rows of the result (it does not): 4*5 + 2*7 + 2*4 + 3*3 = 51 elements, 102 bytes per
    step, whoever owns what. An all-gather of every matrix on both ranks would move as much
    at 2 ranks, with each rank computing all four."""
    for rank in (0, 1):
        received, exchanges, total = results[rank]["comm"]
        assert (exchanges, total) == (4, 4), (rank, exchanges, total)
        assert received == 51 * 2, (rank, received)


def test_owners_balance_the_work_over_groups_and_steps() -> None:
    """One matrix per group would all land on rank 0 with a fresh balance per call: the
    ledger carries each rank's load, so consecutive calls alternate, and a costly matrix
    goes to the rank that has done less."""
    from descend.optim import sharded

    mesh = object()
    try:
        assert [sharded._owners(mesh, [5.0], 2) for _ in range(4)] == [[0], [1], [0], [1]]
        assert sharded._owners(mesh, [1.0, 8.0, 4.0, 3.0], 2) == [1, 0, 1, 1]
        assert sharded._LEDGER[mesh] == [0.0, 0.0]
    finally:
        sharded._LEDGER.pop(mesh, None)
