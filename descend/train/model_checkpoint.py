"""Save checkpoints at epoch ends: the best ``k`` by a monitored metric, and the last one."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from descend._validation import BOOL, Interval, OneOf, validate
from descend.train.callback import Callback
from descend.train.checkpoint import LAST, save_checkpoint
from descend.train.early_stopping import monitored
from descend.train.state import TrainState


class ModelCheckpoint(Callback):
    """Write resumable checkpoints into ``dirpath`` at the end of every ``every_n_epochs`` epochs.

    Each file is a full :func:`~descend.train.save_checkpoint` payload (model,
    optimizer, RNG states, history, ...): read it with
    :func:`~descend.train.load_checkpoint`, or with
    ``torch.load(path, weights_only=True)["payload"]["model"]`` for the weights.
    ``fit`` runs this callback after all others at each epoch end, so the files
    see every callback's state for that epoch.

    With ``monitor=None`` the ``save_top_k`` most recent files
    ``epoch={e}.pt`` are kept; with a monitor, the ``save_top_k`` best files
    ``epoch={e}-{monitor}={value}.pt``. ``save_top_k=-1`` keeps all, ``0`` none.
    ``save_last`` also writes ``last.pt`` (the previous one kept as
    ``last.prev.pt``), the file ``fit(..., checkpoint_dir=dirpath, resume=True)``
    continues from.

    Args:
        dirpath: the folder to write into (created when missing).
        monitor: a column of the epoch rows to rank files by, or ``None``.
        mode: ``"min"`` or ``"max"``: which values of ``monitor`` are best.
        save_top_k: how many ranked files to keep, an int ``>= -1``.
        save_last: also write ``last.pt``.
        every_n_epochs: save at epochs that are multiples of this, an int ``>= 1``.

    Attributes:
        best_model_path: the best kept file so far ("" before any);
        best_model_score: its monitored value (``nan`` without a monitor).
    """

    def __init__(
        self,
        dirpath: str | os.PathLike[str],
        monitor: str | None = None,
        mode: str = "min",
        save_top_k: int = 1,
        save_last: bool = True,
        every_n_epochs: int = 1,
    ) -> None:
        validate(
            "ModelCheckpoint",
            {
                "mode": mode,
                "save_top_k": save_top_k,
                "save_last": save_last,
                "every_n_epochs": every_n_epochs,
            },
            {
                "mode": OneOf(("min", "max")),
                "save_top_k": Interval(-1, None, closed="left", integer=True),
                "save_last": BOOL,
                "every_n_epochs": Interval(1, None, closed="left", integer=True),
            },
        )
        self.dirpath = Path(dirpath)
        self.monitor = monitor
        self.mode = mode
        self.save_top_k = int(save_top_k)
        self.save_last = save_last
        self.every_n_epochs = int(every_n_epochs)
        # (path, score, epoch) of the kept ranked files, best first.
        self.kept: list[tuple[str, float, int]] = []

    @property
    def best_model_path(self) -> str:
        return self.kept[0][0] if self.kept else ""

    @property
    def best_model_score(self) -> float:
        return self.kept[0][1] if self.kept else math.nan

    def _rank(self, entry: tuple[str, float, int]) -> tuple[float, int]:
        _, score, epoch = entry
        if self.monitor is None:
            return (0.0, -epoch)  # newest first
        if math.isnan(score):
            return (math.inf, -epoch)  # NaN ranks last
        return (score if self.mode == "min" else -score, -epoch)

    def on_epoch_end(self, state: TrainState) -> None:
        if state.epoch % self.every_n_epochs:
            return
        payload: dict[str, Any] | None = None
        if self.save_top_k != 0:
            if self.monitor is None:
                score, name = math.nan, f"epoch={state.epoch}.pt"
            else:
                score = monitored(state, self.monitor, "ModelCheckpoint")
                name = f"epoch={state.epoch}-{self.monitor}={score:.6g}.pt"
            path = str(self.dirpath / name)
            ranked = sorted([*self.kept, (path, score, state.epoch)], key=self._rank)
            keep = ranked if self.save_top_k < 0 else ranked[: self.save_top_k]
            evicted = [p for p, _, _ in self.kept if p not in {k[0] for k in keep}]
            # Update before building the payload, so a resume from this file knows it.
            self.kept = keep
            if any(p == path for p, _, _ in keep):
                payload = state.checkpoint_payload()
                save_checkpoint(path, payload)
            for old in evicted:
                Path(old).unlink(missing_ok=True)
        if self.save_last:
            save_checkpoint(
                self.dirpath / LAST, payload or state.checkpoint_payload(), keep_previous=True
            )

    def state_dict(self) -> dict[str, Any]:
        return {"kept": [[p, s, e] for p, s, e in self.kept]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.kept = [(str(p), float(s), int(e)) for p, s, e in state_dict["kept"]]
