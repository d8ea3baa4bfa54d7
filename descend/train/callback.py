"""The callback protocol: hooks the loop calls at fixed points, and state saved in checkpoints."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from descend.train.state import TrainState

HOOKS = ("on_fit_start", "on_before_optimizer_step", "on_step_end", "on_epoch_end", "on_fit_end")


class Callback:
    """Base class of the loop's callbacks; override the hooks you need.

    The loop calls, in order: ``on_fit_start`` once; per update
    ``on_before_optimizer_step`` (gradients computed and finite, update not yet
    taken: the place to clip) and ``on_step_end`` (the step row is in
    ``state.history.steps``); ``on_epoch_end`` after each completed epoch (the
    epoch row, with validation metrics, is in ``state.history.epochs``); and
    ``on_fit_end`` once, however the run ended (also on an exception).

    Anything a callback needs to continue exactly after a resume goes in
    :meth:`state_dict`, which must hold tensors, numbers, strings, lists and
    dicts only.
    """

    def on_fit_start(self, state: TrainState) -> None:
        """Called once before the first update (also when resuming)."""

    def on_before_optimizer_step(self, state: TrainState) -> None:
        """Called after backward and the non-finite check, before ``optimizer.step()``."""

    def on_step_end(self, state: TrainState) -> None:
        """Called after each update, once its row is in ``state.history.steps``."""

    def on_epoch_end(self, state: TrainState) -> None:
        """Called after each completed epoch, once its row is in ``state.history.epochs``."""

    def on_fit_end(self, state: TrainState) -> None:
        """Called once when the run ends, whatever ended it."""

    def state_dict(self) -> dict[str, Any]:
        """What this callback must remember across a resume (plain values and tensors)."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`; stateless callbacks ignore it."""


class Hooks:
    """The callbacks' overridden hooks, gathered once so the loop calls only real work."""

    def __init__(self, callbacks: Sequence[Callback]) -> None:
        self.callbacks = list(callbacks)
        self._bound: dict[str, list[Callable[[TrainState], None]]] = {
            name: [
                getattr(cb, name)
                for cb in self.callbacks
                if getattr(type(cb), name) is not getattr(Callback, name)
            ]
            for name in HOOKS
        }
        self.fit_start = self._caller("on_fit_start")
        self.before_optimizer_step = self._caller("on_before_optimizer_step")
        self.step_end = self._caller("on_step_end")
        self.epoch_end = self._caller("on_epoch_end")
        self.fit_end = self._caller("on_fit_end")

    def _caller(self, name: str) -> Callable[[TrainState], None]:
        bound = self._bound[name]

        def call(state: TrainState) -> None:
            for hook in bound:
                hook(state)

        return call
