"""``descend tune TASK --optimizer adam --trials 40``: Optuna studies of optimizers on a task.

Thin by design: parse the flags, call :func:`descend.tune.tune`, hand its result to
:func:`descend.report.write_tune_run`, print where things are.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from descend.cli.app import app
from descend.cli.train_cmd import (
    DeviceOption,
    PrecisionOption,
    check_name,
    default_out,
    format_metric,
    task_info,
)
from descend.schedules import SCHEDULE_NAMES


@app.command("tune")
def tune_command(
    task: Annotated[str, typer.Argument(help="Built-in task name, e.g. digits.")],
    optimizer: Annotated[
        str, typer.Option(help="Optimizer(s) to tune: a registry name, or several as sgd,adam.")
    ] = "adam",
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
    device: DeviceOption = "auto",
    precision: PrecisionOption = "fp32",
) -> None:
    """Tune optimizers' hyperparameters on a task; write best.yaml, trials.csv and report.html.

    With several optimizers (--optimizer sgd,adam) each gets the same study (same
    trials, space kind, recipe and seed) in a subfolder, and every report's
    sensitivity figure shows them all.
    """
    from descend.optim import optimizer_names
    from descend.tasks import get_task, task_names
    from descend.tune import parse_space
    from descend.tune import tune as run_study

    the_task = get_task(check_name("task", task, task_names()))
    names = [check_name("optimizer", n.strip(), optimizer_names()) for n in optimizer.split(",")]
    for name in names:
        parse_space(space, name)  # every optimizer's overrides checked before anything runs
    folder = out if out is not None else default_out("tune", task, *names)
    results = {}
    for name in names:
        name_of_study = study if len(names) == 1 or study is None else f"{study}-{name}"
        try:
            results[name] = run_study(
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
                study=name_of_study,
                workers=workers,
                out=folder,
                progress=not quiet and sys.stderr.isatty(),
                device=device,
                precision=precision,
            )
        except KeyboardInterrupt:
            from descend.tune.storage import redact

            where = redact(storage) if storage else str(folder / "study.journal")
            typer.echo(
                "interrupted; the running trials are queued again. Finish the study with: "
                f"descend tune {task} --optimizer {name} --trials {trials} --storage {where} "
                f"--study {name_of_study or f'{task}-{name}'} (and the same settings)",
                err=True,
            )
            raise typer.Exit(130) from None
    for name, result in results.items():
        here = folder if len(names) == 1 else folder / name
        others = {n: r.trials for n, r in results.items() if n != name}
        _write_and_print(here, the_task, result, others)


def _write_and_print(folder: Path, task: Any, result: Any, others: dict[str, Any]) -> None:
    from descend.report import write_tune_run

    written = write_tune_run(
        folder,
        task=task_info(task),
        study={**dataclasses.asdict(result), "name": result.study},
        best_config=result.best_config() if result.best else None,
        others=others,
    )
    states = [t["state"] for t in result.counted()]
    typer.echo(
        f"{task.name} · {result.settings['optimizer']} · {len(states)} trials: "
        f"{states.count('COMPLETE')} completed, {states.count('PRUNED')} pruned, "
        f"{states.count('FAIL')} failed"
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
