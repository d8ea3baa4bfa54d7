"""From runs (plain dicts) to the numbers a comparison is judged by.

A *run* is one optimizer on one seed, as the tasks layer hands it over::

    {"optimizer": "adam", "seed": 0, "lr": 1e-3, "lr_source": "task default table",
     "config": {...}, "history": {"steps": [...], "epochs": [...], "stop_reason": ...},
     "summary": {"final": {...}, "best": {...}, "steps_to_target": 120 | None,
                 "time_to_target": 3.2 | None, "seconds_per_step": 0.002,
                 "steps": 300, "seconds": 4.1}}

:func:`summarize_runs` groups runs by optimizer and reduces every number over the
seeds to mean, standard deviation, min and max, because a single seed says little
about an optimizer: the same rule from a different initialization can land far away.
The result is what ``summary.json`` holds and what the HTML table shows.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from descend._validation import InvalidParameterError
from descend.report.uncertainty import LEVEL, bootstrap_ci, paired_difference

# Metrics where smaller is better; anything else (accuracy, ...) is "larger is better".
_LOWER_IS_BETTER_WORDS = ("loss", "error", "perplexity")


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is better, guessed from its name."""
    return any(word in metric for word in _LOWER_IS_BETTER_WORDS)


def group_by_optimizer(runs: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Runs grouped by optimizer name, in the order the optimizers first appear."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for index, run in enumerate(runs):
        if not isinstance(run, Mapping) or "optimizer" not in run:
            raise InvalidParameterError(
                f"Run {index} must be a dict with an 'optimizer' key. Got {type(run).__name__} instead."
            )
        groups.setdefault(str(run["optimizer"]), []).append(run)
    return groups


def finite_or_none(value: Any) -> float | None:
    """``value`` as a float, or None when missing or not finite (NaN/inf are not valid JSON)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def stats(values: Sequence[Any]) -> dict[str, Any]:
    """Mean, sample std (0 for one value), min, max over the finite values; ``n`` counts them.

    ``values`` keeps every seed's value (None where a seed has none) so that a reader
    can see which seed differs.
    """
    clean = [finite_or_none(v) for v in values]
    present = [v for v in clean if v is not None]
    if not present:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0, "values": clean}
    std = statistics.stdev(present) if len(present) > 1 else 0.0
    return {
        "mean": statistics.fmean(present),
        "std": std,
        "min": min(present),
        "max": max(present),
        "n": len(present),
        "values": clean,
    }


def run_summary(run: Mapping[str, Any]) -> dict[str, Any]:
    """The run's own summary, or one derived from its history when the run has none."""
    given = run.get("summary")
    if isinstance(given, Mapping) and given:
        return dict(given)
    history = run.get("history") or {}
    steps = list(history.get("steps") or [])
    epochs = list(history.get("epochs") or [])
    final: dict[str, Any] = {}
    best: dict[str, Any] = {}
    for record in epochs:
        for key, value in record.items():
            if key in ("epoch", "step", "time") or finite_or_none(value) is None:
                continue
            final[key] = value
            if key not in best:
                best[key] = value
            elif lower_is_better(key):
                best[key] = min(best[key], value)
            else:
                best[key] = max(best[key], value)
    total_steps = int(steps[-1].get("step", len(steps))) if steps else 0
    total_time = finite_or_none(steps[-1].get("time")) if steps else None
    per_step = total_time / total_steps if total_time is not None and total_steps else None
    return {
        "final": final,
        "best": best,
        "steps_to_target": None,
        "time_to_target": None,
        "seconds_per_step": per_step,
        "steps": total_steps,
        "time": total_time,
    }


def _metric_stats(summaries: Sequence[Mapping[str, Any]], part: str) -> dict[str, dict[str, Any]]:
    names: list[str] = []
    for summary in summaries:
        for name in summary.get(part) or {}:
            if name not in names:
                names.append(name)
    return {
        name: stats([(summary.get(part) or {}).get(name) for summary in summaries])
        for name in names
    }


def summarize_optimizer(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One optimizer's runs (one per seed) reduced to mean/std/min/max per number."""
    summaries = [run_summary(run) for run in runs]
    histories = [run.get("history") or {} for run in runs]
    lrs = [run.get("lr") for run in runs]
    distinct_lrs = list(dict.fromkeys(lrs))
    sources = list(dict.fromkeys(str(run.get("lr_source", "")) for run in runs))
    to_target = [s.get("steps_to_target") for s in summaries]
    # Every hyperparameter with its source, as the runs recorded them (the seeds share them).
    hyper = [(run.get("config") or {}).get("hyperparameters") for run in runs]
    distinct_hyper = [h for i, h in enumerate(hyper) if h and h not in hyper[:i]]
    return {
        "seeds": [run.get("seed") for run in runs],
        "hyperparameters": (
            distinct_hyper[0] if len(distinct_hyper) == 1 else distinct_hyper or None
        ),
        # Seeds of one optimizer share the lr; a list only if a caller mixed them.
        "lr": distinct_lrs[0] if len(distinct_lrs) == 1 else distinct_lrs,
        "lr_source": ", ".join(s for s in sources if s),
        "final": _metric_stats(summaries, "final"),
        "best": _metric_stats(summaries, "best"),
        "steps_to_target": stats(to_target),
        "examples_to_target": stats([s.get("examples_to_target") for s in summaries]),
        "time_to_target": stats([s.get("time_to_target") for s in summaries]),
        "reached_target": sum(v is not None for v in to_target),
        "seconds_per_step": stats([s.get("seconds_per_step") for s in summaries]),
        "steps": stats([s.get("steps") for s in summaries]),
        # The tasks layer calls a run's wall time "seconds"; older dicts say "time".
        "time": stats([s.get("time", s.get("seconds")) for s in summaries]),
        "stop_reasons": [h.get("stop_reason") for h in histories],
        "stop_success": [h.get("stop_success") for h in histories],
        # Updates the non-finite guard skipped or rolled back ("skip"/"rollback" policies).
        "skipped_steps": [_skipped(h) for h in histories],
    }


def _skipped(history: Mapping[str, Any]) -> int:
    steps = history.get("steps") or []
    return int(steps[-1].get("skipped", 0) or 0) if steps else 0


def best_optimizer(
    per_optimizer: Mapping[str, Mapping[str, Any]], target: Mapping[str, Any] | None
) -> str | None:
    """The optimizer with the best mean *final* value of the target metric, or None.

    Final rather than best-ever: the model a run hands back is the last one. Ties
    go to the fewer mean steps to target (an optimizer that got there sooner).
    """
    if not target or "metric" not in target:
        return None
    metric = str(target["metric"])
    mode = str(target.get("mode") or ("min" if lower_is_better(metric) else "max"))
    sign = -1.0 if mode == "max" else 1.0
    ranked: list[tuple[float, float, str]] = []
    for name, summary in per_optimizer.items():
        mean = (summary.get("final", {}).get(metric) or {}).get("mean")
        if mean is None:
            continue
        steps = summary.get("steps_to_target", {}).get("mean")
        ranked.append((sign * mean, math.inf if steps is None else steps, name))
    return min(ranked)[2] if ranked else None


def summarize_runs(task: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What ``summary.json`` holds: the task and target, then one entry per optimizer."""
    if not runs:
        raise InvalidParameterError(
            "The 'runs' parameter of write_run must be a non-empty list. Got [] instead."
        )
    groups = group_by_optimizer(runs)
    per_optimizer = {name: summarize_optimizer(group) for name, group in groups.items()}
    given = task.get("target") or {}
    # A target given only as text ("val_accuracy >= 0.95") is kept, but cannot rank.
    target = dict(given) if isinstance(given, Mapping) else {"description": str(given)}
    ranking = rank(per_optimizer, target)
    return {
        "task": dict(task),
        "target": target,
        "best_optimizer": ranking["best_optimizer"],
        "leader": ranking["leader"],
        "tied": ranking["tied"],
        "verdict": ranking["verdict"],
        "optimizers": per_optimizer,
        "runs": [
            {
                "optimizer": run.get("optimizer"),
                "seed": run.get("seed"),
                "lr": run.get("lr"),
                "lr_source": run.get("lr_source"),
                "stop_reason": (run.get("history") or {}).get("stop_reason"),
                "summary": run_summary(run),
            }
            for run in runs
        ],
    }


def _by_seed(per: Mapping[str, Any], metric: str) -> dict[Any, float | None]:
    values = ((per.get("final") or {}).get(metric) or {}).get("values") or []
    return dict(zip(per.get("seeds") or [], values, strict=False))


def rank(
    per_optimizer: dict[str, dict[str, Any]], target: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The leader on the target metric, whether it is separated, and a sentence saying so.

    Adds to each optimizer's target-metric entry its bootstrap interval (``ci``) and,
    for the others, ``vs_leader``: the paired difference (:func:`paired_difference`).
    The leader is ``best_optimizer`` only when separated from every other optimizer;
    otherwise ``tied`` lists those it cannot be told from (itself first).
    """
    leader = best_optimizer(per_optimizer, target)
    empty = {"leader": leader, "best_optimizer": None, "tied": [], "verdict": ""}
    if leader is None or target is None:
        return empty
    metric = str(target["metric"])
    mode = str(target.get("mode") or ("min" if lower_is_better(metric) else "max"))
    for per in per_optimizer.values():
        entry = (per.get("final") or {}).get(metric)
        if entry is not None:
            entry["ci"] = bootstrap_ci([v for v in entry.get("values") or [] if v is not None])
    if len(per_optimizer) < 2:
        return {**empty, "leader": leader}
    mine = _by_seed(per_optimizer[leader], metric)
    tied = [leader]
    for name, per in per_optimizer.items():
        if name == leader:
            continue
        paired = paired_difference(mine, _by_seed(per, metric), higher_is_better=mode == "max")
        per["vs_leader"] = paired
        if not paired["separated"]:
            tied.append(name)
    lead = per_optimizer[leader]["final"][metric]
    seeds = len(per_optimizer[leader].get("seeds") or [])
    level = f"{LEVEL:.0%}"
    if len(tied) == 1:
        others = [p["vs_leader"] for n, p in per_optimizer.items() if n != leader]
        closest = min(others, key=lambda p: math.inf if p["mean"] is None else p["mean"])
        runner = next(n for n, p in per_optimizer.items() if p.get("vs_leader") is closest)
        margin = ""
        if closest["mean"] is not None and math.isfinite(closest["mean"]) and closest["ci"]:
            margin = (
                f", ahead of {runner} by {closest['mean']:.4g} "
                f"({level} interval {closest['ci'][0]:.3g} to {closest['ci'][1]:.3g})"
            )
        verdict = (
            f"{leader} is best on final {metric}: {lead['mean']:.4g}{margin}, "
            f"over {seeds} paired seeds."
        )
        return {"leader": leader, "best_optimizer": leader, "tied": [], "verdict": verdict}
    why = (
        "one seed cannot separate them"
        if seeds < 2
        else f"their paired {level} intervals of the difference include 0"
    )
    verdict = (
        f"No single best on final {metric}: {', '.join(tied)} are tied ({why}); "
        f"{leader} has the best mean, {lead['mean']:.4g}."
    )
    return {"leader": leader, "best_optimizer": None, "tied": tied, "verdict": verdict}
