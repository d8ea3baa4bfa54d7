"""``fit`` on several processes: torch.distributed's process group, DDP or FSDP2, and the
few places where the loop must agree across ranks.

A run is distributed when it was started by ``torchrun`` (the variables ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT`` are set) or when the
caller already initialized a process group. Then every rank runs the same loop on the
same global batch order (a pure function of seed and epoch, as in one process) and takes
its share of each global batch, ``batch[rank::world]``: the same samples as
``DistributedSampler`` gives when the global batch is ``world`` times its per-rank batch.

What is equal to the one-process run, and why:

- the gradient: each rank's loss is weighted by ``world * n_rank / n_batch`` before the
  backward pass, so the average that DDP (all-reduce) and FSDP2 (reduce-scatter) take is
  the mean over the whole global batch, also for a last batch that does not split evenly
  (a rank with no sample runs one sample at weight 0: DDP and FSDP2 need every rank in
  every collective);
- the logged loss and gradient norm: one all-reduce per update of the weighted losses and
  of the squared norms of each rank's gradient shards (a DTensor's local shard counts on
  its rank; a replicated gradient, as DDP's, counts once);
- the epoch's evaluation: every rank evaluates a share of each chunk, the sums are
  all-reduced;
- the decision to stop: one all-reduce of a flag per update, so a time limit or a
  signal that reaches one rank stops all of them at the same step.

The numbers differ from one process only by the order of float additions (the gradient
is summed over two halves, then averaged): see ``docs/scale.md`` for the tolerance.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from descend._validation import InvalidParameterError, OneOf, validate
from descend.train.batching import Batches

STRATEGIES = ("ddp", "fsdp")
"""How the model is wrapped: ``DistributedDataParallel`` or FSDP2's ``fully_shard``."""

TIMEOUT_ENV = "DESCEND_COLLECTIVE_TIMEOUT"
DEFAULT_TIMEOUT = 300.0
"""Seconds a collective waits for a silent peer before this rank gives up (env override)."""

_TORCHRUN = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


# Words of the errors gloo and NCCL raise when a peer is gone or silent (some are plain
# RuntimeErrors, not torch.distributed.DistError).
_COLLECTIVE_MARKS = ("gloo", "Gloo", "NCCL", "Connection closed", "Connection reset", "Timed out")


class PeerFailure(RuntimeError):
    """A collective failed: a peer died, hung past the timeout, or the network broke."""


def launched_by_torchrun() -> bool:
    """Whether this process is one of a ``torchrun`` job's workers."""
    return all(name in os.environ for name in _TORCHRUN)


def collective_timeout() -> float:
    """Seconds before a collective gives up on a silent peer (``DESCEND_COLLECTIVE_TIMEOUT``)."""
    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise InvalidParameterError(
            f"The {TIMEOUT_ENV} environment variable must be a number of seconds > 0. "
            f"Got {raw!r} instead."
        )
    return value


@dataclass
class Ranks:
    """This process's place in the job and what the loop does differently there."""

    rank: int
    world: int
    device: torch.device
    strategy: str
    timeout: float

    @property
    def is_main(self) -> bool:
        """Rank 0 logs and writes the loop's part of a checkpoint."""
        return self.rank == 0

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """DDP around ``model``, or FSDP2 applied to it in place (each child with
        parameters sharded on its own, then the root), as the FSDP2 tutorial does."""
        if self.strategy == "ddp":
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            return DistributedDataParallel(model, device_ids=ids)
        from torch.distributed.fsdp import fully_shard

        for child in model.children():
            if any(p.requires_grad for p in child.parameters()):
                fully_shard(child)
        fully_shard(model)
        return model

    def share(self, batches: Batches, order: torch.Tensor | None, b: int) -> tuple[Any, Any, float]:
        """This rank's part of global batch ``b``, and the weight of its mean loss."""
        start, stop = b * batches.size, min((b + 1) * batches.size, batches.n)
        n = stop - start
        mine = len(range(self.rank, n, self.world))
        if mine == 0:  # a last batch smaller than the world: take part at weight 0
            x, y = batches.batch(order, b, part=(0, n))
            return x, y, 0.0
        x, y = batches.batch(order, b, part=(self.rank, self.world))
        return x, y, self.world * mine / n

    def loss_and_grad_norm(
        self, weighted: torch.Tensor, grads: list[torch.Tensor], measure: bool
    ) -> tuple[float, float | None]:
        """The global batch's loss and the global gradient norm, in one all-reduce.

        ``weighted`` is this rank's loss times ``weight``; their sum over ranks divided by
        the world is the global batch's mean loss.
        """
        from torch.distributed.tensor import DTensor  # on first use: a slow import

        mine = torch.zeros(2, dtype=torch.float64, device=self.device)
        mine[0] = weighted.detach().to(torch.float64) / self.world
        if measure and grads:
            local = [g.to_local() if isinstance(g, DTensor) else g for g in grads]
            counted = [
                t
                for g, t in zip(grads, local, strict=True)
                if _sharded(g) or self.rank == 0  # a replicated gradient counts once
            ]
            if counted:
                norms = torch._foreach_norm(counted)
                mine[1] = torch.stack([n.to(torch.float64) for n in norms]).square().sum()
        dist.all_reduce(mine)
        loss, sumsq = mine.tolist()
        return loss, (sumsq**0.5 if measure else None)

    def agree_to_stop(self, stop: bool) -> bool:
        """True on every rank when any rank wants to stop."""
        flag = torch.tensor([1.0 if stop else 0.0], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def evaluate(
        self,
        model: torch.nn.Module,
        batches: Batches,
        loss: Callable[[Any, Any], Any],
        metrics: Mapping[str, Callable[[Any, Any], Any]],
        *,
        prefix: str,
    ) -> dict[str, float]:
        """As :func:`descend.train.evaluate.evaluate`, each chunk shared among the ranks."""
        was_training = model.training
        model.eval()
        names = ("loss", *metrics)
        sums = torch.zeros(len(names), dtype=torch.float64, device=self.device)
        try:
            with torch.no_grad():
                for x, y in batches.chunks():
                    n = len(y)
                    if self.rank >= n:  # every rank runs every forward pass (FSDP2)
                        model(x[:1])
                        continue
                    x, y = x[self.rank :: self.world], y[self.rank :: self.world]
                    out = model(x)
                    fns = (loss, *metrics.values())
                    for i, fn in enumerate(fns):
                        sums[i] += float(fn(out, y)) * len(y)
            dist.all_reduce(sums)
        finally:
            model.train(was_training)
        return {f"{prefix}_{name}": v / batches.n for name, v in zip(names, sums.tolist())}

    @contextlib.contextmanager
    def failures(self, step: Callable[[], int]) -> Iterator[None]:
        """Turn a failed collective into a :class:`PeerFailure` naming this rank and the
        step in progress (``step()``); other errors pass through unchanged."""
        try:
            yield
        except BaseException as exc:
            # Leave at once: the peers may be waiting in a collective this rank will never
            # join; torchrun stops them when this process exits (see leave).
            _FAILED[0] = True
            if not isinstance(exc, RuntimeError | dist.DistError):
                raise
            text = str(exc)
            if not isinstance(exc, dist.DistError) and not any(
                mark in text for mark in _COLLECTIVE_MARKS
            ):
                raise
            raise PeerFailure(
                f"rank {self.rank} of {self.world} stopped during step {step()}: a collective "
                f"failed (a peer died, or did not answer within the {self.timeout:g} s "
                f"timeout, {TIMEOUT_ENV}): {text.splitlines()[0] if text else type(exc).__name__}"
            ) from exc


# Set when a step raised: the process then exits without the leaving barrier, which would
# otherwise wait out the collective timeout on a peer stuck in the step's collective.
_FAILED = [False]


# How long a leaving rank lets gloo's worker threads run before the interpreter finalizes.
# A worker wakes the waiter of a collective first and drops the collective's tensors after;
# a worker that drops them once the interpreter is finalizing needs the GIL, is stopped
# by Python (pthread_exit) and aborts the process: "terminate called without an active
# exception", SIGABRT, after every result was written. Seen in CI, and here about once in
# 17 sharded round trips under load (a core dump's backtrace: ProcessGroupGloo::runLoop ->
# ~AsyncAllgatherCoalescedWork -> decref_pyobject -> take_gil -> pthread_exit). DDP and
# FSDP2 keep the group, and its threads, alive past destroy_process_group, so destroying it
# does not join them; sleeping releases the GIL, and the workers finish first.
_LET_GO = 0.1


def leave() -> None:
    """Leave the job's process group at the end of a run: wait for the peers (gloo, at
    most 2 s), destroy the group, and give gloo's threads a moment to release their
    last collective before the interpreter finalizes (see ``_LET_GO``).

    ``fit`` calls it when the process exits, for a group it created (after a failed step,
    only the pause: a peer may be stuck in a collective). A script that initialized its
    own group calls it instead of ``destroy_process_group``.
    """
    if not dist.is_initialized():
        return
    gloo = dist.get_backend() == "gloo"
    if _FAILED[0]:
        if gloo:
            time.sleep(_LET_GO)
        return
    if gloo:
        # Leave together: a peer whose process is gone is skipped after 2 s at most.
        with contextlib.suppress(Exception):
            dist.monitored_barrier(timeout=datetime.timedelta(seconds=2))
    dist.destroy_process_group()
    if gloo:
        time.sleep(_LET_GO)


def is_main_process() -> bool:
    """True in one process, and on rank 0 of a distributed job: the one that writes files."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def full_model_state(model: torch.nn.Module) -> dict[str, Any]:
    """The model's whole state dict on the CPU (gathered from every rank under FSDP2;
    collective when a process group exists), keyed as the unwrapped model's."""
    if not (dist.is_available() and dist.is_initialized()):
        return model.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=options)


def _sharded(g: torch.Tensor) -> bool:
    placements = getattr(g, "placements", ())  # a DTensor's
    return any(p.is_shard() for p in placements)


def setup(strategy: str, device: torch.device) -> Ranks | None:
    """The run's :class:`Ranks` when it is distributed, else ``None``.

    Initializes the process group (gloo on the CPU, NCCL on CUDA) when torchrun started
    this process and nobody initialized it yet; on CUDA each rank takes the device
    ``cuda:LOCAL_RANK``.
    """
    validate("fit", {"strategy": strategy}, {"strategy": OneOf(STRATEGIES)})
    initialized = dist.is_available() and dist.is_initialized()
    if not initialized and not launched_by_torchrun():
        return None
    timeout = collective_timeout()
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not initialized:
        wait = datetime.timedelta(seconds=timeout)
        store, rank, world = next(dist.rendezvous("env://", timeout=wait))
        # The agent's store outlives a restart: without a prefix per attempt, a restarted
        # rank can read the dead attempt's gloo addresses and fail to connect.
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo",
            store=dist.PrefixStore(f"descend/attempt-{attempt}", store),
            rank=rank,
            world_size=world,
            timeout=wait,
            device_id=device if device.type == "cuda" else None,
        )
        # Kept after fit returns: an FSDP2 model needs the group for every forward pass
        # (the caller's evaluation, its full state dict); destroyed when the process ends.
        atexit.register(leave)
    return Ranks(
        rank=dist.get_rank(),
        world=dist.get_world_size(),
        device=device,
        strategy=strategy,
        timeout=timeout,
    )


def check_arguments(ranks: Ranks, optimizer: Any, callbacks: Sequence[Any]) -> None:
    """What a distributed ``fit`` refuses: a ``ModelCheckpoint`` (its files are one
    process's; ``checkpoint_dir=`` writes sharded checkpoints), and under FSDP2 a built
    optimizer (``fully_shard`` replaces the parameters with sharded ones, so an optimizer
    built before would update the old tensors)."""
    from descend.train.model_checkpoint import ModelCheckpoint

    if any(isinstance(cb, ModelCheckpoint) for cb in callbacks):
        raise InvalidParameterError(
            "ModelCheckpoint writes one process's files; a distributed fit writes sharded "
            "checkpoints with checkpoint_dir= (and checkpoint_every=) instead."
        )
    if ranks.strategy == "fsdp" and isinstance(optimizer, torch.optim.Optimizer):
        raise InvalidParameterError(
            "fit(strategy='fsdp') shards the model's parameters, so it must build the "
            "optimizer itself: give optimizer= as a registry name or an Optimizer class "
            f"(with optimizer_options=). Got a built {type(optimizer).__name__} instead."
        )
