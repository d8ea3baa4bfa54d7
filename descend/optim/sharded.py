r"""What update rules need on FSDP2's sharded tensors: matrices whole, sums over all
the ranks' parts, and the few ops ``DTensor`` has no rule for.

FSDP2 keeps each parameter (and its gradient) as a ``DTensor`` split by rows,
``Shard(0)`` over a 1-D mesh of :math:`N` ranks: rank :math:`r` holds rows
:math:`[rc, \min((r+1)c, A))` of an :math:`A \times B` matrix, :math:`c = \lceil A/N\rceil`
(``torch.chunk``'s split: the last ranks may hold fewer rows, or none). An elementwise rule
steps on those rows as they are; Muon's Newton–Schulz needs the whole matrix.

Three ways to get it:

* :func:`map_whole` — **each rank computes a share** (the reference distributed Muon's
  plan). Every matrix gets an owner rank, balanced by the cost of its step; one
  ``all_to_all`` brings every owner the rows of its matrices, each owner computes its
  matrices whole, and a second ``all_to_all`` sends each rank its rows of every result.
  Owners are balanced over every call and step (a rank's load carries over), so one
  matrix per param group still spreads over the ranks. Per step and rank, for the
  matrices :math:`\mathcal{O}` it owns and the rest :math:`\bar{\mathcal{O}}`, it receives
  :math:`(N-1)\sum_{\mathcal{O}} cB + \sum_{\bar{\mathcal{O}}} cB` elements and sends
  as many: against an all-gather of every matrix on every rank (:math:`(N-1)\sum cB`
  received), the bytes are the same at :math:`N = 2` and fall as :math:`2/N` beyond, and
  the compute is split :math:`N` ways.
  For a stateless rule: the result is the same wherever it is computed.
* :func:`replicated` — under DDP the parameters are plain tensors, the same on every
  rank: within this block :func:`map_whole` computes each matrix on its owner and one
  all-gather (each rank's results, padded to the largest share) gives every rank all of
  them — the reference's plan exactly (a broadcast when one rank holds them all); each
  rank receives about :math:`(N-1)/N` of the matrices' elements, in the iteration's dtype.
* :func:`gather_whole` — **every rank computes every matrix**: one all-gather per matrix.
  For a rule whose state is not elementwise (SOAP's moments live in an eigenbasis of the
  whole matrix), so that the state stays the same on every rank, replicated, as torch's
  distributed checkpoint expects a plain tensor to be.

All three cast to the dtype the rule works in *before* anything travels (elementwise, so
the whole matrix is the unsharded one cast, bit for bit), and return the results laid out
as the gradients were.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor


def is_sharded(g: Tensor) -> bool:
    """Whether ``g`` is a ``DTensor`` (checked without importing DTensor's module: a plain
    tensor never pays for that import)."""
    module = sys.modules.get("torch.distributed.tensor")
    return module is not None and isinstance(g, module.DTensor)


def _row_shards(g: Any) -> bool:
    # FSDP2's layout: Shard(0) on a 1-D mesh, with torch.chunk's row counts.
    from torch.distributed.tensor import Shard

    if g.device_mesh.ndim != 1 or tuple(g.placements) != (Shard(0),) or g.ndim < 2:
        return False
    n, me = g.device_mesh.size(), g.device_mesh.get_local_rank()
    return g.to_local().shape[0] == _rows(g.shape[0], n, me)


def _rows(a: int, n: int, r: int) -> int:
    c = math.ceil(a / n)
    return max(0, min(c, a - r * c))


def _padded(x: Tensor, rows: int) -> Tensor:
    """``x`` (2-D) with zero rows appended up to ``rows``: every rank sends equal pieces."""
    if x.shape[0] == rows:
        return x
    return torch.cat([x, x.new_zeros(rows - x.shape[0], x.shape[1])])


# Each mesh's work so far, per rank, less its least loaded rank's: the owners balance over
# every call (a param group is a call) and every step. All ranks make the same calls in
# the same order (the collectives would not match otherwise), so they keep the same ledger.
_LEDGER: dict[Any, list[float]] = {}


def _owners(mesh: Any, costs: list[float], n: int) -> list[int]:
    """Each matrix's rank: the most costly first, each to the least loaded rank so far
    (ties to the lowest). Every rank computes the same list from the same shapes."""
    load = _LEDGER.get(mesh, [0.0] * n)
    owners = [0] * len(costs)
    for i in sorted(range(len(costs)), key=lambda i: -costs[i]):
        r = min(range(n), key=lambda r: (load[r], r))
        owners[i] = r
        load[r] += costs[i]
    least = min(load)
    _LEDGER[mesh] = [x - least for x in load]
    return owners


def _as_sharded(local: Tensor, like: Any) -> Tensor:
    from torch.distributed.tensor import DTensor

    return DTensor.from_local(
        local,
        like.device_mesh,
        like.placements,
        shape=like.shape,
        stride=like.stride(),
        run_check=False,
    )


def copy_all(dst: list[Tensor], src: list[Tensor]) -> None:
    r"""``dst[i].copy_(src[i])`` for every ``i``: one ``_foreach_copy_`` for plain tensors,
    a copy per tensor for ``DTensor``\ s (DTensor has no rule for the foreach copy)."""
    if dst and is_sharded(dst[0]):
        for d, s in zip(dst, src, strict=True):
            d.copy_(s)
    else:
        torch._foreach_copy_(dst, src)


def total(values: list[Tensor]) -> float:
    """The float64 sum of 0-d tensors. A ``DTensor`` among them is a reduction over a
    sharded tensor (each rank's partial sum): those are added locally and reduced across
    their ranks in one all-reduce per mesh and placement."""
    from_plain = sum(float(v) for v in values if not is_sharded(v))
    groups: dict[tuple[Any, Any], list[Tensor]] = {}
    for v in values:
        if is_sharded(v):
            groups.setdefault((v.device_mesh, tuple(v.placements)), []).append(v)
    if not groups:
        return from_plain
    from torch.distributed.tensor import DTensor

    out = from_plain
    for (mesh, placements), vs in groups.items():
        local = torch.stack([v.to_local().double() for v in vs]).sum()
        out += float(DTensor.from_local(local, mesh, placements, run_check=False).full_tensor())
    return out


def gather_whole(g: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """The whole tensor of a sharded ``g`` on every rank, cast to ``dtype`` first (one
    all-gather of the cast rows)."""
    local = g if dtype is None else g.to(dtype)
    return local.full_tensor()


def local_rows(whole: Tensor, like: Tensor) -> Tensor:
    """``whole`` (the same on every rank) laid out as ``like``: each rank keeps its own
    slice of its own copy, no collective."""
    from torch.distributed.tensor import DTensor, Replicate

    mesh = like.device_mesh
    full = DTensor.from_local(whole, mesh, [Replicate()] * mesh.ndim, run_check=False)
    return full.redistribute(mesh, like.placements)


def map_whole(
    grads: list[Tensor],
    fn: Callable[[Tensor], Tensor],
    dtype: torch.dtype | None,
    cost: Callable[[torch.Size], float],
) -> list[Tensor]:
    """``fn`` of each sharded gradient's whole matrix, computed once, on its owner rank,
    and laid out as the gradient (``fn`` keeps the shape; the result travels in ``dtype``,
    or in the gradient's own with ``None``). ``cost(shape)`` balances the owners. Row
    shards take the share plan; any other layout is gathered whole on every rank; a plain
    tensor is already whole: computed here, or, within :func:`replicated`, on its owner
    and all-gathered."""
    out: list[Tensor] = list(grads)
    buckets: dict[tuple[Any, torch.dtype], list[int]] = {}
    same: dict[torch.dtype, list[int]] = {}
    group = _REPLICATED[0]
    for i, g in enumerate(grads):
        if not is_sharded(g) and group is not None:
            same.setdefault(dtype or g.dtype, []).append(i)
        elif not is_sharded(g):
            out[i] = fn(g)
        elif _row_shards(g):
            buckets.setdefault((g.device_mesh, dtype or g.dtype), []).append(i)
        else:
            out[i] = local_rows(fn(gather_whole(g, dtype)), g)
    for (mesh, travel), index in buckets.items():
        results = _exchange([grads[i] for i in index], fn, travel, mesh, cost)
        for i, r in zip(index, results, strict=True):
            out[i] = r
    for travel, index in same.items():
        results = _share_replicated([grads[i] for i in index], fn, travel, group, cost)
        for i, r in zip(index, results, strict=True):
            out[i] = r
    return out


# The process group whose ranks hold the same plain tensors (DDP's replicated parameters)
# while :func:`replicated` is active; None: a plain tensor is this process's own.
_REPLICATED: list[Any] = [None]


@contextlib.contextmanager
def replicated(group: Any = None) -> Iterator[None]:
    """Declare that, within this block, the optimizer's plain tensors are the same on every
    rank of ``group`` (default: the default group) — as DDP keeps parameters and averaged
    gradients. :func:`map_whole` then computes each matrix on one rank and all-gathers the
    results (Keller Jordan's distributed Muon), instead of every rank computing every
    matrix. ``descend.fit`` enters it under DDP with a descend optimizer. Every rank must
    step the same parameters (not under ``ZeroRedundancyOptimizer``, whose ranks each step
    their own). On one process it changes nothing.
    """
    import torch.distributed as dist

    active = dist.is_available() and dist.is_initialized() and dist.get_world_size(group) > 1
    before = _REPLICATED[0]
    _REPLICATED[0] = (group or dist.group.WORLD) if active else None
    try:
        yield
    finally:
        _REPLICATED[0] = before


def _share_replicated(
    grads: list[Tensor], fn: Callable[[Tensor], Tensor], dtype: torch.dtype, group: Any, cost: Any
) -> list[Tensor]:
    """Each rank computes its share of ``fn`` over tensors every rank holds alike; one
    all-gather (each rank's results, padded to the largest share) gives every rank all,
    or one broadcast when a single rank holds every result (a call with one matrix: the
    all-gather would carry the other ranks' padding, as much again at 2 ranks)."""
    import torch.distributed as dist

    n, me = dist.get_world_size(group), dist.get_rank(group)
    owner = _owners(("replicated", group), [cost(g.shape) for g in grads], n)
    share = [sum(g.numel() for g, o in zip(grads, owner, strict=True) if o == r) for r in range(n)]
    mine = [fn(g).to(dtype).reshape(-1) for g, o in zip(grads, owner, strict=True) if o == me]
    holders = [r for r in range(n) if share[r]]
    if len(holders) == 1:
        (src,) = holders
        everyone = torch.cat(mine) if me == src else grads[0].new_empty(share[src], dtype=dtype)
        dist.broadcast(everyone, src=dist.get_global_rank(group, src), group=group)
        starts = [0] * n
    else:
        width = max(share)
        local = torch.cat([*mine, grads[0].new_zeros(width - share[me], dtype=dtype)])
        everyone = local.new_empty(n * width)
        dist.all_gather_into_tensor(everyone, local, group=group)
        starts = [r * width for r in range(n)]
    out = []
    for g, o in zip(grads, owner, strict=True):
        out.append(everyone[starts[o] : starts[o] + g.numel()].view(g.shape))
        starts[o] += g.numel()
    return out


def _exchange(
    grads: list[Any], fn: Callable[[Tensor], Tensor], dtype: torch.dtype, mesh: Any, cost: Any
) -> list[Tensor]:
    import torch.distributed as dist

    n, me, group = mesh.size(), mesh.get_local_rank(), mesh.get_group()
    cols = [math.prod(g.shape[1:]) for g in grads]
    chunk = [math.ceil(g.shape[0] / n) for g in grads]
    piece = [c * b for c, b in zip(chunk, cols, strict=True)]
    owner = _owners(mesh, [cost(g.shape) for g in grads], n)
    mine = [i for i in range(len(grads)) if owner[i] == me]
    per_owner = [sum(piece[i] for i in range(len(grads)) if owner[i] == o) for o in range(n)]
    rows = [g.to_local().to(dtype).reshape(-1, b) for g, b in zip(grads, cols, strict=True)]

    # Every rank sends each owner its rows of the owner's matrices, padded to c rows.
    send = torch.cat(
        [
            _padded(rows[i], chunk[i]).reshape(-1)
            for o in range(n)
            for i in range(len(grads))
            if owner[i] == o
        ]
        or [rows[0].new_empty(0)]
    )
    received = send.new_empty(n * per_owner[me])
    dist.all_to_all_single(received, send, [per_owner[me]] * n, per_owner, group=group)

    # Each owner puts its matrices together (rank r's rows after rank r-1's) and computes.
    by_rank = received.view(n, per_owner[me])
    results = []
    offset = 0
    for i in mine:
        a = grads[i].shape[0]
        pieces = by_rank[:, offset : offset + piece[i]].reshape(n * chunk[i], cols[i])
        whole = pieces[:a].reshape(grads[i].shape)
        offset += piece[i]
        result = fn(whole).to(dtype).reshape(a, cols[i])
        results.append(_padded(result, n * chunk[i]).reshape(n, piece[i]))

    # ... and sends every rank its rows of every result.
    back = torch.cat([r[k] for k in range(n) for r in results] or [send.new_empty(0)])
    mine_back = send.new_empty(sum(per_owner))
    dist.all_to_all_single(mine_back, back, per_owner, [per_owner[me]] * n, group=group)

    out = []
    starts = [sum(per_owner[:o]) for o in range(n)]
    for i, g in enumerate(grads):
        o = owner[i]
        start = starts[o]
        starts[o] += piece[i]
        local = g.to_local()
        mine_rows = mine_back[start : start + piece[i]].view(chunk[i], cols[i])[: local.shape[0]]
        out.append(_as_sharded(mine_rows.reshape(local.shape), g))
    return out
