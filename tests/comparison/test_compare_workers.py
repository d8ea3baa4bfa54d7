"""``compare(..., workers=N)``: runs in N processes, the folder as the sequential compare leaves it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from descend.comparison import compare

# Wall-clock values: the only ones that may differ between two executions of a run.
CLOCK = {"time", "time_to_target", "machine", "seconds", "seconds_per_step"}


def _without_clock(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_clock(v) for k, v in value.items() if k not in CLOCK}
    if isinstance(value, list):
        return [_without_clock(v) for v in value]
    return value


def _records(folder: Path) -> list[Any]:
    paths = sorted((folder / "runs").glob("*.json"))
    return [_without_clock(json.loads(p.read_text())) for p in paths]


def test_two_workers_leave_the_sequential_results(tmp_path: Path) -> None:
    """Same records (every step's loss, gradient norm, metrics, diagnostics), in the
    plan's order in metrics.csv, as one process running them one after another."""
    settings = {"optimizers": ["sgd", "adam"], "seeds": [0, 1], "epochs": 2}
    one = compare("linreg", out=tmp_path / "one", **settings)
    two = compare("linreg", out=tmp_path / "two", workers=2, **settings)
    assert one.complete and two.complete
    assert [(r["optimizer"], r["seed"]) for r in two.records] == [
        (r["optimizer"], r["seed"]) for r in one.records
    ]
    assert len(_records(tmp_path / "one")) == 4
    assert _records(tmp_path / "one") == _records(tmp_path / "two")
    rows = [
        [line.split(",")[:3] for line in (tmp_path / name / "metrics.csv").read_text().splitlines()]
        for name in ("one", "two")
    ]
    assert rows[0] == rows[1]
