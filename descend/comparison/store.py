"""Where each run of a comparison lives on disk, and the report rebuilt from it.

``DIR/runs/<optimizer>-seed<k>.json`` is a finished run (its history, summary,
settings and gradient-health records), written atomically when the run ends: its
presence is what "finished" means. ``DIR/checkpoints/<optimizer>-seed<k>/`` holds
the checkpoint of the run in progress. ``metrics.csv`` grows by each run's rows;
``summary.json``, ``config.yaml``, the figures and ``report.html`` are rebuilt from
the finished runs after every run, marked incomplete while any is missing.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from descend.comparison.plan import Plan
from descend.diagnose import layer_gradient_series, verdicts_for_runs
from descend.report import append_metrics_csv, write_metrics_csv, write_run, write_text_atomic


def run_key(optimizer: str, seed: int) -> str:
    return f"{optimizer}-seed{seed}"


def record_path(folder: Path, optimizer: str, seed: int) -> Path:
    return folder / "runs" / f"{run_key(optimizer, seed)}.json"


def checkpoint_dir(folder: Path, optimizer: str, seed: int) -> Path:
    return folder / "checkpoints" / run_key(optimizer, seed)


def write_record(folder: Path, record: Mapping[str, Any]) -> Path:
    """Save a finished run; from now on the comparison counts it as done."""
    path = record_path(folder, record["optimizer"], record["seed"])
    return write_text_atomic(path, json.dumps(record) + "\n")


def load_records(folder: Path, plan: Plan) -> list[dict[str, Any]]:
    """The finished runs of ``plan`` found in ``folder``, in the plan's order."""
    found = []
    for name, seed in plan.runs():
        path = record_path(folder, name, seed)
        if path.exists():
            found.append(json.loads(path.read_text(encoding="utf-8")))
    return found


def missing_runs(folder: Path, plan: Plan) -> list[str]:
    return [run_key(n, s) for n, s in plan.runs() if not record_path(folder, n, s).exists()]


def add_metrics(folder: Path, records: Sequence[Mapping[str, Any]]) -> None:
    """Append the last finished run's rows to ``metrics.csv``."""
    append_metrics_csv(folder / "metrics.csv", records)


def rewrite_metrics(folder: Path, records: Sequence[Mapping[str, Any]]) -> None:
    """``metrics.csv`` rewritten whole from the finished runs (a resume starts with this,
    so a row torn by a crash during an append is not kept)."""
    if records:
        write_metrics_csv(folder / "metrics.csv", records)
    else:
        (folder / "metrics.csv").unlink(missing_ok=True)


def status_notice(
    folder: Path, plan: Plan, missing: Sequence[str], interrupted_by: str
) -> str | None:
    """The report's banner while runs are missing (``None`` when all finished)."""
    if not missing:
        return None
    total = len(plan.runs())
    why = f" (interrupted by {interrupted_by})" if interrupted_by else ""
    return (
        f"Incomplete{why}: {total - len(missing)} of {total} runs finished; missing: "
        f"{', '.join(missing)}. The table averages finished runs only. "
        f"Continue with: descend compare --resume {folder}"
    )


def per_optimizer_gradients(
    records: Sequence[Mapping[str, Any]], health: Sequence[Any]
) -> dict[str, list[float]]:
    """One line per optimizer: each layer's gradient norm, the median over its seeds.

    One line per run would be 18 lines for the default comparison, with colours repeated
    and a legend over a third of the plot; the seeds of one optimizer barely differ here.
    """
    series = layer_gradient_series(records, health)
    grouped: dict[str, list[list[float]]] = {}
    for record in records:
        line = series.get(f"{record['optimizer']}, seed {record['seed']}")
        if line is not None:
            grouped.setdefault(str(record["optimizer"]), []).append(line)
    out = {}
    for name, lines in grouped.items():
        width = min(len(line) for line in lines)
        label = name if len(lines) == 1 else f"{name} (median of {len(lines)} seeds)"
        out[label] = [statistics.median(line[i] for line in lines) for i in range(width)]
    return out


BUSY = 1.0
"""Load per CPU above which the machine counts as busy: more runnable work than cores."""


def load_summary(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The highest 1-minute load seen at the end of a run, and a warning when it was busy."""
    loads = [
        (r.get("machine") or {}).get("load_1min")
        for r in records
        if (r.get("machine") or {}).get("load_1min") is not None
    ]
    cpus = next(((r.get("machine") or {}).get("cpus") for r in records if r.get("machine")), None)
    if not loads or not cpus:
        return {"max_load_1min": None, "cpus": cpus, "busy": None, "warning": None}
    worst = max(loads)
    busy = worst > BUSY * cpus
    warning = (
        f"The machine was busy during the runs (1-minute load up to {worst:.1f} on {cpus} "
        "CPUs): wall-clock times (time to target, time per step) are inflated and vary with "
        "the load; steps to target are not affected."
        if busy
        else None
    )
    return {"max_load_1min": round(worst, 2), "cpus": cpus, "busy": busy, "warning": warning}


def rebuild_report(
    folder: Path,
    *,
    plan: Plan,
    task: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    config: Mapping[str, Any],
    interrupted_by: str = "",
) -> dict[str, Path]:
    """Rewrite summary, config, figures and ``report.html`` from the finished runs."""
    missing = missing_runs(folder, plan)
    health = [r.get("health") or [] for r in records]
    load = load_summary(records)
    extra = {
        "complete": not missing,
        "missing_runs": missing,
        "runs_planned": len(plan.runs()),
        "machine_load": load,
    }
    if not records:
        return {}
    notices = [status_notice(folder, plan, missing, interrupted_by), load.get("warning")]
    return write_run(
        folder,
        task=task,
        runs=records,
        config={**config, "complete": not missing, "missing_runs": missing},
        diagnostics=verdicts_for_runs(records, health),
        layer_gradients=per_optimizer_gradients(records, health),
        # TensorBoard files are written once, for the whole comparison.
        tensorboard=not missing,
        metrics=False,
        notice=" ".join(n for n in notices if n) or None,
        tuning=config.get("tuning"),
        summary_extra=extra,
    )
