"""``descend train TASK``: one optimizer, one seed, one run folder.

Thin by design: parse the flags, call :func:`descend.tasks.run_task`, hand the
result to :func:`descend.report.write_run`, save the model, print a few lines.
The helpers that turn a task and a result into the report's plain dicts live
here too, and ``descend compare`` reuses them.
"""

from __future__ import annotations

import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from descend.cli.app import app
from descend.schedules import SCHEDULE_NAMES


def task_info(task: Any) -> dict[str, Any]:
    """The task as the report layer reads it (see :func:`descend.comparison.task_info`)."""
    from descend.comparison import task_info as info

    return info(task)


def run_record(result: Any, task: Any) -> dict[str, Any]:
    """One run as the report layer's dict (see :func:`descend.comparison.run_record`)."""
    from descend.comparison import run_record as record

    return record(result, task)


def default_out(kind: str, *parts: str) -> Path:
    """``runs/<kind>-<parts...>-<UTC timestamp>``: a new folder per invocation."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / "-".join([kind, *parts, stamp])


def check_name(kind: str, name: str, names: list[str]) -> str:
    """``name`` if it is one of ``names``; otherwise one error that lists them all."""
    from descend._validation import unknown_choice

    if name not in names:
        raise unknown_choice(kind, name, names)
    return name


def format_metric(value: Any) -> str:
    """A metric for the terminal: four decimals, or ``-`` when missing."""
    return "-" if value is None else f"{float(value):.4f}"


# Options shared by the commands that train a task.
TaskOptimizer = Annotated[str | None, typer.Option(help="Optimizer name (default: the task's).")]
TaskLr = Annotated[float | None, typer.Option(help="Learning rate (default: the task's table).")]
OnNonFinite = Annotated[
    str,
    typer.Option(
        help="A step whose loss or gradients are NaN or infinite: raise (stop and name "
        "the step and parameter), skip (skip the update) or rollback (restore the last "
        "good state, halve the learning rate)."
    ),
]


AllowDivergence = Annotated[
    bool,
    typer.Option(
        "--allow-divergence",
        help="Exit 0 even when a run diverged (by default such a run exits with status 3).",
    ),
]
DIVERGED = ("exploding", "lr_too_large")
"""Verdicts that mean the loss blew up: the command says so and exits 3."""


def check_divergence(diagnostics: list[dict[str, Any]], allowed: bool) -> None:
    """Print each diverged run's verdict on standard error; exit 3 unless ``allowed``."""
    bad = [d for d in diagnostics if d.get("verdict") in DIVERGED]
    for d in bad:
        typer.echo(
            f"diverged: {d['optimizer']}, seed {d['seed']}: {d['verdict']}: "
            f"{d['evidence'].get('finding', '')}",
            err=True,
        )
    if bad and not allowed:
        typer.echo("(exit status 3: a run diverged; --allow-divergence accepts it)", err=True)
        raise typer.Exit(3)


# The keys of ``descend train --config FILE`` (``best.yaml`` of ``descend tune`` has them).
CONFIG_KEYS = (
    "task",
    "optimizer",
    "lr",
    "optimizer_options",
    "seed",
    "epochs",
    "batch_size",
    "schedule",
)


def read_train_config(path: Path) -> dict[str, Any]:
    """The settings in a ``--config`` YAML file; unknown keys are refused, naming the allowed ones."""
    import yaml

    if not path.is_file():
        raise FileNotFoundError(f"--config file {str(path)!r} does not exist.")
    loaded = yaml.safe_load(path.read_text()) or {}
    if not isinstance(loaded, dict):
        # ValueError, not TypeError: a bad file is bad input (exit 2), not a bug.
        raise ValueError(  # noqa: TRY004
            f"--config file {str(path)!r} must hold a mapping of settings."
        )
    unknown = [k for k in loaded if k not in CONFIG_KEYS]
    if unknown:
        raise ValueError(
            f"--config file {str(path)!r} has unknown key(s) {', '.join(map(str, unknown))}; "
            f"allowed: {', '.join(CONFIG_KEYS)}."
        )
    return loaded


@app.command("train")
def train(
    task: Annotated[
        str | None, typer.Argument(help="Built-in task name, e.g. digits (or from --config).")
    ] = None,
    optimizer: TaskOptimizer = None,
    lr: TaskLr = None,
    schedule: Annotated[
        str | None,
        typer.Option(
            help="Learning-rate schedule: " + ", ".join(SCHEDULE_NAMES) + " (default constant)."
        ),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs (default: the task's).")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Mini-batch size (default: the task's).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed for data split, initialization and order (default 0).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML settings (best.yaml of descend tune); flags given override them.",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Run folder (default: runs/train-TASK-OPT-TIME).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the checkpoints in --out.")
    ] = False,
    checkpoint_every: Annotated[
        int | None, typer.Option(help="Also checkpoint every N steps.")
    ] = None,
    on_nonfinite: OnNonFinite = "raise",
    quiet: Annotated[
        bool, typer.Option("--quiet", help="No progress bar; print only the summary.")
    ] = False,
    allow_divergence: AllowDivergence = False,
    nproc: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Train on N processes of this machine (torchrun's elastic agent; gloo on "
            "the CPU): --batch-size is then the global batch, shared among them.",
        ),
    ] = None,
    strategy: Annotated[
        str,
        typer.Option(
            help="With --nproc (or under torchrun): ddp (DistributedDataParallel) or fsdp (FSDP2)."
        ),
    ] = "ddp",
    max_restarts: Annotated[
        int,
        typer.Option(
            min=0,
            help="With --nproc: restart all processes this many times when one dies; each "
            "restart resumes from the last complete checkpoint (needs --out).",
        ),
    ] = 0,
) -> None:
    """Train one optimizer on a task; write config, metrics, figures, report.html and model.pt.

    Exits with status 3 when the run diverged (its loss blew up), unless --allow-divergence.
    """
    import os

    import torch

    from descend.train.distributed import full_model_state, is_main_process, launched_by_torchrun

    check_name("strategy", strategy, ["ddp", "fsdp"])
    os.environ.setdefault("DESCEND_STRATEGY", strategy)

    from descend.diagnose import GradientHealth, layer_gradient_series, verdicts_for_runs
    from descend.optim import optimizer_names
    from descend.report import write_run
    from descend.tasks import get_task, run_task, task_names

    given = read_train_config(config) if config is not None else {}
    task = task if task is not None else given.get("task")
    if task is None:
        raise typer.BadParameter("give a TASK, or a --config file that names one.")
    optimizer = optimizer if optimizer is not None else given.get("optimizer")
    lr = lr if lr is not None else given.get("lr")
    schedule = schedule if schedule is not None else given.get("schedule", "constant")
    seed = seed if seed is not None else given.get("seed", 0)
    epochs = epochs if epochs is not None else given.get("epochs")
    batch_size = batch_size if batch_size is not None else given.get("batch_size")
    optimizer_options = dict(given.get("optimizer_options") or {})
    if "betas" in optimizer_options:
        optimizer_options["betas"] = tuple(optimizer_options["betas"])

    the_task = get_task(check_name("task", task, task_names()))
    name = check_name("optimizer", optimizer or the_task.default_optimizer, optimizer_names())
    if resume and out is None:
        raise typer.BadParameter("--resume needs --out, the folder of the run to continue.")
    folder = out if out is not None else default_out("train", task, name)
    if nproc is not None and not launched_by_torchrun():
        _launch(nproc, strategy, max_restarts, folder, resume, given_out=out is not None)
        return
    folder.mkdir(parents=True, exist_ok=True)

    options: dict[str, Any] = {
        "lr": lr,
        "seed": seed,
        "schedule": schedule,
        "on_nonfinite": on_nonfinite,
        "optimizer_options": optimizer_options,
    }
    if epochs is not None:
        options["epochs"] = epochs
    if batch_size is not None:
        options["batch_size"] = batch_size
    health = GradientHealth(every_n_steps=10)
    result = run_task(
        the_task,
        name,
        callbacks=[health],
        checkpoint_dir=folder / "checkpoints",
        checkpoint_every=checkpoint_every,
        resume=resume,
        progress=not quiet and sys.stderr.isatty(),
        **options,
    )

    model_state = full_model_state(result.model)  # gathered from every rank under FSDP2
    if not is_main_process():
        return  # rank 0 writes the run folder
    record = run_record(result, the_task)
    config = {"command": "train", **record["config"], "resume": resume}
    diagnostics = verdicts_for_runs([result], [health])
    written = write_run(
        folder,
        task=task_info(the_task),
        runs=[record],
        config=config,
        diagnostics=diagnostics,
        layer_gradients=layer_gradient_series([result], [health]),
    )
    model_path = folder / "model.pt"
    # Written to a temporary name and renamed, so an interrupted save never leaves a torn file.
    partial = folder / "model.pt.partial"
    torch.save({"model": model_state}, partial)
    partial.replace(model_path)

    summary = record["summary"]
    target = the_task.target
    final = summary.get("final") or {}
    reached = summary.get("steps_to_target") is not None
    typer.echo(
        f"{the_task.name} · {name} (lr {record['lr']:g}, {record['lr_source']}) · seed {seed}"
    )
    typer.echo("final: " + ", ".join(f"{k} {format_metric(v)}" for k, v in final.items()))
    typer.echo(
        f"target {target.describe()}: "
        + (
            f"reached at step {summary['steps_to_target']} ({summary.get('time_to_target', 0):.2f} s)"
            if reached
            else "not reached"
        )
    )
    typer.echo(f"stopped: {record['history'].get('stop_reason') or '-'}")
    typer.echo(f"report: {written['report']}")
    typer.echo(f"model:  {model_path}")
    signal_name = result.history.interrupted_by
    if signal_name:
        # A scheduler must not take a preempted run for a finished one: exit 128 + signal.
        typer.echo(
            f"interrupted by {signal_name} after step {len(result.history.steps)}; the checkpoint "
            f"is in {folder / 'checkpoints'}. Resume with: descend train {the_task.name} "
            f"--optimizer {name} --seed {seed} --out {folder} --resume",
            err=True,
        )
        raise typer.Exit(128 + signal.Signals[signal_name].value)
    check_divergence(diagnostics, allow_divergence)


def _launch(
    nproc: int, strategy: str, max_restarts: int, folder: Path, resume: bool, *, given_out: bool
) -> None:
    """Run this same command on ``nproc`` processes under torchrun's agent (rank 0 writes)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    from descend.train.launch import strip_option, torchrun

    argv = strip_option(sys.argv[1:], "--nproc")
    if not given_out:
        argv += ["--out", str(folder)]  # one folder for all ranks, named once
    if max_restarts and not resume:
        argv.append("--resume")  # the first attempt finds no checkpoint and starts afresh
    try:
        torchrun(nproc, ["descend.cli.main", *argv], strategy=strategy, max_restarts=max_restarts)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        typer.echo(
            f"error: rank {rank} of {nproc} failed (exit code {failure.exitcode}); its output "
            "is above. A run that wrote checkpoints continues with the same command and --resume.",
            err=True,
        )
        # The worker's status (2: bad input) when it exited; 1 when a signal killed it.
        raise typer.Exit(failure.exitcode if failure.exitcode > 0 else 1) from None
