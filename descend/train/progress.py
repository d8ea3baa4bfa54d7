"""A tqdm progress bar over updates: epoch, step, loss, learning rate and rate."""

from __future__ import annotations

import sys
import time
from typing import Any

from tqdm.auto import tqdm

from descend.train.callback import Callback
from descend.train.state import TrainState


class ProgressBar(Callback):
    """Show the run's progress on standard error with tqdm.

    The bar counts updates (its total is known when ``max_steps`` or ``epochs`` is
    set) and shows the rate; its postfix shows the epoch, the last batch loss, the
    learning rate and, after each epoch, the validation loss. The postfix is
    refreshed at most every ``refresh_interval`` seconds so the bar costs almost
    nothing per update.

    Args:
        disable: ``True`` hides the bar; ``None`` (default) shows it only when
            standard error is a terminal.
        refresh_interval: least seconds between postfix refreshes, ``>= 0``.
        desc: a label in front of the bar (a comparison names the optimizer and seed).
        leave: keep the finished bar on screen.
        position: the terminal line of the bar (under an outer bar at 0).
    """

    def __init__(
        self,
        *,
        disable: bool | None = None,
        refresh_interval: float = 0.2,
        desc: str | None = None,
        leave: bool = True,
        position: int | None = None,
    ) -> None:
        self.disable = disable
        self.refresh_interval = float(refresh_interval)
        self.desc, self.leave, self.position = desc, leave, position
        self._bar: Any = None
        self._last = 0.0
        self._val = ""

    def on_fit_start(self, state: TrainState) -> None:
        disable = not sys.stderr.isatty() if self.disable is None else self.disable
        total = state.max_steps
        if state.max_epochs is not None:
            by_epochs = state.max_epochs * state.batches_per_epoch
            total = by_epochs if total is None else min(total, by_epochs)
        self._bar = tqdm(
            total=total,
            initial=state.step,
            unit="step",
            disable=disable,
            file=sys.stderr,
            dynamic_ncols=True,
            leave=self.leave,
            desc=self.desc,
            position=self.position,
        )

    def on_step_end(self, state: TrainState) -> None:
        self._bar.update(1)
        now = time.perf_counter()
        if now - self._last >= self.refresh_interval:
            self._last = now
            self._postfix(state)

    def _postfix(self, state: TrainState) -> None:
        lr = state.lrs[0] if state.lrs else float("nan")
        text = f"epoch {state.epoch}, step {state.step}, loss {state.loss:.4g}, lr {lr:.3g}"
        self._bar.set_postfix_str(text + self._val, refresh=False)

    def on_epoch_end(self, state: TrainState) -> None:
        row = state.history.epochs[-1]
        if "val_loss" in row:
            self._val = f", val_loss {row['val_loss']:.4g}"
        self._postfix(state)

    def on_fit_end(self, state: TrainState) -> None:
        if self._bar is not None:
            if state.batch:  # ended mid-epoch: the last postfix may be up to one interval old
                self._postfix(state)
            self._bar.close()
            self._bar = None
