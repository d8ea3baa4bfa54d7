"""``descend compare [TASK]``: several optimizers, several seeds, one report.

With no arguments it compares the optimizers the articles name (the "seed
optimizers": sgd, momentum, nesterov, adagrad, rmsprop, adam) on ``deep_sigmoid``
over 3 seeds with the task's default recipe (about a minute on two busy cores).
The work is :func:`descend.comparison.compare` (or ``resume``); this module parses
the flags, calls it, and prints the table.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from descend.cli.app import app
from descend.cli.train_cmd import (
    AllowDivergence,
    check_divergence,
    check_name,
    default_out,
    format_metric,
)
from descend.schedules import SCHEDULE_NAMES

# The same tuple as descend.comparison.SEED_OPTIMIZERS, spelled here so that --help
# does not import the library (and torch) to show its default.
SEED_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
# On digits all six finish within the seed spread of one another (no answer); on the
# 8-layer sigmoid net the adaptive optimizers and the momentum family separate into two
# groups well beyond it (docs/tasks.md, "The default comparison").
DEFAULT_TASK = "deep_sigmoid"


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
    if mean is None:
        return f"- (0/{seeds})"
    examples = (per.get("examples_to_target") or {}).get("mean")
    shown = "" if examples is None else f", {examples / 1000:.3g}k ex"
    return f"{mean:.0f} ({per['reached_target']}/{seeds}){shown}"


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
    tied = summary.get("tied") or []
    for name, per in summary["optimizers"].items():
        final = per["final"].get(metric) or {}
        best = per["best"].get(metric) or {}
        spread = f" ± {final['std']:.4f}" if final.get("n", 0) > 1 else ""
        if final.get("ci"):
            spread += f" [{final['ci'][0]:.4f}, {final['ci'][1]:.4f}]"
        mark = " *" if name == winner else (" =" if name in tied else "")
        per_step = per["seconds_per_step"]["mean"]
        reasons = list(dict.fromkeys(r for r in per["stop_reasons"] if r))
        rows.append(
            [
                name + mark,
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


def _hyper_text(hyper: Any) -> str:
    if not isinstance(hyper, dict):
        return "-" if not hyper else "differ between seeds (see config.yaml)"
    return ", ".join(
        f"{k}={v['value']}"
        + (f" ({v['source']})" if v.get("source") != "optimizer default" else "")
        for k, v in hyper.items()
    )


def hyperparameter_lines(summary: dict[str, Any]) -> list[str]:
    """One line per optimizer: every hyperparameter, with where it came from unless a default."""
    return [
        f"  {name}: {_hyper_text(per.get('hyperparameters'))}"
        for name, per in summary["optimizers"].items()
    ]


@app.command("compare")
def compare(
    task: Annotated[
        str | None,
        typer.Argument(
            help="Built-in task name (default: deep_sigmoid, where the optimizers separate; "
            "digits and the others stay available)."
        ),
    ] = None,
    tasks: Annotated[
        str | None,
        typer.Option(
            help="Compare on several tasks (comma-separated): one comparison per task in "
            "OUT/TASK/, then steps to target per task and a performance profile in OUT/report.html."
        ),
    ] = None,
    optimizers: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated optimizer names (default: " + ",".join(SEED_OPTIMIZERS) + ")."
        ),
    ] = None,
    seeds: Annotated[
        int | None,
        typer.Option(min=1, help="Number of seeds (0, 1, ...) per optimizer (default: 3)."),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs (default: the task's).")] = None,
    lr: Annotated[
        str | None, typer.Option(help="Override lrs: name=value,... (default: the task's table).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Mini-batch size (default: the task's).")
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option(
            help="Learning-rate schedule: " + ", ".join(SCHEDULE_NAMES) + " (default: constant)."
        ),
    ] = None,
    tune: Annotated[
        str | None,
        typer.Option(
            help="How --budget is spent: grid (log-spaced lrs on a split of the training "
            "set; the default), lr (an Optuna study of the lr) or all (an Optuna study of "
            "every hyperparameter the optimizer declares tunable; needs descend[tune])."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Run folder (default: runs/compare-TASK-TIME); must be new or empty."),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Continue the comparison in this folder: finished runs are kept, the interrupted one resumes from its checkpoint."
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace what an earlier run left in --out.")
    ] = False,
    allow_changes: Annotated[
        bool,
        typer.Option(
            "--allow-changes",
            help="With --resume: accept settings that differ from the saved ones (recorded in config.yaml).",
        ),
    ] = False,
    checkpoint_every: Annotated[
        int | None, typer.Option(min=1, help="Also checkpoint the run in progress every N steps.")
    ] = None,
    budget: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Tune each optimizer's lr first with N trials (the same N for every one): a "
            "log-spaced grid over two decades around the task's value, scored on a split of "
            "the training set; the seeds then run the chosen lr. Optimizers given --lr are not tuned.",
        ),
    ] = None,
    on_nonfinite: Annotated[
        str | None,
        typer.Option(help="A NaN or infinite step: raise, skip or rollback (default: raise)."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", help="No progress output; print only the table.")
    ] = False,
    allow_divergence: AllowDivergence = False,
    threads: Annotated[
        int,
        typer.Option(
            min=1,
            help="CPU threads per run (torch.set_num_threads). The built-in tasks' models are "
            "small: one thread is fastest, more only contend (measured: the default compare "
            "took 82 s on 1 thread, 6 min 53 s on torch's default 2, on a busy 2-core machine).",
        ),
    ] = 1,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Run N (optimizer, seed) runs at once, each in its own process (--threads "
            "each); the folder ends as with 1. Not with --tasks.",
        ),
    ] = 1,
) -> None:
    """Compare optimizers on a task over several seeds; write one report folder as runs finish, and print a table.

    Ctrl-C stops the comparison after the current step (a second press at once) and
    keeps every finished run; --resume DIR continues it. Exits with status 3 when a run
    diverged, unless --allow-divergence; 130 after Ctrl-C.
    """
    import torch

    from descend.comparison import compare as run_compare
    from descend.comparison import resume as run_resume
    from descend.optim import optimizer_names
    from descend.tasks import task_names

    torch.set_num_threads(threads)
    names = None
    if optimizers is not None:
        names = [
            check_name("optimizer", n.strip(), optimizer_names())
            for n in optimizers.split(",")
            if n.strip()
        ]
        if not names:
            raise typer.BadParameter("--optimizers needs at least one name.")
    if task is not None:
        check_name("task", task, task_names())
    progress = not quiet and sys.stderr.isatty()
    # On a terminal the bars say which run is going; elsewhere (a log file) one line per run.
    log = None if quiet or progress else (lambda line: typer.echo(line, err=True))
    given: dict[str, Any] = {
        "epochs": epochs,
        "batch_size": batch_size,
        "schedule": schedule,
        "on_nonfinite": on_nonfinite,
        "checkpoint_every": checkpoint_every,
        "budget": budget,
        "tune": tune,
    }
    if tune is not None and budget is None and resume is None:
        raise typer.BadParameter("--tune says how --budget is spent; give --budget N too.")
    if tasks is not None or (resume is not None and (resume / "suite-plan.json").exists()):
        if workers > 1:
            raise typer.BadParameter("--workers applies to one task's comparison, not to --tasks.")
        _compare_suite(
            tasks,
            task,
            names,
            seeds,
            lr,
            resume,
            out,
            overwrite,
            allow_changes,
            given,
            log,
            allow_divergence,
        )
        return
    if resume is not None:
        if out is not None and out != resume:
            raise typer.BadParameter(
                f"--resume {resume} and --out {out} name different folders; give one."
            )
        if overwrite:
            raise typer.BadParameter(
                "--resume keeps the finished runs; --overwrite would delete them. Give one."
            )
        from descend.comparison import load_plan

        saved, _ = load_plan(resume)
        compared = names or list(saved.optimizers)
        result = run_resume(
            resume,
            allow_changes=allow_changes,
            progress=progress,
            log=log,
            task=task,
            optimizers=names,
            seeds=None if seeds is None else list(range(seeds)),
            lrs=None if lr is None else {**saved.lrs, **parse_lrs(lr, compared)},
            workers=workers,
            threads=threads,
            **given,
        )
    else:
        if allow_changes:
            raise typer.BadParameter("--allow-changes only applies with --resume DIR.")
        task = task or DEFAULT_TASK
        names = names or list(SEED_OPTIMIZERS)
        folder = out if out is not None else default_out("compare", task)
        if log is not None:
            log(
                f"comparing {', '.join(names)} on {task}, {seeds or 3} seed(s) each, into {folder} ..."
            )
        result = run_compare(
            task,
            names,
            out=folder,
            seeds=list(range(seeds or 3)),
            lrs=parse_lrs(lr, names),
            overwrite=overwrite,
            progress=progress,
            log=log,
            workers=workers,
            threads=threads,
            **{k: v for k, v in given.items() if v is not None},
        )
    _print_result(result)
    check_divergence(result.diagnostics(), allow_divergence)


def _compare_suite(
    tasks: str | None,
    task: str | None,
    names: list[str] | None,
    seeds: int | None,
    lr: str | None,
    resume: Path | None,
    out: Path | None,
    overwrite: bool,
    allow_changes: bool,
    given: dict[str, Any],
    log: Any,
    allow_divergence: bool,
) -> None:
    """``--tasks a,b,c`` (or ``--resume`` of such a folder): one comparison per task, then profiles."""
    from descend.comparison.suite import compare_tasks
    from descend.tasks import task_names

    if task is not None:
        raise typer.BadParameter("give either a TASK or --tasks, not both.")
    if resume is not None:
        if any(v is not None for v in (tasks, names, seeds, lr, *given.values())) or allow_changes:
            raise typer.BadParameter(
                "--resume of a comparison across tasks takes no other settings: it continues "
                "with the saved ones."
            )
        suite = compare_tasks([], out=resume, resume_suite=True, log=log)
    else:
        listed = [
            check_name("task", t.strip(), task_names())
            for t in (tasks or "").split(",")
            if t.strip()
        ]
        if len(listed) < 2:
            raise typer.BadParameter("--tasks needs at least two task names, e.g. digits,logreg.")
        if allow_changes:
            raise typer.BadParameter("--allow-changes only applies with --resume DIR.")
        compared = names or list(SEED_OPTIMIZERS)
        folder = out if out is not None else default_out("compare", "suite")
        suite = compare_tasks(
            listed,
            compared,
            out=folder,
            overwrite=overwrite,
            log=log,
            seeds=list(range(seeds or 3)),
            lrs=parse_lrs(lr, compared),
            **{k: v for k, v in given.items() if v is not None},
        )
    for name, result in suite.comparisons.items():
        typer.echo(f"{name}: {(result.summary or {}).get('verdict', '')}")
    typer.echo(f"report: {suite.written['report']}")
    diagnostics = [d for r in suite.comparisons.values() for d in r.diagnostics()]
    if suite.interrupted_by:
        typer.echo(
            f"interrupted by {suite.interrupted_by}; continue with: descend compare --resume "
            f"{suite.folder}",
            err=True,
        )
        raise typer.Exit(128 + signal.Signals[suite.interrupted_by].value)
    check_divergence(diagnostics, allow_divergence)


def _print_result(result: Any) -> None:
    """The table, where the report is, and, when incomplete, how to continue (exit 128 + signal)."""
    summary = result.summary
    plan = result.plan
    if summary is not None:
        target = summary["target"]
        described = f"{target.get('metric')} {'>=' if target.get('mode') == 'max' else '<='} {target.get('value')}"
        typer.echo(
            f"{plan.task}: target {described}, {len(plan.seeds)} seed(s); final: mean ± std "
            "[95% bootstrap interval]; * = best (separated), = tied with the best"
        )
        typer.echo(results_table(summary))
        if summary.get("verdict"):
            typer.echo(summary["verdict"])
        typer.echo("hyperparameters (with their source unless the optimizer's default):")
        for line in hyperparameter_lines(summary):
            typer.echo(line)
        load = summary.get("machine_load") or {}
        if load.get("warning"):
            typer.echo(f"warning: {load['warning']}", err=True)
        typer.echo(f"report: {result.written['report']}")
    if result.missing:
        done = len(plan.runs()) - len(result.missing)
        why = f"interrupted by {result.interrupted_by}" if result.interrupted_by else "incomplete"
        typer.echo(
            f"{why}: {done} of {len(plan.runs())} runs finished (only those are in the table); "
            f"continue with: descend compare --resume {result.folder}",
            err=True,
        )
        if result.interrupted_by:
            raise typer.Exit(128 + signal.Signals[result.interrupted_by].value)
        raise typer.Exit(1)
