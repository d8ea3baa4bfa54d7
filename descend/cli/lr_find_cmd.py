"""``descend lr-find TASK``: the learning-rate range test on a task's model; optionally train with it.

Writes ``lr_find.png`` (loss against learning rate, suggestions marked) and
``lr_find.csv`` (one row per step), prints the suggestions, and with ``--apply``
trains the task with the chosen suggestion by its default recipe.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer

from descend.cli.app import app
from descend.cli.train_cmd import (
    DeviceOption,
    PrecisionOption,
    check_name,
    default_out,
    format_metric,
)


@app.command("lr-find")
def lr_find_command(
    task: Annotated[str, typer.Argument(help="Built-in task name, e.g. digits.")],
    optimizer: Annotated[
        str | None, typer.Option(help="Optimizer name to sweep (default: the task's).")
    ] = None,
    start_lr: Annotated[float, typer.Option(help="First learning rate of the sweep.")] = 1e-7,
    end_lr: Annotated[float, typer.Option(help="Last learning rate of the sweep.")] = 10.0,
    num_steps: Annotated[int, typer.Option(help="Steps of the sweep.")] = 100,
    which: Annotated[
        str, typer.Option(help="Suggestion to apply: valley, steepest or min_over_10.")
    ] = "valley",
    seed: Annotated[int, typer.Option(help="Seed of data, initial weights and order.")] = 0,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: runs/lr-find-TASK-OPT-TIME).")
    ] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Then train the task with the suggested lr.")
    ] = False,
    epochs: Annotated[
        int | None, typer.Option(help="Epochs of the --apply run (default: the task's).")
    ] = None,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "fp32",
) -> None:
    """Sweep the learning rate exponentially, plot the loss, print suggested rates."""
    from descend.diagnose import SUGGESTIONS, lr_find
    from descend.report import png_bytes
    from descend.report.diagnose_plots import lr_find_figure
    from descend.tasks import get_task, run_task, task_names
    from descend.tasks.task import OPTIMIZER_NAMES
    from descend.train.precision import resolve_device

    the_task = get_task(check_name("task", task, task_names()))
    name = check_name("optimizer", optimizer or the_task.default_optimizer, list(OPTIMIZER_NAMES))
    which = check_name("suggestion", which, list(SUGGESTIONS))
    folder = out if out is not None else default_out("lr-find", task, name)
    folder.mkdir(parents=True, exist_ok=True)

    data = the_task.data(seed)
    model = the_task.model(seed).to(resolve_device(device))
    result = lr_find(
        model,
        data.train,
        the_task.loss,
        name,
        start_lr=start_lr,
        end_lr=end_lr,
        num_steps=num_steps,
        batch_size=the_task.batch_size,
        seed=seed,
        precision=precision,
    )

    with (folder / "lr_find.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["step", "lr", "loss", "smoothed"])
        writer.writeheader()
        writer.writerows(result.rows())
    title = f"{the_task.name} · {name}: learning-rate range test ({len(result.lrs)} steps)"
    figure = lr_find_figure(
        result.lrs, result.losses, result.smoothed, result.suggestions, title=title
    )
    (folder / "lr_find.png").write_bytes(png_bytes(figure))

    typer.echo(f"{the_task.name} · {name}: swept lr {start_lr:.1e} -> {result.lrs[-1]:.1e}")
    typer.echo(f"stopped: {result.stop_reason}")
    if result.note:
        typer.echo(result.note)
    for key in result.suggestions:
        mark = "  <- applied" if apply and key == which else ""
        typer.echo(f"suggested lr ({key}): {result.suggestions[key]:.1e}{mark}")
    typer.echo(f"task default lr: {the_task.lrs[name]:.1e}")
    typer.echo(f"figure: {folder / 'lr_find.png'}")

    if apply:
        if not result.suggestions:
            raise ValueError(f"--apply has no learning rate to apply. {result.note}")
        lr = result.suggestions[which]
        typer.echo(f"training {the_task.name} with {name} at the suggested lr {lr:.2e} ...")
        run = run_task(
            the_task, name, lr=lr, seed=seed, epochs=epochs, device=device, precision=precision
        )
        final = run.history.epochs[-1] if run.history.epochs else {}
        metric = the_task.target.metric
        typer.echo(
            f"trained with suggested lr {lr:.2e}: {metric} {format_metric(final.get(metric))}, "
            f"target {the_task.target.describe()} "
            + ("reached" if the_task.target.reached(final.get(metric)) else "not reached")
        )
