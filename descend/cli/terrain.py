"""``descend terrain NAME``: watch optimizers descend a test function.

Writes a contour plot with every trajectory and a plot of f per iteration, and
prints a table: iterations to reach the tolerance, final f, distance to the nearest
known minimum, and why each run stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from descend.cli.app import app

# descend.terrains.TERRAIN_NAMES, spelled here so that --help does not import torch
# (tests/cli/test_startup.py checks the two agree).
TERRAIN_NAMES = (
    "quadratic",
    "rosenbrock",
    "beale",
    "himmelblau",
    "rastrigin",
    "ackley",
    "six_hump_camel",
    "saddle",
    "monkey_saddle",
    "plateau",
)

SEED_OPTIMIZERS = "sgd,momentum,nesterov,adagrad,rmsprop,adam"


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise ValueError(f"{what} must be comma-separated numbers. Got {text!r} instead.") from exc


@app.command("terrain")
def terrain(
    name: Annotated[str, typer.Argument(help="Terrain: " + ", ".join(TERRAIN_NAMES) + ".")],
    optimizers: Annotated[
        str | None,
        typer.Option(
            "--optimizers",
            "-o",
            help=f"Comma-separated optimizer names [default: {SEED_OPTIMIZERS}; with --lr-sweep: sgd].",
        ),
    ] = None,
    lr: Annotated[
        str | None,
        typer.Option(
            help="One learning rate for all, or one per optimizer [default: the terrain's rate for "
            "each optimizer].",
        ),
    ] = None,
    lr_sweep: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated learning rates for ONE optimizer.",
        ),
    ] = None,
    steps: Annotated[
        int | None, typer.Option(help="Most updates per run [default: per terrain].")
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="Start point 'x,y' [default: the terrain's].")
    ] = None,
    tol: Annotated[float, typer.Option(help="Tolerance on f − f_min for 'iters to tol'.")] = 1e-6,
    condition: Annotated[
        float | None, typer.Option(help="Condition number (quadratic only).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder [default: ./terrain-NAME].")
    ] = None,
) -> None:
    """Run optimizers on a 2-D test function; write trajectory and value plots; print a table."""
    from descend.report.terrain_plots import trajectories_figure, values_figure
    from descend.terrains import get_terrain
    from descend.terrains.explore import explore, format_table, grid

    t = get_terrain(name, **({} if condition is None else {"condition": condition}))
    if lr_sweep is not None:
        names = [o.strip() for o in (optimizers or "sgd").split(",") if o.strip()]
        if len(names) != 1 or lr is not None:
            raise ValueError("--lr-sweep takes one optimizer (--optimizers NAME) and no --lr.")
        rates = _floats(lr_sweep, "--lr-sweep")
        names = names * len(rates)
    else:
        names = [o.strip() for o in (optimizers or SEED_OPTIMIZERS).split(",") if o.strip()]
        rates = [t.lrs.get(o, 1e-3) for o in names] if lr is None else _floats(lr, "--lr")
        if len(rates) == 1:
            rates = rates * len(names)
    x0 = t.start if start is None else tuple(_floats(start, "--start"))
    n_steps = t.steps if steps is None else steps

    runs = explore(t, names, lrs=rates, steps=n_steps, start=x0, tol=tol)

    start_text = "(" + ", ".join(f"{v:g}" for v in x0) + ")"
    lr_text = ", ".join(f"{d.optimizer} {d.lr:g}" for d in runs)
    what = f"{t.name} from {start_text}, {n_steps} steps"
    title = f"{what}\nlr: {lr_text}"
    folder = Path(f"terrain-{t.name}") if out is None else out
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{t.name}_{names[0]}_lr_sweep" if lr_sweep is not None else t.name
    X, Y, Z = grid(t)
    fig = trajectories_figure(
        X,
        Y,
        Z,
        {d.label: d.path for d in runs},
        title=title,
        f_min=t.f_min,
        minima=t.minima,
        saddles=t.saddles,
        start=x0,
    )
    paths = [folder / f"{stem}_trajectories.png", folder / f"{stem}_values.png"]
    fig.savefig(paths[0])
    values_figure(
        {d.label: d.gap + (t.f_min or 0.0) for d in runs}, title=title, f_min=t.f_min
    ).savefig(paths[1])

    typer.echo(f"{what}: {t.description}")
    typer.echo(format_table(runs, tol=tol, f_min=t.f_min))
    for p in paths:
        typer.echo(f"wrote {p}")
