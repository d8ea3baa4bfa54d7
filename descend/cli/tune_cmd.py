"""``descend tune TASK --optimizer adam --trials 40``: an Optuna study of one optimizer on a task.

Thin by design: parse the flags, call :func:`descend.tune.tune`, hand its result to
:func:`descend.report.write_tune_run`, print where things are.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated

import typer

from descend.cli.app import app
from descend.cli.train_cmd import check_name, default_out, format_metric, task_info
from descend.schedules import SCHEDULE_NAMES


@app.command("tune")
def tune_command(
    task: Annotated[str, typer.Argument(help="Built-in task name, e.g. digits.")],
    optimizer: Annotated[str, typer.Option(help="Optimizer to tune (a registry name).")] = "adam",
    trials: Annotated[
        int, typer.Option(help="Trials in the study, pruned and failed ones included.")
    ] = 40,
    tune: Annotated[
        str, typer.Option("--tune", help="lr: the learning rate only; all: every hyperparameter.")
    ] = "lr",
    space: Annotated[
        str | None,
        typer.Option(help="Range overrides, e.g. lr=1e-4:1e-1:log,weight_decay=0:0.1."),
    ] = None,
    schedule: Annotated[
        str, typer.Option(help="Learning-rate schedule: " + ", ".join(SCHEDULE_NAMES) + ".")
    ] = "constant",
    epochs: Annotated[
        int | None, typer.Option(help="Epochs per trial (default: the task's).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Mini-batch size (default: the task's).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of every trial and of the sampler.")] = 0,
    pruner: Annotated[str, typer.Option(help="median, hyperband or none.")] = "median",
    storage: Annotated[
        str | None,
        typer.Option(
            help="Journal file or database URL (postgresql://...); default: OUT/study.journal."
        ),
    ] = None,
    study: Annotated[
        str | None,
        typer.Option(help="Study name (default TASK-OPTIMIZER); an existing one is joined."),
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes on this machine.")] = 1,
    out: Annotated[
        Path | None, typer.Option(help="Run folder (default: runs/tune-TASK-OPT-TIME).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Tune an optimizer's hyperparameters on a task; write best.yaml, trials.csv and report.html."""
    from descend.optim import optimizer_names
    from descend.report import write_tune_run
    from descend.tasks import get_task, task_names
    from descend.tune import tune as run_study

    the_task = get_task(check_name("task", task, task_names()))
    name = check_name("optimizer", optimizer, optimizer_names())
    folder = out if out is not None else default_out("tune", task, name)
    try:
        result = run_study(
            the_task.name,
            name,
            trials=trials,
            tune=tune,
            space=space,
            seed=seed,
            epochs=epochs,
            batch_size=batch_size,
            schedule=schedule,
            pruner=pruner,
            storage=storage,
            study=study,
            workers=workers,
            out=folder,
            progress=not quiet and sys.stderr.isatty(),
        )
    except KeyboardInterrupt:
        from descend.tune.storage import redact

        where = redact(storage) if storage else str(folder / "study.journal")
        typer.echo(
            f"interrupted; the running trials are queued again. Finish the study with: "
            f"descend tune {task} --optimizer {name} --trials {trials} --storage {where} "
            f"--study {study or f'{task}-{name}'} (and the same settings)",
            err=True,
        )
        raise typer.Exit(130) from None
    written = write_tune_run(
        folder,
        task=task_info(the_task),
        study={**dataclasses.asdict(result), "name": result.study},
        best_config=result.best_config() if result.best else None,
    )
    states = [t["state"] for t in result.counted()]
    typer.echo(
        f"{the_task.name} · {name} · {len(states)} trials: {states.count('COMPLETE')} completed, "
        f"{states.count('PRUNED')} pruned, {states.count('FAIL')} failed"
    )
    if result.best:
        params = ", ".join(f"{k} {v:.4g}" for k, v in result.best_params.items())
        typer.echo(
            f"best: trial {result.best['number']}, {result.settings['metric']} "
            f"{format_metric(result.best_value)} ({params})"
        )
        typer.echo(f"rerun: descend train --config {written['best']}")
    else:
        typer.echo("best: no trial completed")
    typer.echo(f"study:  {result.study} in {result.storage}")
    typer.echo(f"report: {written['report']}")
