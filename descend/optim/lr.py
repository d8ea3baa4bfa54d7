"""The learning rate of a param group: one place, several writers.

The group's ``lr`` (torch's) is where the learning rate lives and what the update reads.
A float or 1-element tensor is the value itself; ``torch.optim.lr_scheduler`` classes and
descend's ``ReduceLROnPlateau`` callback change it between steps. A schedule given as
``lr=`` (any callable ``step -> lr``) is a thin writer of the same key: before update ``t``
(0-based) the group's ``lr`` becomes ``schedule(t)``. Written last, it wins; when
something else wrote the key since the previous step it says so once (a warning), since
one of the two was a mistake. The position ``t`` is kept in the group as
``lr_schedule_step`` and so saved with the state dict; the schedule is configuration,
given again when the optimizer is rebuilt.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from descend.optim._constraints import _is_schedule

Schedule = Callable[[int], float]


class GroupSchedules:
    """The schedules of an optimizer's param groups, by group index."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.schedules: dict[int, Schedule] = {}
        self._written: dict[int, float] = {}
        self._warned: set[int] = set()

    def __getstate__(self) -> dict[str, Any]:
        return {"owner": self.owner, "schedules": self.schedules}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["owner"])  # type: ignore[misc]
        self.schedules = state["schedules"]

    def adopt(self, index: int, group: dict[str, Any]) -> None:
        """Take over a new group's ``lr`` when it is a schedule (set its first value)."""
        if _is_schedule(group.get("lr")):
            self.schedules[index] = group["lr"]
            group.setdefault("lr_schedule_step", 0)
            group["lr"] = float(group["lr"](group["lr_schedule_step"]))

    def before_update(self, index: int, group: dict[str, Any]) -> bool:
        """Write the scheduled ``lr`` of group ``index``; ``False`` if it has no schedule."""
        schedule = self.schedules.get(index)
        if schedule is None:
            return False
        last = self._written.get(index)
        if last is not None and group["lr"] != last and index not in self._warned:
            self._warned.add(index)
            warnings.warn(
                f"The lr of param group {index} of {self.owner} is a schedule, which sets it "
                f"before every update: the value {group['lr']!r} written since the last step "
                "is replaced. Give the learning rate one way: a schedule as lr=, or a float "
                "lr with a torch LRScheduler or a callback.",
                stacklevel=5,
            )
        group["lr"] = self._written[index] = float(schedule(int(group["lr_schedule_step"])))
        return True

    def after_update(self, group: dict[str, Any]) -> None:
        group["lr_schedule_step"] = int(group["lr_schedule_step"]) + 1
