"""``descend compare [TASK]``: several optimizers, several seeds, one report.

With no arguments it compares the optimizers the articles name (the "seed
optimizers": sgd, momentum, nesterov, adagrad, rmsprop, adam) on ``digits`` over
3 seeds with the task's default recipe, which takes about a minute on two cores.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from descend.cli.app import app
from descend.cli.train_cmd import (
    OnNonFinite,
    check_name,
    default_out,
    format_metric,
    run_record,
    task_info,
)
from descend.schedules import SCHEDULE_NAMES

SEED_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")


def parse_lrs(text: str | None, optimizers: list[str]) -> dict[str, float]:
    """``"adam=1e-3,sgd=0.1"`` as ``{"adam": 0.001, "sgd": 0.1}``; names must be compared ones."""
    from descend._validation import InvalidParameterError

    lrs: dict[str, float] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        try:
            if not sep:
                raise ValueError
            lrs[name] = float(value)
        except ValueError:
            raise InvalidParameterError(
                f"--lr takes name=value pairs separated by commas, e.g. adam=0.001,sgd=0.1. Got {item!r} instead."
            ) from None
        if name not in optimizers:
            raise InvalidParameterError(
                f"--lr names {name!r}, which is not being compared. Compared: {', '.join(optimizers)}."
            )
    return lrs


def _steps_cell(per: dict[str, Any]) -> str:
    seeds = len(per["seeds"])
    mean = per["steps_to_target"]["mean"]
    return f"{mean:.0f} ({per['reached_target']}/{seeds})" if mean is not None else f"- (0/{seeds})"


def _time_cell(per: dict[str, Any]) -> str:
    mean = per["time_to_target"]["mean"]
    return "-" if mean is None else f"{mean:.2f} s"


def results_table(summary: dict[str, Any]) -> str:
    """The comparison as an aligned text table, best optimizer marked with ``*``."""
    metric = summary["target"].get("metric", "")
    header = [
        "optimizer",
        "lr",
        f"final {metric}",
        f"best {metric}",
        "steps to target",
        "time to target",
        "ms/step",
        "stopped because",
    ]
    rows = [header]
    # With one optimizer there is nothing to rank.
    winner = summary.get("best_optimizer") if len(summary["optimizers"]) > 1 else None
    for name, per in summary["optimizers"].items():
        final = per["final"].get(metric) or {}
        best = per["best"].get(metric) or {}
        spread = f" ± {final['std']:.4f}" if final.get("n", 0) > 1 else ""
        per_step = per["seconds_per_step"]["mean"]
        reasons = list(dict.fromkeys(r for r in per["stop_reasons"] if r))
        rows.append(
            [
                name + (" *" if name == winner else ""),
                f"{per['lr']:g}" if isinstance(per["lr"], float | int) else str(per["lr"]),
                format_metric(final.get("mean")) + spread,
                format_metric(best.get("mean")),
                _steps_cell(per),
                _time_cell(per),
                "-" if per_step is None else f"{per_step * 1e3:.2f}",
                "; ".join(reasons) or "-",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@app.command("compare")
def compare(
    task: Annotated[str, typer.Argument(help="Built-in task name.")] = "digits",
    optimizers: Annotated[str, typer.Option(help="Comma-separated optimizer names.")] = ",".join(
        SEED_OPTIMIZERS
    ),
    seeds: Annotated[
        int, typer.Option(min=1, help="Number of seeds (0, 1, ...) per optimizer.")
    ] = 3,
    epochs: Annotated[int | None, typer.Option(help="Epochs (default: the task's).")] = None,
    lr: Annotated[
        str | None, typer.Option(help="Override lrs: name=value,... (default: the task's table).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Mini-batch size (default: the task's).")
    ] = None,
    schedule: Annotated[
        str, typer.Option(help="Learning-rate schedule: " + ", ".join(SCHEDULE_NAMES) + ".")
    ] = "constant",
    out: Annotated[
        Path | None, typer.Option(help="Run folder (default: runs/compare-TASK-TIME).")
    ] = None,
    on_nonfinite: OnNonFinite = "raise",
    quiet: Annotated[
        bool, typer.Option("--quiet", help="No progress output; print only the table.")
    ] = False,
) -> None:
    """Compare optimizers on a task over several seeds; write one report folder and print a table."""
    from descend.diagnose import GradientHealth, layer_gradient_series, verdicts_for_runs
    from descend.optim import optimizer_names
    from descend.report import summarize_runs, write_run
    from descend.tasks import compare as compare_runs
    from descend.tasks import get_task, task_names

    the_task = get_task(check_name("task", task, task_names()))
    names = [
        check_name("optimizer", n.strip(), optimizer_names())
        for n in optimizers.split(",")
        if n.strip()
    ]
    if not names:
        raise typer.BadParameter("--optimizers needs at least one name.")
    lrs = parse_lrs(lr, names)
    folder = out if out is not None else default_out("compare", task)

    options: dict[str, Any] = {
        "seeds": list(range(seeds)),
        "lrs": lrs,
        "schedule": schedule,
        "on_nonfinite": on_nonfinite,
    }
    if epochs is not None:
        options["epochs"] = epochs
    if batch_size is not None:
        options["batch_size"] = batch_size
    if not quiet:
        typer.echo(
            f"comparing {', '.join(names)} on {the_task.name}, {seeds} seed(s) each ...", err=True
        )
    monitors: list[GradientHealth] = []

    def watch(name: str, seed: int) -> list[GradientHealth]:
        # One gradient-health monitor per run, kept in run order for the verdicts.
        monitors.append(GradientHealth(every_n_steps=10))
        return monitors[-1:]

    results = compare_runs(
        the_task, names, progress=not quiet and sys.stderr.isatty(), callbacks=watch, **options
    )

    records = [run_record(result, the_task) for result in results]
    info = task_info(the_task)
    config = {
        "command": "compare",
        "task": the_task.name,
        "optimizers": names,
        "seeds": list(range(seeds)),
        "epochs": epochs if epochs is not None else the_task.epochs,
        "batch_size": batch_size if batch_size is not None else the_task.batch_size,
        "schedule": schedule,
        "on_nonfinite": on_nonfinite,
        "lr_overrides": lrs,
    }
    written = write_run(
        folder,
        task=info,
        runs=records,
        config=config,
        diagnostics=verdicts_for_runs(results, monitors),
        layer_gradients=layer_gradient_series(results, monitors),
    )
    typer.echo(f"{the_task.name}: target {the_task.target.describe()}, {seeds} seed(s), * = best")
    typer.echo(results_table(summarize_runs(info, records)))
    typer.echo(f"report: {written['report']}")
