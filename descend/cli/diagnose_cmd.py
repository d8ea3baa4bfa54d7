"""``descend diagnose TASK``: train briefly while watching the gradients, then say what is wrong.

Trains the task's model for ``--steps`` updates with a
:class:`~descend.diagnose.GradientHealth` callback (stopping early on a divergence),
prints each verdict with its evidence, and, unless ``--no-curvature``, the
sharpness of the loss at the end against the stability limit ``2 / lr``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from descend.cli.app import app
from descend.cli.train_cmd import DeviceOption, PrecisionOption, TaskLr, TaskOptimizer, check_name


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_value(x)}" for k, x in v.items())
    return str(v)


@app.command("diagnose")
def diagnose(
    task: Annotated[str, typer.Argument(help="Built-in task name, e.g. deep_sigmoid.")],
    optimizer: TaskOptimizer = None,
    lr: TaskLr = None,
    steps: Annotated[int, typer.Option(min=1, help="Training steps to watch.")] = 100,
    every: Annotated[int, typer.Option(min=1, help="Record gradient health every N steps.")] = 5,
    curvature_check: Annotated[
        bool,
        typer.Option("--curvature/--no-curvature", help="Also measure the sharpness at the end."),
    ] = True,
    seed: Annotated[int, typer.Option(help="Seed of data, weights and order.")] = 0,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "fp32",
) -> None:
    """Watch a short training run and print what goes wrong (or that nothing does)."""
    from descend.diagnose import GradientHealth, curvature, diagnose_history
    from descend.optim import optimizer_names
    from descend.tasks import get_task, run_task, task_names

    the_task = get_task(check_name("task", task, task_names()))
    name = check_name("optimizer", optimizer or the_task.default_optimizer, optimizer_names())
    health = GradientHealth(every_n_steps=every, stop_on=("lr_too_large", "exploding"))
    run = run_task(
        the_task,
        name,
        lr=lr,
        seed=seed,
        max_steps=steps,
        callbacks=[health],
        eval_train=False,
        device=device,
        precision=precision,
    )
    used = float(run.config["lr"])
    typer.echo(
        f"{the_task.name} · {name} (lr {used:g}) · {len(run.history.steps)} steps: "
        f"{run.history.stop_reason}"
    )
    verdicts = diagnose_history(run.history, health.records)
    for verdict in verdicts:
        typer.echo(f"verdict: {verdict.kind}: {verdict.message}")
        for key, value in verdict.evidence.items():
            typer.echo(f"  {key}: {_value(value)}")
    if curvature_check:
        where = next(run.model.parameters()).device
        train = tuple(t.to(where) for t in the_task.data(seed).train)
        c = curvature(run.model, train, the_task.loss)
        typer.echo(
            f"curvature: largest {c.largest:.4g}, smallest {c.smallest:.4g}; "
            f"2/largest = {c.stability_lr:.3g} against lr {used:g}"
        )
        # 2/lambda_max bounds plain gradient descent only (momentum and Adam have other limits);
        # negative curvature names a saddle only where the descent has stalled (a plateau).
        stalled = any(v.kind == "plateau" for v in verdicts)
        for verdict in c.verdicts(lr=used if name in ("gd", "sgd") else None):
            if verdict.kind == "lr_too_large" or (verdict.kind == "saddle" and stalled):
                typer.echo(f"verdict: {verdict.kind}: {verdict.message}")
