"""Verdicts for the runs of a comparison, as the plain dicts the report shows."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from descend.diagnose.health import GradientHealth
from descend.diagnose.record import HealthRecord
from descend.diagnose.rules import Thresholds, diagnose_history

Records = Sequence[HealthRecord | Mapping[str, Any]] | GradientHealth | None


def _field(run: Any, name: str) -> Any:
    return run.get(name) if isinstance(run, Mapping) else getattr(run, name, None)


def verdicts_for_runs(
    runs: Sequence[Any],
    health: Sequence[Records] | None = None,
    *,
    thresholds: Thresholds | None = None,
    include_healthy: bool = True,
) -> list[dict[str, Any]]:
    """One entry per verdict per run, ready for ``descend.report.write_run(..., diagnostics=...)``.

    Args:
        runs: ``descend.tasks.RunResult`` objects or run dicts, anything with
            ``optimizer``, ``seed`` and ``history`` (a ``History`` or its dict); a dict
            may also carry its own ``"health"`` records.
        health: per run (same order), its :class:`GradientHealth` callback or its
            records, or ``None`` where none was recorded. Without records, only the
            loss-based rules speak (lr_too_large, exploding, plateau).
        thresholds: passed to :func:`diagnose_history`.
        include_healthy: also list runs found healthy (``False`` keeps a long
            comparison's report to the runs with trouble).

    Returns:
        ``[{"optimizer", "seed", "verdict", "evidence"}]``: ``verdict`` is the kind,
        ``evidence`` starts with ``finding`` (the verdict's sentence) followed by its numbers.

    Example:
        >>> runs = [{"optimizer": "sgd", "seed": 0, "history": {"steps": [
        ...     {"step": i + 1, "loss": 2.0 ** i, "grad_norm": 1.0, "lr": 9.0} for i in range(6)]}}]
        >>> [d["verdict"] for d in verdicts_for_runs(runs)]
        ['lr_too_large']
    """
    if health is not None and len(health) != len(runs):
        raise ValueError(
            f"health must have one entry per run ({len(runs)}). Got {len(health)} instead."
        )
    out: list[dict[str, Any]] = []
    for i, run in enumerate(runs):
        records: Records = health[i] if health is not None else _field(run, "health")
        if isinstance(records, GradientHealth):
            records = records.records
        for verdict in diagnose_history(
            _field(run, "history"), records or (), thresholds=thresholds
        ):
            if verdict.kind == "healthy" and not include_healthy:
                continue
            out.append(
                {
                    "optimizer": _field(run, "optimizer"),
                    "seed": _field(run, "seed"),
                    "verdict": verdict.kind,
                    "evidence": {"finding": verdict.message, **verdict.evidence},
                }
            )
    return out


def layer_gradient_series(runs: Sequence[Any], health: Sequence[Records]) -> dict[str, list[float]]:
    """Per run, the median gradient norm of each weight layer over its recorded steps.

    Args:
        runs: as for :func:`verdicts_for_runs` (``optimizer`` and ``seed`` name the line).
        health: per run, its :class:`GradientHealth` callback or records.

    Returns:
        ``{"adam, seed 0": [first layer, ..., last layer], ...}`` for
        ``descend.report.write_run(..., layer_gradients=...)``; runs without records are left out.
    """
    series: dict[str, list[float]] = {}
    for run, records in zip(runs, health, strict=True):
        if isinstance(records, GradientHealth):
            records = records.records
        rows = [
            r if isinstance(r, HealthRecord) else HealthRecord.from_dict(r) for r in records or ()
        ]
        rows = [r for r in rows if r.weights and r.nonfinite is None]
        if not rows:
            continue
        layers = rows[-1].weights
        label = f"{_field(run, 'optimizer')}, seed {_field(run, 'seed')}"
        series[label] = [
            statistics.median(r.grad_norms[name] for r in rows if name in r.grad_norms)
            for name in layers
        ]
    return series
