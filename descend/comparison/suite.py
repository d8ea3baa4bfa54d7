"""Optimizers compared across several tasks: one comparison per task, then performance profiles.

``DIR/<task>/`` is each task's own comparison folder (resumable on its own);
``DIR/suite.json`` and ``DIR/report.html`` hold the steps-to-target table and the
performance profile over the tasks finished so far.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from descend._validation import InvalidParameterError
from descend.comparison.folder import check_writable, existing_entries
from descend.comparison.run import SEED_OPTIMIZERS, Comparison, compare, resume
from descend.report import write_text_atomic
from descend.report.suite_page import write_suite

SUITE_FILE = "suite-plan.json"


@dataclass
class Suite:
    """What :func:`compare_tasks` leaves: one :class:`Comparison` per task run so far."""

    folder: Path
    tasks: list[str]
    comparisons: dict[str, Comparison] = field(default_factory=dict)
    interrupted_by: str = ""
    written: dict[str, Path] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        return [
            t for t in self.tasks if t not in self.comparisons or not self.comparisons[t].complete
        ]


def _cost(summary: dict[str, Any] | None) -> dict[str, float | None]:
    if not summary:
        return {}
    out = {}
    for name, per in summary["optimizers"].items():
        # Mean over the seeds that reached the target, and only if they all did: a seed
        # that never got there makes the optimizer's cost on this task unknown (infinite).
        reached, seeds = per.get("reached_target", 0), len(per.get("seeds") or [])
        out[name] = per["steps_to_target"]["mean"] if seeds and reached == seeds else None
    return out


def compare_tasks(
    tasks: Sequence[str],
    optimizers: Iterable[str] = SEED_OPTIMIZERS,
    *,
    out: str | Path,
    resume_suite: bool = False,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
    **settings: Any,
) -> Suite:
    """:func:`~descend.comparison.compare` on each task into ``out/<task>/``, then the profile.

    Args:
        tasks: registry names.
        resume_suite: continue a suite in ``out``: finished tasks are kept, a task started
            before is resumed, the others start.
        settings: passed to :func:`compare` for every task (seeds, epochs, budget, ...).

    Returns:
        The :class:`Suite`; it stops at the first task a signal interrupted.
    """
    folder = Path(out)
    tasks = list(tasks)
    optimizers = list(optimizers)
    plan_path = folder / SUITE_FILE
    if resume_suite:
        if not plan_path.exists():
            raise InvalidParameterError(
                f"cannot resume {str(folder)!r}: it holds no comparison across tasks "
                f"({SUITE_FILE} is missing)."
            )
        saved = json.loads(plan_path.read_text(encoding="utf-8"))
        tasks, optimizers = saved["tasks"], saved["optimizers"]
    else:
        check_writable(folder)
        entries = existing_entries(folder)
        if entries and not overwrite:
            raise InvalidParameterError(
                f"the output folder {str(folder)!r} already holds files ({', '.join(entries[:5])}). "
                f"Continue with --resume {folder}, replace with --overwrite, or choose another --out."
            )
        write_text_atomic(
            plan_path, json.dumps({"tasks": tasks, "optimizers": optimizers}, indent=2) + "\n"
        )
    suite = Suite(folder, tasks)
    for task in tasks:
        sub = folder / task
        if log is not None:
            log(f"== {task} ==")
        if (sub / "compare.json").exists():
            result = resume(sub, log=log)
        else:
            result = compare(task, optimizers, out=sub, overwrite=overwrite, log=log, **settings)
        suite.comparisons[task] = result
        if result.interrupted_by:
            suite.interrupted_by = result.interrupted_by
            break
    costs = {t: _cost(c.summary) for t, c in suite.comparisons.items()}
    costs.update({t: {} for t in tasks if t not in costs})
    verdicts = {t: (c.summary or {}).get("verdict", "") for t, c in suite.comparisons.items()}
    notice = None
    if suite.missing:
        notice = (
            f"Incomplete: {len(tasks) - len(suite.missing)} of {len(tasks)} tasks finished; "
            f"continue with: descend compare --resume {folder}"
        )
    suite.written = write_suite(
        folder, costs=costs, verdicts=verdicts, missing=suite.missing, notice=notice
    )
    return suite
