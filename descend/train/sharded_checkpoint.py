"""Checkpoints of a run on several processes: ``torch.distributed.checkpoint`` for the model
and the optimizer, a :func:`~descend.train.checkpoint.save_checkpoint` file for the rest.

Layout under the run's ``checkpoint_dir``::

    sharded/step-00000040/         one checkpoint
        __0_0.distcp, ...          each rank's shards (DCP's files), .metadata
        loop.pt                    the loop's payload from rank 0 (history, counters, RNG,
                                   callbacks; ``descend.train.resume``), checksummed
        COMPLETE                   written last, by rank 0, after every rank's shards

A checkpoint is used only when it has ``COMPLETE``: rank 0 writes it after ``dcp.save``
returned (its ``.metadata`` is written once every rank's shards are) and after
``loop.pt``; a job killed at any moment before leaves a folder that is never read, so a
resume takes the newest complete one ("atomic at the run level"). The two newest
complete checkpoints are kept; older ones, and incomplete ones older than the newest
complete one, are removed by rank 0.

The model and optimizer go through ``get_state_dict``/``set_state_dict`` (fully
qualified parameter names, DTensor shards under FSDP2, the wrapper's ``module.`` prefix
removed under DDP), so a checkpoint written by 2 processes loads into 1 (or into a
plain, unwrapped model without a process group) and back: DCP reshards on load. On
several machines ``checkpoint_dir`` must be one shared file system.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from descend.train.checkpoint import LAST, CheckpointError, load_checkpoint, save_checkpoint
from descend.train.resume import check_settings

SHARDED = "sharded"
LOOP = "loop.pt"
COMPLETE = "COMPLETE"
KEEP = 2


def _order(folder: Path) -> tuple[int, int]:
    # "step-00000040" and, written later at the same step, "step-00000040-1", ...
    _, step, *again = folder.name.split("-")
    return int(step), int(again[0]) if again else 0


def _folders(directory: Path) -> list[Path]:
    """The checkpoint folders, newest first."""
    root = directory / SHARDED
    if not root.is_dir():
        return []
    return sorted(root.glob("step-*"), key=_order, reverse=True)


def _free_folder(directory: Path, step: int) -> Path:
    """Where to write the checkpoint of ``step``: a new folder, or one that a killed job
    left incomplete (a complete one is never overwritten: the run may end at the step it
    just checkpointed, and a kill during the rewrite must leave the first copy)."""
    base = directory / SHARDED / f"step-{step:08d}"
    again = 0
    while True:
        where = base if again == 0 else base.with_name(f"{base.name}-{again}")
        if not (where / COMPLETE).exists():
            shutil.rmtree(where, ignore_errors=True)
            where.mkdir(parents=True)
            return where
        again += 1


def has_sharded(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` holds sharded checkpoints (complete or not)."""
    return bool(_folders(Path(directory)))


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _is_main() -> bool:
    return not _distributed() or dist.get_rank() == 0


def _barrier() -> None:
    if _distributed():
        dist.barrier()


def save_sharded(
    directory: str | os.PathLike[str],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loop_payload: Mapping[str, Any],
    step: int,
) -> Path:
    """Write one checkpoint of ``model`` and ``optimizer`` (every rank its shards) and of
    ``loop_payload`` (rank 0's); collective: every rank calls it with the same ``step``.

    Returns:
        The checkpoint's folder.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    directory = Path(directory)
    chosen: list[Any] = [None]
    if _is_main():
        chosen = [str(_free_folder(directory, step))]
    if _distributed():
        dist.broadcast_object_list(chosen, src=0)
    where = Path(chosen[0])
    model_state, optim_state = get_state_dict(model, optimizer)
    dcp.save(
        {"model": model_state, "optimizer": optim_state},
        checkpoint_id=str(where),
        no_dist=not _distributed(),
    )
    if _is_main():
        rest = {k: v for k, v in loop_payload.items() if k not in ("model", "optimizer")}
        save_checkpoint(where / LOOP, rest)
        _write_marker(where / COMPLETE, step)
        _prune(directory, where)
    _barrier()
    return where


def _write_marker(path: Path, step: int) -> None:
    # Written to a temporary name and renamed: the marker exists whole or not at all.
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(f"{step}\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _prune(directory: Path, newest: Path) -> None:
    """Keep the :data:`KEEP` newest complete checkpoints; remove anything older."""
    keep = set([p for p in _folders(directory) if (p / COMPLETE).exists()][:KEEP])
    for folder in _folders(directory):
        if folder not in keep and _order(folder) < _order(newest):
            shutil.rmtree(folder, ignore_errors=True)


def _newest_complete(directory: Path) -> tuple[Path, dict[str, Any]] | None:
    errors: list[str] = []
    for folder in _folders(directory):
        if not (folder / COMPLETE).exists() or not (folder / ".metadata").exists():
            continue
        try:
            return folder, load_checkpoint(folder / LOOP)
        except CheckpointError as exc:
            errors.append(str(exc))
    if errors:
        raise CheckpointError(directory, "no intact sharded checkpoint: " + "; ".join(errors))
    return None


def load_sharded(
    directory: str | os.PathLike[str],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    settings: Mapping[str, Any] | None = None,
) -> tuple[Path, dict[str, Any]] | None:
    """Load the newest complete checkpoint into ``model`` and ``optimizer``; return its
    folder and loop payload, or ``None`` when there is none. Collective when a process
    group exists: rank 0 picks the checkpoint and every rank loads that one.

    ``settings`` are checked against the checkpoint's (``check_settings``) before
    anything is loaded.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    directory = Path(directory)
    chosen: list[Any] = [None]
    if _is_main():
        found = _newest_complete(directory)
        chosen = [None if found is None else str(found[0])]
    if _distributed():
        dist.broadcast_object_list(chosen, src=0)
    if chosen[0] is None:
        if (directory / LAST).exists():
            raise CheckpointError(
                directory,
                f"it holds a one-process checkpoint ({LAST}) and no sharded one; a run on "
                "several processes resumes only from sharded checkpoints. Continue it on one "
                "process, or run that job under torchrun (descend train --nproc 1), which "
                "writes sharded checkpoints that any number of processes can resume.",
            )
        return None
    where = Path(chosen[0])
    payload = load_checkpoint(where / LOOP)
    if settings is not None:
        check_settings(payload["loop"], settings, str(where))
    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optimizer": optim_state}
    dcp.load(state, checkpoint_id=str(where), no_dist=not _distributed())
    set_state_dict(
        model,
        optimizer,
        model_state_dict=state["model"],
        optim_state_dict=state["optimizer"],
    )
    return where, payload
