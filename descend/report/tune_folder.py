"""The run folder of a tuning study: ``best.yaml``, ``trials.csv``, ``summary.json``, figures, report.

``best.yaml`` holds the best trial's settings in the form ``descend train --config``
reads (task, optimizer, lr, optimizer_options, seed, epochs, batch_size, schedule),
so the best trial is rerun exactly by one command. The study itself (its journal
file, by default) sits in the same folder and is written by Optuna, not here.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from descend.report._files import write_bytes_atomic, write_text_atomic
from descend.report.html import _CSS, FigureItem, _figures
from descend.report.plots import png_bytes
from descend.report.run_folder import _json_safe
from descend.report.tune_plots import (
    history_figure,
    importance_figure,
    parallel_figure,
    sensitivity_figure,
)

_CAPTIONS = {
    "history": ("Optimization history", "Each trial's final value; the line is the best so far."),
    "parallel": (
        "Parallel coordinates",
        (
            "One line per completed trial across its hyperparameters; where the good lines "
            "bunch is where the search converged."
        ),
    ),
    "importance": (
        "Hyperparameter importances",
        "Share of the variance of the metric each hyperparameter explains (Optuna's fANOVA).",
    ),
    "sensitivity": (
        "Learning-rate sensitivity",
        (
            "Final validation metric against the learning rate: a wide plateau near the best "
            "is an optimizer that forgives a badly chosen rate; a sharp peak is one that must "
            "be tuned."
        ),
    ),
}


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _trials_csv(trials: Sequence[Mapping[str, Any]], names: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    head = [
        "number",
        "state",
        "value",
        "epochs_run",
        "seed",
        *names,
        "fail_reason",
        "lost",
        "retry_of",
    ]
    writer.writerow(head)
    for t in trials:
        writer.writerow(
            [
                t["number"],
                t["state"],
                t["value"],
                t["epochs_run"],
                t["seed"],
                *[t["params"].get(n) for n in names],
                t["fail_reason"] or "",
                t["lost"],
                t["retry_of"],
            ]
        )
    return buffer.getvalue()


def _table(trials: Sequence[Mapping[str, Any]], names: Sequence[str], maximize: bool) -> str:
    done = [t for t in trials if t["state"] == "COMPLETE" and t["value"] is not None]
    top = sorted(done, key=lambda t: t["value"], reverse=maximize)[:10]
    head = "".join(f"<th>{_e(h)}</th>" for h in ["trial", "value", "epochs", *names])
    rows = "".join(
        "<tr>" + f'<td class="name">{t["number"]}</td><td class="num strong">{t["value"]:.4f}</td>'
        f'<td class="num">{t["epochs_run"]}</td>'
        + "".join(f'<td class="num">{t["params"].get(n, 0):.4g}</td>' for n in names)
        + "</tr>"
        for t in top
    )
    failed = [t for t in trials if t["state"] == "FAIL"]
    notes = "".join(f"<li>trial {t['number']}: {_e(t['fail_reason'])}</li>" for t in failed)
    fail_html = f"<p>Failed trials:</p><ul>{notes}</ul>" if notes else ""
    return (
        f'<div class="wrap"><table class="results"><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table></div>{fail_html}"
    )


def write_tune_run(
    out_dir: Path | str,
    *,
    task: Mapping[str, Any],
    study: Mapping[str, Any],
    best_config: Mapping[str, Any] | None,
    others: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> dict[str, Path]:
    """Write the files of one study into ``out_dir``; return their paths by name.

    Args:
        task: ``{"name", "summary", ...}`` (as for :func:`write_run`).
        study: the study as plain data: ``name``, ``storage``, ``settings`` (with
            ``optimizer``, ``metric``, ``direction``, ``space``), ``trials``,
            ``best`` and ``importances`` (``dataclasses.asdict`` of a ``TuneResult``).
        best_config: what ``best.yaml`` holds; ``None`` when no trial completed.
        others: trials of other optimizers' studies on the same task, drawn in the
            sensitivity figure next to this one.
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    settings, trials = study["settings"], study["trials"]
    metric, maximize = settings["metric"], settings["direction"] == "maximize"
    names = [p["name"] for p in settings["space"]]
    written: dict[str, Path] = {}
    if best_config is not None:
        header = (
            f"# Best of {len(trials)} trials of study {study['name']!r} (trial "
            f"{study['best']['number']}, {metric} {study['best']['value']:.4f}).\n"
            "# Rerun it: descend train --config best.yaml\n"
        )
        written["best"] = write_text_atomic(
            folder / "best.yaml", header + yaml.safe_dump(dict(best_config), sort_keys=False)
        )
    written["trials"] = write_text_atomic(folder / "trials.csv", _trials_csv(trials, names))
    summary = {k: study[k] for k in ("name", "storage", "settings", "best", "importances")}
    written["summary"] = write_text_atomic(
        folder / "summary.json", json.dumps(_json_safe(summary), indent=2) + "\n"
    )
    figures = {
        "history": history_figure(trials, metric=metric, maximize=maximize),
        "parallel": parallel_figure(trials, settings["space"], metric=metric),
        "importance": importance_figure(study.get("importances") or {}),
        "sensitivity": sensitivity_figure(
            # Sorted by name so an optimizer has one color in every study's report.
            dict(sorted({settings["optimizer"]: trials, **dict(others or {})}.items())),
            metric=metric,
            title=f"{task.get('name')}: {metric} after {settings['epochs']} epochs",
        ),
    }
    items = []
    for key, fig in figures.items():
        if fig is None:
            continue
        png = png_bytes(fig)
        written[key] = write_bytes_atomic(folder / f"{key}.png", png)
        items.append(FigureItem(f"{key}.png", *_CAPTIONS[key], png))
    title = f"descend tune · {task.get('name')} · {settings['optimizer']}"
    meta = {
        "study": study["name"],
        "storage": study["storage"],
        "trials": f"{len([t for t in trials if not t['lost']])} of {settings['trials']}",
        "searched": ", ".join(
            f"{p['name']} [{p['low']:g}, {p['high']:g}]{' log' if p['log'] else ''}"
            for p in settings["space"]
        ),
        "metric": f"{metric} ({'higher' if maximize else 'lower'} is better)",
        "recipe": f"{settings['epochs']} epochs, batch {settings['batch_size']}, "
        f"{settings['schedule']} schedule, seed {settings['seed']}",
        "pruner": settings["pruner"],
        "date": datetime.now().isoformat(timespec="seconds"),
    }
    cells = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in meta.items())
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{_CSS}</style></head>
<body><main>
<header><h1>{_e(title)}</h1><p class="lead">{_e(task.get("summary"))}</p></header>
<section><h2>What was searched</h2><dl class="meta">{cells}</dl></section>
<section><h2>Best trials</h2>{_table(trials, names, maximize)}</section>
<section><h2>Figures</h2>{_figures(items) or '<p class="dim">No completed trial to plot.</p>'}</section>
<footer>Written by descend. Files in this folder: {" · ".join(_e(p.name) for p in written.values())}</footer>
</main></body></html>
"""
    written["report"] = write_text_atomic(folder / "report.html", page)
    return written
