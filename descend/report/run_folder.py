"""The run folder: everything one ``descend train`` or ``descend compare`` leaves behind.

:func:`write_run` writes, into ``out_dir``:

============== =============================================================
``config.yaml`` what was asked: task, optimizers, each lr and where it came
                from, seeds, epochs, batch size, schedule, versions, date
``metrics.csv`` every step of every run, long format (see ``metrics_table``)
``summary.json`` per optimizer: final and best metrics, mean/std over seeds,
                steps and time to target, time per step, stop reasons
``loss.png``    training loss against steps and wall time
``validation.png`` the target metric per epoch, target dashed
``lr.png``      learning rate against steps
``report.html`` all of the above on one self-contained page
``tensorboard/`` event files, only when TensorBoard is installed
============== =============================================================

Every file is written atomically, so an interrupted write never leaves a
truncated report. Inputs are plain data (dicts, lists, strings); this layer
imports nothing from the rest of descend.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from descend._validation import Satisfies, validate
from descend.report._files import write_bytes_atomic, write_text_atomic
from descend.report.diagnose_plots import layer_gradients_figure
from descend.report.html import FigureItem, render_html
from descend.report.metrics_table import write_metrics_csv
from descend.report.plots import loss_figure, lr_figure, png_bytes, validation_figure
from descend.report.summary import finite_or_none, group_by_optimizer, summarize_runs
from descend.report.tensorboard_events import write_tensorboard
from descend.report.tuning_plots import tuning_figure

_CAPTIONS = {
    "loss": (
        "Training loss",
        (
            "Lower is better. Left: per step; right: per second of wall time, where an optimizer "
            "that is cheaper per step moves left. A wide band means the outcome depends on the seed."
        ),
    ),
    "validation": (
        "Validation",
        (
            "The dashed line is the target: the first curve to cross it gets there in the fewest "
            "steps (left) or seconds (right). Points are end-of-epoch evaluations."
        ),
    ),
    "lr": (
        "Learning rate",
        "The rate each optimizer actually used: flat for a constant rate, falling under a schedule.",
    ),
    "tuning": (
        "Tuning trials",
        (
            "Each optimizer's score on a split of the training set (never the validation set "
            "the table is judged on) at each learning rate it was given; the ringed point is "
            "the rate compared. A flat curve means the optimizer is forgiving; a sharp peak, "
            "that its rate must be right. Crosses: trials that diverged."
        ),
    ),
    "gradients": (
        "Gradient norm per layer",
        (
            "Median gradient norm of each weight layer over the recorded steps, first layer on the "
            "left. A line that falls by orders of magnitude towards the first layers is a "
            "vanishing gradient; one far above the others, an exploding one."
        ),
    ),
}


def _plain(value: Any) -> Any:
    """``value`` made of YAML/JSON-safe types: dicts, lists, str, int, float, bool, None."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value
    return str(value)


def _json_safe(value: Any) -> Any:
    # NaN and inf are not JSON; a diverged run's numbers become null (its stop reason says why).
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float):
        return finite_or_none(value)
    return _plain(value)


def versions() -> dict[str, str]:
    """Versions of descend, torch and Python, read from package metadata (no import of torch)."""
    found = {}
    for package in ("descend", "torch"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    found["python"] = platform.python_version()
    return found


def build_config(
    task: Mapping[str, Any],
    runs: Sequence[Mapping[str, Any]],
    config: Mapping[str, Any],
    created: str,
) -> dict[str, Any]:
    """What ``config.yaml`` holds: the caller's config, completed from the runs themselves."""
    groups = group_by_optimizer(runs)
    derived: dict[str, Any] = {
        "task": task.get("name"),
        "optimizers": list(groups),
        "lrs": {
            name: {"lr": group[0].get("lr"), "source": group[0].get("lr_source")}
            for name, group in groups.items()
        },
        "seeds": list(dict.fromkeys(run.get("seed") for run in runs)),
    }
    merged = {**derived, **{str(k): v for k, v in config.items()}}
    merged.setdefault("versions", versions())
    merged.setdefault("created", created)
    # Each run's own settings: for one run, folded into the top level (no repetition).
    if len(runs) == 1:
        for key, value in (runs[0].get("config") or {}).items():
            merged.setdefault(str(key), value)
    else:
        merged["runs"] = [
            {k: run.get(k) for k in ("optimizer", "seed", "lr", "lr_source", "config") if k in run}
            for run in runs
        ]
    return _plain(merged)


def _default_title(task: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> str:
    groups = group_by_optimizer(runs)
    name = task.get("name", "run")
    if len(runs) == 1:
        run = runs[0]
        return f"{name}: {run.get('optimizer')} (lr {run.get('lr')}, seed {run.get('seed')})"
    return f"{name}: {', '.join(groups)} compared"


def _figures(task: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> list[tuple[str, Any]]:
    name = str(task.get("name", "run"))
    given = task.get("target")
    target = given if isinstance(given, Mapping) else {}
    metric = str(target.get("metric") or "val_loss")
    made = [
        ("loss", loss_figure(runs, task_name=name)),
        (
            "validation",
            validation_figure(
                runs, task_name=name, metric=metric, target=finite_or_none(target.get("value"))
            ),
        ),
        ("lr", lr_figure(runs, task_name=name)),
    ]
    return [(key, figure) for key, figure in made if figure is not None]


# Characters YAML reads as line breaks, which PyYAML's emitter does not escape when
# writing Unicode as is (NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR).
_YAML_BREAKS = ("\x85", "\u2028", "\u2029")


def write_run(
    out_dir: Path | str,
    *,
    task: Mapping[str, Any],
    runs: Sequence[Mapping[str, Any]],
    config: Mapping[str, Any],
    title: str | None = None,
    diagnostics: Sequence[Mapping[str, Any]] | None = None,
    layer_gradients: Mapping[str, Sequence[float]] | None = None,
    tensorboard: bool = True,
    metrics: bool = True,
    notice: str | None = None,
    summary_extra: Mapping[str, Any] | None = None,
    tuning: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Path]:
    """Write a run folder for one or more runs; return ``{name: path}`` of what was written.

    Args:
        out_dir: the folder (created if needed; files in it are replaced).
        task: ``{"name", "summary", "data_source", "model_summary", "target": {"metric", "value", "mode"}}``.
        runs: one dict per (optimizer, seed), as the tasks layer produces them.
        config: what the user asked for (epochs, batch_size, schedule, ...).
        title: the report's heading; by default says the task and what was run.
        diagnostics: optional ``[{"optimizer", "seed", "verdict", "evidence"}]`` shown in the report.
        layer_gradients: optional ``{line label: [gradient norm of each weight layer, first
            to last]}``, drawn as the ``gradients`` figure.
        tensorboard: also write ``tensorboard/`` event files when TensorBoard is installed.
        metrics: write ``metrics.csv``; ``False`` when the caller keeps it up to date itself
            (a comparison appends each run's rows as the run ends).
        notice: a sentence shown prominently at the top of the report (e.g. "incomplete").
        summary_extra: keys added to ``summary.json`` (e.g. ``complete``, ``missing_runs``).
        tuning: optional ``{optimizer: {"hyperparameters", "trials", "metric"}}``, drawn as
            the ``tuning`` figure (score against learning rate).

    Returns:
        Paths keyed ``config``, ``metrics``, ``summary``, ``report``, one key per figure
        (``loss``, ``validation``, ``lr``) and ``tensorboard`` when event files were written.
    """
    validate(
        "write_run",
        {"out_dir": out_dir, "task": task, "runs": runs, "config": config},
        {
            "out_dir": Satisfies(
                lambda v: isinstance(v, str | Path) and str(v) != "", "a non-empty path"
            ),
            "task": Satisfies(
                lambda v: isinstance(v, Mapping) and "name" in v, "a dict with a 'name' key"
            ),
            "runs": Satisfies(
                lambda v: (
                    isinstance(v, Sequence)
                    and len(v) > 0
                    and all(isinstance(r, Mapping) for r in v)
                ),
                "a non-empty list of dicts",
            ),
            "config": Satisfies(lambda v: isinstance(v, Mapping), "a dict"),
        },
    )
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    written: dict[str, Path] = {}

    full_config = build_config(task, runs, config, created)
    config_text = yaml.safe_dump(full_config, sort_keys=False, allow_unicode=True)
    if any(c in config_text for c in _YAML_BREAKS):
        # PyYAML writes these line breaks raw and folds them into spaces on reading: escape
        # them (all non-ASCII text is then escaped, which it reads back exactly).
        config_text = yaml.safe_dump(full_config, sort_keys=False)
    written["config"] = write_text_atomic(folder / "config.yaml", config_text)
    if metrics:
        written["metrics"] = write_metrics_csv(folder / "metrics.csv", runs)
    elif (folder / "metrics.csv").exists():
        written["metrics"] = folder / "metrics.csv"
    summary = {**summarize_runs(_plain(task), runs), **_plain(dict(summary_extra or {}))}
    written["summary"] = write_text_atomic(
        folder / "summary.json", json.dumps(_json_safe(summary), indent=2, allow_nan=False) + "\n"
    )

    items: list[FigureItem] = []
    made = _figures(task, runs)
    if layer_gradients:
        made.append(
            (
                "gradients",
                layer_gradients_figure(
                    layer_gradients,
                    title=f"Gradient norm per weight layer — {task.get('name', 'run')}",
                ),
            )
        )
    if tuning:
        figure = tuning_figure(tuning, title=f"Tuning trials — {task.get('name', 'run')}")
        if figure is not None:
            made.append(("tuning", figure))
    for key, figure in made:
        png = png_bytes(figure)
        written[key] = write_bytes_atomic(folder / f"{key}.png", png)
        heading, caption = _CAPTIONS[key]
        items.append(FigureItem(filename=f"{key}.png", title=heading, caption=caption, png=png))

    if tensorboard and write_tensorboard(folder / "tensorboard", runs):
        written["tensorboard"] = folder / "tensorboard"

    files = [p.name + ("/" if p.is_dir() else "") for p in written.values()] + ["report.html"]
    page = render_html(
        title=title or _default_title(task, runs),
        task=task,
        summary=summary,
        config=full_config,
        config_text=config_text,
        figures=items,
        diagnostics=diagnostics,
        created=created,
        files=files,
        notice=notice,
    )
    written["report"] = write_text_atomic(folder / "report.html", page)
    return written


def write_single_run(
    out_dir: Path | str,
    *,
    task: Mapping[str, Any],
    run: Mapping[str, Any],
    config: Mapping[str, Any],
    title: str | None = None,
    diagnostics: Sequence[Mapping[str, Any]] | None = None,
    layer_gradients: Mapping[str, Sequence[float]] | None = None,
    tensorboard: bool = True,
) -> dict[str, Path]:
    """:func:`write_run` for one run (one optimizer, one seed), as ``descend train`` writes it."""
    return write_run(
        out_dir,
        task=task,
        runs=[run],
        config=config,
        title=title,
        diagnostics=diagnostics,
        layer_gradients=layer_gradients,
        tensorboard=tensorboard,
    )
