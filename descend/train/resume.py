"""What a resumable checkpoint holds, and how a run picks up from one exactly.

The payload is built from plain values and tensors only (``weights_only`` safe):

- ``model``, ``optimizer``, ``scheduler`` (a torch ``LRScheduler``'s state, or ``None``);
- ``loop``: ``step`` (updates done), ``epoch`` (1-based, in progress), ``batch``
  (batches of that epoch done), ``seed`` (the data order of every epoch is a pure
  function of seed and epoch), ``lr_scale`` (halved by rollbacks), ``skipped``,
  ``elapsed`` (seconds), ``settings`` (what the data order and ``epoch`` and ``batch``
  depend on: the batch size, the number of samples, whether epochs shuffle, the seed; a
  resume with other values is refused, as it would not continue the same run);
- ``rng``: the torch CPU generator (dropout and any other global randomness) and,
  when CUDA is in use, the CUDA generators;
- ``callbacks``: each callback's ``state_dict()``, keyed by class name and occurrence;
- ``stop``: the stopping criterion's ``state_dict()`` when it has one;
- ``history``: the history so far, as lists of dicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from descend._validation import InvalidParameterError
from descend.train.callback import Callback
from descend.train.history import History
from descend.train.state import TrainState


@dataclass
class LoopExtras:
    """The loop's own counters that callbacks do not see."""

    seed: int
    lr_scale: float = 1.0
    skipped: int = 0
    elapsed: float = 0.0
    # What the position in the data (epoch, batch) is counted in; see check_settings.
    settings: dict[str, Any] = field(default_factory=dict)


def _keys(callbacks: Sequence[Callback]) -> list[str]:
    # "EarlyStopping#0", "EarlyStopping#1", ...: stable when the automatic callbacks
    # (progress bar, clipping) differ between the interrupted and the resumed call.
    seen: dict[str, int] = {}
    keys = []
    for cb in callbacks:
        name = type(cb).__name__
        keys.append(f"{name}#{seen.get(name, 0)}")
        seen[name] = seen.get(name, 0) + 1
    return keys


def make_payload(
    state: TrainState,
    extras: LoopExtras,
    *,
    scheduler: Any,
    stop: Any,
    callbacks: Sequence[Callback],
    scaler: Any = None,
) -> dict[str, Any]:
    """Everything needed to continue the run exactly from this moment (with float16, the
    gradient scaler's scale and growth count: a resumed run scales as the first would)."""
    rng: dict[str, Any] = {"torch": torch.get_rng_state(), "cuda": []}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    stop_state = stop.state_dict() if stop is not None and hasattr(stop, "state_dict") else None
    epoch, batch = state.epoch, state.batch
    rows = state.history.epochs
    if batch >= state.batches_per_epoch and rows and rows[-1]["epoch"] == epoch:
        # Saved from an epoch-end callback (ModelCheckpoint): that epoch is complete,
        # so a resume starts the next one instead of ending this one twice.
        epoch, batch = epoch + 1, 0
    return {
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "scaler": None if scaler is None else scaler.state_dict(),
        "loop": {
            "step": state.step,
            "epoch": epoch,
            "batch": batch,
            "seed": extras.seed,
            "lr_scale": extras.lr_scale,
            "skipped": extras.skipped,
            "elapsed": extras.elapsed,
            "settings": dict(extras.settings),
        },
        "rng": rng,
        "callbacks": {k: cb.state_dict() for k, cb in zip(_keys(callbacks), callbacks)},
        "stop": stop_state,
        "history": state.history.to_dict(),
    }


def check_settings(loop: Mapping[str, Any], settings: Mapping[str, Any], source: str) -> None:
    """Refuse to resume the checkpoint's ``loop`` with other ``settings`` than it was
    written with: its ``epoch`` and ``batch`` count batches of those settings, so the
    run would go on from another place in the data than where it stopped. Checkpoints
    written before the settings were recorded are not checked."""
    saved = loop.get("settings") or {}
    for key, value in settings.items():
        if key in saved and saved[key] != value:
            raise InvalidParameterError(
                f"cannot resume: the checkpoint {source} was written by a run with "
                f"{key}={saved[key]!r}; this call has {key}={value!r}. It stopped at step "
                f"{loop['step']}, with {loop['batch']} of epoch {loop['epoch']}'s batches "
                f"done, counted in that run's batches: it can only be continued with "
                f"{key}={saved[key]!r}. To start over instead, do not resume, or use "
                "another checkpoint folder."
            )


def restore_payload(
    payload: dict[str, Any],
    state: TrainState,
    *,
    scheduler: Any,
    stop: Any,
    callbacks: Sequence[Callback],
    settings: Mapping[str, Any],
    source: str,
    scaler: Any = None,
) -> LoopExtras:
    """Load a :func:`make_payload` dict into the live objects; return the loop's counters.

    ``settings`` (the batch size, the number of samples, shuffling, the seed) are first compared
    with those the checkpoint was written with (:func:`check_settings`; ``source`` names
    the file in the message): nothing is loaded when they differ."""
    loop = payload["loop"]
    check_settings(loop, settings, source)
    if "model" in payload:  # a sharded checkpoint has loaded them already (sharded_checkpoint)
        state.model.load_state_dict(payload["model"])
        state.optimizer.load_state_dict(payload["optimizer"])
    if scheduler is not None and payload.get("scheduler") is not None:
        scheduler.load_state_dict(payload["scheduler"])
    if stop is not None and payload.get("stop") is not None and hasattr(stop, "load_state_dict"):
        stop.load_state_dict(payload["stop"])
    if scaler is not None and payload.get("scaler") is not None:
        scaler.load_state_dict(payload["scaler"])
    saved = payload.get("callbacks", {})
    for key, cb in zip(_keys(callbacks), callbacks):
        if key in saved:
            cb.load_state_dict(saved[key])
    torch.set_rng_state(payload["rng"]["torch"])
    if payload["rng"]["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["rng"]["cuda"])
    state.step, state.epoch, state.batch = int(loop["step"]), int(loop["epoch"]), int(loop["batch"])
    restored = History.from_dict(payload["history"])
    state.history.steps[:] = restored.steps
    state.history.epochs[:] = restored.epochs
    return LoopExtras(
        seed=int(loop["seed"]),
        lr_scale=float(loop["lr_scale"]),
        skipped=int(loop["skipped"]),
        elapsed=float(loop["elapsed"]),
        settings=dict(settings),
    )
