"""``metrics.csv``: every run's history as one long table.

Header (in this order)::

    optimizer,seed,step,epoch,time,<step metrics...>,<epoch metrics...>

- one row per (optimizer, seed, step), steps in the order they were taken;
- ``time`` is wall-clock seconds since the run started;
- step metrics are the keys of the history's step records (``loss``, ``lr``,
  ``grad_norm``, ...), in first-seen order;
- epoch metrics (``train_loss``, ``val_loss``, ``train_accuracy``, ``val_accuracy``,
  ...) are filled in only on the row of the step where that epoch ended, and empty
  elsewhere. An epoch record whose step has no step row (an evaluation before the
  first step, say) gets a row of its own.

Long format, so that ``pandas.read_csv(...).groupby("optimizer")`` or a spreadsheet
pivot needs no reshaping.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from descend.report._files import append_text_durable, write_text_atomic

KEY_COLUMNS = ("optimizer", "seed", "step", "epoch", "time")


def _ordered_keys(records: Sequence[Mapping[str, Any]], skip: Sequence[str]) -> list[str]:
    keys: list[str] = []
    for record in records:
        for key in record:
            if key not in skip and key not in keys:
                keys.append(key)
    return keys


def metric_columns(runs: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """(step metric names, epoch metric names) present in any run, in first-seen order."""
    step_records = [r for run in runs for r in (run.get("history") or {}).get("steps") or []]
    epoch_records = [r for run in runs for r in (run.get("history") or {}).get("epochs") or []]
    step_keys = _ordered_keys(step_records, KEY_COLUMNS)
    epoch_keys = _ordered_keys(epoch_records, (*KEY_COLUMNS, *step_keys))
    return step_keys, epoch_keys


def _cell(value: Any) -> Any:
    # Keep NaN/inf visible as text (a diverged run is information), empty for missing.
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def metric_rows(runs: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """The header and rows of ``metrics.csv`` (see the module docstring)."""
    step_keys, epoch_keys = metric_columns(runs)
    header = [*KEY_COLUMNS, *step_keys, *epoch_keys]
    rows: list[list[Any]] = []
    for run in runs:
        history = run.get("history") or {}
        by_step: dict[Any, Mapping[str, Any]] = {}
        for record in history.get("epochs") or []:
            by_step[record.get("step")] = record
        head = [run.get("optimizer"), run.get("seed")]
        run_rows: list[list[Any]] = []
        for record in history.get("steps") or []:
            epoch_record = by_step.pop(record.get("step"), {})
            run_rows.append(
                head
                + [_cell(record.get(k)) for k in ("step", "epoch", "time")]
                + [_cell(record.get(k)) for k in step_keys]
                + [_cell(epoch_record.get(k)) for k in epoch_keys]
            )
        # Epoch records that ended on no logged step still belong in the table.
        for epoch_record in by_step.values():
            run_rows.append(
                head
                + [_cell(epoch_record.get(k)) for k in ("step", "epoch", "time")]
                + ["" for _ in step_keys]
                + [_cell(epoch_record.get(k)) for k in epoch_keys]
            )
        # Stable sort puts those rows where their step falls, keeping step order.
        run_rows.sort(key=lambda row: row[2] if isinstance(row[2], int | float) else math.inf)
        rows.extend(run_rows)
    return header, rows


def _csv_text(rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def write_metrics_csv(path: Path, runs: Sequence[Mapping[str, Any]]) -> Path:
    """Write ``metrics.csv`` atomically; return its path."""
    header, rows = metric_rows(runs)
    return write_text_atomic(Path(path), _csv_text([header, *rows]))


def append_metrics_csv(path: Path, runs: Sequence[Mapping[str, Any]]) -> Path:
    """Bring ``metrics.csv`` up to date after ``runs[-1]`` finished, by appending its rows.

    ``runs`` are all finished runs, the new one last. The rows are appended (and synced)
    when the file holds exactly the earlier runs' columns; when the new run adds a
    column, or the file is missing, the whole file is rewritten atomically instead.
    """
    path = Path(path)
    header, rows = metric_rows(runs)
    new_rows = rows[len(rows) - len(metric_rows(runs[-1:])[1]) :]
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            first_line = handle.readline()
    except FileNotFoundError:
        first_line = ""
    if len(runs) > 1 and first_line == _csv_text([header]):
        return append_text_durable(path, _csv_text(new_rows))
    return write_text_atomic(path, _csv_text([header, *rows]))
