"""``descend landscape TASK``: slices of a trained network's loss surface, with its training path.

Trains the task's model briefly (recording the parameters every few steps) unless
``--checkpoint`` gives trained weights, then writes:

- ``landscape_2d.png``: the loss over a plane around the final parameters, spanned by
  two filter-normalized random directions (or the trajectory's principal directions
  with ``--directions pca``), with the training path projected onto it;
- ``landscape_1d.png``: the loss on the straight line from initial to final parameters;
- ``landscape.npz``: ``alphas``, ``betas``, ``losses`` (rows are betas), ``trajectory``
  (``(T, 2)`` plane coordinates), ``trajectory_steps``, ``line_alphas``, ``line_losses``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from descend.cli.app import app
from descend.cli.train_cmd import DeviceOption, PrecisionOption, TaskLr, check_name, default_out

DIRECTIONS = ["random", "pca"]


def _load_weights(path: Path) -> dict:
    """A state dict from ``model.pt`` (``{"model": ...}``, as ``descend train`` writes) or a bare one."""
    from descend.train.checkpoint import load_tensors_file

    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint file at {str(path)!r}.")
    loaded = load_tensors_file(path)
    if isinstance(loaded, dict) and isinstance(loaded.get("model"), dict):
        return loaded["model"]
    if isinstance(loaded, dict):
        return loaded
    raise ValueError(f"{str(path)!r} holds no state dict (a dict of tensors, or {{'model': ...}}).")


@app.command("landscape")
def landscape(
    task: Annotated[str, typer.Argument(help="Built-in task name, e.g. digits.")],
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: runs/landscape-TASK-TIME).")
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="Trained weights (model.pt of descend train); no training then."),
    ] = None,
    steps: Annotated[
        int, typer.Option(min=1, help="Training steps when no checkpoint is given.")
    ] = 200,
    every: Annotated[
        int | None, typer.Option(help="Snapshot every N steps (default: steps / 20).")
    ] = None,
    optimizer: Annotated[
        str | None, typer.Option(help="Optimizer for the brief training (default: the task's).")
    ] = None,
    lr: TaskLr = None,
    grid: Annotated[int, typer.Option(min=2, help="Points per axis of the 2-D slice.")] = 21,
    span: Annotated[
        float | None,
        typer.Option(help="Half-width of the 2-D slice (default: 1 for random, fitted for pca)."),
    ] = None,
    directions: Annotated[str, typer.Option(help="Plane directions: random or pca.")] = "random",
    samples: Annotated[
        int, typer.Option(min=1, help="Training samples the loss is evaluated on.")
    ] = 256,
    seed: Annotated[int, typer.Option(help="Seed of data, weights, order and directions.")] = 0,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "fp32",
) -> None:
    """Plot the loss surface around a trained model: 2-D contour with the trajectory, 1-D line."""
    import numpy as np

    from descend.diagnose import (
        ParameterSnapshots,
        interpolate,
        parameter_vector,
        pca_directions,
        plane,
        project,
        random_directions,
    )
    from descend.optim import optimizer_names
    from descend.report import png_bytes
    from descend.report.diagnose_plots import landscape_1d_figure, landscape_2d_figure
    from descend.tasks import get_task, run_task, task_names

    the_task = get_task(check_name("task", task, task_names()))
    how = check_name("direction kind", directions, DIRECTIONS)
    # Read the weights first: a bad --checkpoint leaves no empty output folder behind.
    weights = None if checkpoint is None else _load_weights(checkpoint)
    folder = out if out is not None else default_out("landscape", task)
    folder.mkdir(parents=True, exist_ok=True)
    data = the_task.data(seed)
    x, y = data.train
    subset = (x[:samples], y[:samples])
    initial = the_task.model(seed)
    theta_0 = parameter_vector(initial)

    if checkpoint is not None and weights is not None:
        if how == "pca":
            raise typer.BadParameter(
                "--directions pca needs a trajectory: train (no --checkpoint)."
            )
        model = the_task.model(seed)
        model.load_state_dict(weights)
        trajectory, traj_steps, what = (
            None,
            np.zeros(0, dtype=int),
            f"weights from {checkpoint.name}",
        )
    else:
        name = check_name("optimizer", optimizer or the_task.default_optimizer, optimizer_names())
        snapshots = ParameterSnapshots(every_n_steps=every or max(1, steps // 20))
        typer.echo(f"training {the_task.name} with {name} for {steps} steps ...", err=True)
        run = run_task(
            the_task,
            name,
            lr=lr,
            seed=seed,
            max_steps=steps,
            callbacks=[snapshots],
            eval_train=False,
            device=device,
            precision=precision,
        )
        # --device and --precision apply to the training; the slices (a few hundred
        # samples) are evaluated on the CPU in float32, where the snapshots are kept.
        model = run.model.cpu()
        trajectory = snapshots.trajectory()
        traj_steps = np.array(snapshots.steps)
        what = f"{name}, lr {run.config['lr']:g}, {snapshots.steps[-1]} steps"

    center = parameter_vector(model)
    if how == "pca":
        assert trajectory is not None
        d1, d2 = pca_directions(trajectory, center)
    else:
        d1, d2 = random_directions(model, seed=seed)
    coords = None if trajectory is None else project(trajectory, center, d1, d2)
    if span is None:
        reach = 0.0 if coords is None else float(np.abs(coords).max())
        span = 1.0 if how == "random" else max(1.25 * reach, 1e-3)
    surface = plane(model, center, d1, d2, subset, the_task.loss, grid=grid, span=span)
    line = interpolate(model, theta_0, center, subset, the_task.loss, num=25, margin=0.25)

    title = f"{the_task.name} ({what})\nloss around the final weights, {how} directions"
    fig2 = landscape_2d_figure(
        surface.alphas, surface.betas, surface.losses, trajectory=coords, title=title
    )
    (folder / "landscape_2d.png").write_bytes(png_bytes(fig2))
    fig1 = landscape_1d_figure(
        line.alphas, line.losses, title=f"{the_task.name}: loss from initial to final weights"
    )
    (folder / "landscape_1d.png").write_bytes(png_bytes(fig1))
    np.savez(
        folder / "landscape.npz",
        alphas=surface.alphas,
        betas=surface.betas,
        losses=surface.losses,
        trajectory=np.zeros((0, 2)) if coords is None else coords,
        trajectory_steps=traj_steps,
        line_alphas=line.alphas,
        line_losses=line.losses,
    )

    at = {a: float(line.losses[int(np.argmin(np.abs(line.alphas - a)))]) for a in (0.0, 1.0)}
    typer.echo(
        f"{the_task.name}: {what}; {grid}x{grid} slice (span {span:.3g}) on {len(subset[1])} samples"
    )
    typer.echo(
        f"loss: initial {at[0.0]:.4g}, final {at[1.0]:.4g}; on the slice "
        f"min {np.nanmin(surface.losses):.4g}, max {np.nanmax(surface.losses):.4g}"
    )
    if coords is not None:
        # Random directions in many dimensions are nearly orthogonal to the path: say how much shows.
        typer.echo(
            f"trajectory: {len(coords)} snapshots, reaching {float(np.abs(coords).max()):.3g} on this "
            "plane" + (" (try --directions pca to see the path)" if how == "random" else "")
        )
    typer.echo(f"figures: {folder / 'landscape_2d.png'}, {folder / 'landscape_1d.png'}")
    typer.echo(f"grid:    {folder / 'landscape.npz'}")
