"""Turn SIGINT and SIGTERM into a request to stop after the current update."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from descend.train.checkpoint import LAST

if TYPE_CHECKING:
    from descend.train.state import TrainState


@dataclass
class Interrupt:
    """The signal received during the run, if any."""

    signum: int | None = None

    @property
    def name(self) -> str:
        return "" if self.signum is None else signal.Signals(self.signum).name


@contextmanager
def catch_interrupts() -> Iterator[Interrupt]:
    """Record SIGINT/SIGTERM instead of dying; restore the previous handlers on exit.

    Handlers can only be installed from the main thread; elsewhere the signals
    keep their usual effect. A second SIGINT raises ``KeyboardInterrupt`` at once,
    for a user who does not want to wait for the current update.
    """
    flag = Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if flag.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag.signum = signum

    previous: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, signal.SIG_DFL if old is None else old)


def check_interrupt(
    interrupt: Interrupt, state: TrainState, checkpoint_dir: str | os.PathLike[str] | None
) -> None:
    """After a signal, end the run with a reason that says how to resume it."""
    if interrupt.signum is None or state.should_stop:
        return
    if checkpoint_dir is None:
        how = "no checkpoint_dir was given, so nothing was saved."
    else:
        how = (
            f"a checkpoint is in {str(Path(checkpoint_dir) / LAST)!r}; continue with "
            f"fit(..., checkpoint_dir={str(checkpoint_dir)!r}, resume=True)."
        )
    state.stop(f"Interrupted by {interrupt.name} after step {state.step}; {how}", success=False)
