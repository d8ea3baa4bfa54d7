"""What a comparison was asked to do, saved in its folder as ``compare.json``.

The plan is everything that decides the runs' numbers: the task, the optimizers,
the seeds and the recipe. ``descend compare --resume DIR`` reads it back, so a
resumed comparison runs the same recipe; a change is refused unless the caller
allows it, and an allowed change is recorded with the runs it affects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from descend._validation import InvalidParameterError
from descend.report import write_text_atomic

PLAN_FILE = "compare.json"
FORMAT = 1


@dataclass(frozen=True)
class Plan:
    """The settings of a comparison (see :func:`descend.comparison.compare` for each)."""

    task: str
    optimizers: tuple[str, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int | None = None
    batch_size: int | None = None
    lrs: Mapping[str, float] = field(default_factory=dict)
    schedule: str = "constant"
    max_steps: int | None = None
    on_nonfinite: str = "raise"
    checkpoint_every: int | None = None
    budget: int | None = None
    tune: str = "grid"

    def runs(self) -> list[tuple[str, int]]:
        """``(optimizer, seed)`` in the order they run: all seeds of one optimizer, then the next."""
        return [(name, seed) for name in self.optimizers for seed in self.seeds]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["optimizers"], d["seeds"], d["lrs"] = (
            list(self.optimizers),
            list(self.seeds),
            dict(self.lrs),
        )
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        known = {f.name for f in fields(cls)}
        given = {k: v for k, v in d.items() if k in known}
        given["optimizers"] = tuple(given.get("optimizers", ()))
        given["seeds"] = tuple(given.get("seeds", ()))
        given["lrs"] = dict(given.get("lrs") or {})
        return cls(**given)

    def changed(self, **changes: Any) -> Plan:
        """This plan with the given settings replaced (``None`` leaves a setting as it is)."""
        given = {k: v for k, v in changes.items() if v is not None}
        unknown = sorted(set(given) - {f.name for f in fields(self)})
        if unknown:
            raise InvalidParameterError(
                f"Unknown comparison setting(s) {unknown}. "
                f"Valid: {', '.join(f.name for f in fields(self))}."
            )
        for key in ("optimizers", "seeds"):
            if key in given:
                given[key] = tuple(given[key])
        return replace(self, **given)

    def differences(self, other: Plan) -> dict[str, dict[str, Any]]:
        """``{setting: {"was": ..., "now": ...}}`` for each setting that differs."""
        a, b = self.to_dict(), other.to_dict()
        return {k: {"was": a[k], "now": b[k]} for k in a if a[k] != b[k]}


def save_plan(folder: Path, plan: Plan, changes: Sequence[Mapping[str, Any]] = ()) -> Path:
    """Write ``compare.json``: the plan and the changes allowed on resume, in order."""
    state = {"format": FORMAT, "plan": plan.to_dict(), "changes": list(changes)}
    return write_text_atomic(folder / PLAN_FILE, json.dumps(state, indent=2) + "\n")


def load_plan(folder: Path) -> tuple[Plan, list[dict[str, Any]]]:
    """The plan and the recorded changes of the comparison in ``folder``.

    Raises:
        InvalidParameterError: ``folder`` holds no comparison (nothing to resume).
    """
    path = folder / PLAN_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        plan = Plan.from_dict(state["plan"])
    except FileNotFoundError:
        raise InvalidParameterError(
            f"cannot resume {str(folder)!r}: it holds no comparison ({PLAN_FILE} is missing). "
            "Check the folder name, or start a new comparison with --out."
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidParameterError(
            f"cannot resume {str(folder)!r}: {path} is damaged ({exc})."
        ) from None
    return plan, list(state.get("changes") or [])


def change_entry(differences: Mapping[str, Any], finished: Sequence[str]) -> dict[str, Any]:
    """One entry of the ``changes`` list: when, what, and which runs kept the old settings."""
    return {
        "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "changed": dict(differences),
        "runs_finished_before": list(finished),
    }
