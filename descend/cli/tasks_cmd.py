"""``descend tasks``: the built-in tasks, their data source, model, target and default recipe."""

from __future__ import annotations

from typing import Annotated

import typer

from descend.cli.app import app


@app.command("tasks")
def tasks(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also print each task's summary and options.")
    ] = False,
) -> None:
    """List the built-in tasks: data source, model, target and default recipe."""
    from descend.tasks import TASKS, task_options

    for task in TASKS.values():
        batch = "full batch" if task.batch_size is None else f"batch {task.batch_size}"
        lr = task.lrs[task.default_optimizer]
        typer.echo(task.name)
        if verbose:
            typer.echo(f"  what:   {task.summary}")
        typer.echo(f"  data:   {task.data_source}")
        typer.echo(f"  model:  {task.model_summary}")
        typer.echo(f"  target: {task.target.describe()}")
        if task.measured:
            typer.echo(f"  measured: {task.measured}")
        extra = task.optimizer_options.get(task.default_optimizer, {})
        hyper = "".join(f" {k}={v}" for k, v in extra.items())
        typer.echo(
            f"  recipe: {task.default_optimizer}{hyper} lr {lr:g}, {task.epochs} epochs, {batch}"
        )
        if verbose:
            options = task_options(task.name)
            if options:
                typer.echo("  options: " + ", ".join(f"{k}={v!r}" for k, v in options.items()))
