"""``report.html``: one self-contained page for a run or a comparison.

Self-contained means it opens from disk with no server and no network: figures are
embedded as ``data:image/png;base64`` URIs, the CSS is inline, there is no script
and no external font. Every piece of text that came from a user or a run (names,
config values, task strings, stop reasons, diagnostics) goes through
:func:`html.escape`, so a config value such as ``<script>`` shows as text.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from descend.report.summary import lower_is_better


@dataclass(frozen=True)
class FigureItem:
    """One embedded figure: its file name, a title, a line on what to look for, PNG bytes."""

    filename: str
    title: str
    caption: str
    png: bytes


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _decimals(value: float) -> int:
    # Four decimals for numbers like accuracies and losses so a column lines up;
    # very small or large numbers keep four significant digits instead.
    return 4 if 0.01 <= abs(value) < 1000 else -1


def _metric(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}" if decimals >= 0 else f"{value:.4g}"


def _mean_std(entry: Mapping[str, Any] | None) -> str:
    if not entry or entry.get("mean") is None:
        return "—"
    decimals = _decimals(entry["mean"])
    text = _metric(entry["mean"], decimals)
    if entry.get("n", 0) > 1:
        text += f" ± {_metric(entry['std'], decimals) if decimals >= 0 else format(entry['std'], '.2g')}"
    return text


def _per_seed(entry: Mapping[str, Any] | None) -> str:
    values = (entry or {}).get("values") or []
    if len(values) < 2:
        return ""
    shown = ", ".join("—" if v is None else _metric(v, _decimals(v)) for v in values)
    return f'<div class="dim">seeds: {_e(shown)}</div>'


def _seconds(value: float | None, unit_of: float | None = None, digits: int = 3) -> str:
    """Seconds in a readable unit, chosen from ``unit_of`` (the mean) so mean and std share it."""
    if value is None:
        return "—"
    scale = abs(value if unit_of is None else unit_of)
    if scale < 1e-3:
        return f"{value * 1e6:.{digits}g} µs"
    if scale < 1:
        return f"{value * 1e3:.{digits}g} ms"
    return f"{value:.{digits}g} s"


def _seconds_entry(entry: Mapping[str, Any] | None) -> str:
    if not entry or entry.get("mean") is None:
        return "—"
    text = _seconds(entry["mean"])
    if entry.get("n", 0) > 1 and entry.get("std"):
        text += f" ± {_seconds(entry['std'], entry['mean'], digits=2)}"
    return text


def _to_target(per: Mapping[str, Any], key: str, seeds: int) -> str:
    entry = per.get(key) or {}
    reached = int(per.get("reached_target", 0))
    if not reached:
        return f'<span class="miss">not reached</span> <span class="dim">0/{seeds}</span>'
    if key == "time_to_target":
        value = _seconds_entry(entry)
    else:
        mean, std = entry.get("mean"), entry.get("std")
        value = f"{mean:.0f}" + (f" ± {std:.0f}" if entry.get("n", 0) > 1 and std else "")
    return f'{_e(value)} <span class="dim">{reached}/{seeds}</span>'


def _examples(per: Mapping[str, Any]) -> str:
    mean = (per.get("examples_to_target") or {}).get("mean")
    return "" if mean is None else f'<div class="dim">{_e(f"{mean:,.0f}")} examples</div>'


def _stop_reasons(per: Mapping[str, Any]) -> str:
    reasons = [r for r in per.get("stop_reasons") or [] if r]
    unique = list(dict.fromkeys(reasons))
    skipped = sum(per.get("skipped_steps") or [])
    note = f'<br><span class="dim">{skipped} non-finite step(s) skipped</span>' if skipped else ""
    if not unique:
        return "—" + note
    return (
        "<br>".join(
            _e(r)
            + (f' <span class="dim">×{reasons.count(r)}</span>' if reasons.count(r) > 1 else "")
            for r in unique
        )
        + note
    )


def _hyperparameters(per: Mapping[str, Any], lr_text: str) -> str:
    """Every hyperparameter and where it came from; the lr and its source alone for older runs."""
    hyper = per.get("hyperparameters")
    if not isinstance(hyper, Mapping) or not hyper:
        return f'{_e("lr " + lr_text)}<div class="dim">{_e(per.get("lr_source") or "")}</div>'
    items = []
    for key, entry in hyper.items():
        value = entry.get("value") if isinstance(entry, Mapping) else entry
        source = entry.get("source") if isinstance(entry, Mapping) else ""
        shown = _num(value) if not isinstance(value, list) else ", ".join(_num(v) for v in value)
        items.append(
            f'<li>{_e(key)} = {_e(shown)} <span class="dim">({_e(source or "")})</span></li>'
        )
    return f'<ul class="hp">{"".join(items)}</ul>'


def _results_table(summary: Mapping[str, Any]) -> str:
    target = summary.get("target") or {}
    metric = str(target.get("metric") or "")
    # With one optimizer there is nothing to rank, so no row is highlighted.
    best = summary.get("best_optimizer") if len(summary.get("optimizers") or {}) > 1 else None
    better = (
        "lower"
        if (target.get("mode") == "min" or (not target.get("mode") and lower_is_better(metric)))
        else "higher"
    )
    tied = summary.get("tied") or []
    head = (
        "<tr><th>optimizer</th><th>hyperparameters</th>"
        f"<th>final {_e(metric)}</th><th>best {_e(metric)}</th>"
        "<th>steps to target</th><th>time to target</th><th>time per step</th><th>stopped because</th></tr>"
    )
    rows = []
    for name, per in (summary.get("optimizers") or {}).items():
        seeds = len(per.get("seeds") or [])
        final = (per.get("final") or {}).get(metric)
        best_value = (per.get("best") or {}).get(metric)
        lr = per.get("lr")
        lr_text = ", ".join(_num(v) for v in lr) if isinstance(lr, list) else _num(lr)
        badge = ' <span class="badge">best</span>' if name == best else ""
        if name in tied:
            badge = ' <span class="badge tied">tied</span>'
        interval = (final or {}).get("ci")
        ci_text = (
            f'<div class="dim">95% CI {_e(_num(interval[0]))} to {_e(_num(interval[1]))}</div>'
            if interval
            else ""
        )
        rows.append(
            f'<tr class="{"best" if name == best else ""}">'
            f'<td class="name">{_e(name)}{badge}</td>'
            f"<td>{_hyperparameters(per, lr_text)}</td>"
            f'<td class="num strong">{_e(_mean_std(final))}{ci_text}{_per_seed(final)}</td>'
            f'<td class="num">{_e(_mean_std(best_value))}{_per_seed(best_value)}</td>'
            f'<td class="num">{_to_target(per, "steps_to_target", seeds)}'
            f"{_examples(per)}</td>"
            f'<td class="num">{_to_target(per, "time_to_target", seeds)}</td>'
            f'<td class="num">{_e(_seconds_entry(per.get("seconds_per_step")))}</td>'
            f"<td>{_stop_reasons(per)}</td></tr>"
        )
    note = (
        f"Mean ± standard deviation over seeds, and the 95% bootstrap interval of the mean; "
        f"for {_e(metric)}, {better} is better. "
        f"“best” marks the optimizer with the best mean final {_e(metric)} when it is "
        "separated from every other (the paired 95% interval of the per-seed difference "
        "excludes 0); “tied” marks those that cannot be told from the leader. "
        "A fraction such as 2/3 after a target column counts the seeds that reached the target."
    )
    table = f'<table class="results"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
    return f'<div class="wrap">{table}</div><p class="note">{note}</p>'


def _meta(task: Mapping[str, Any], config: Mapping[str, Any], created: str) -> str:
    target = task.get("target") or {}
    if isinstance(target, Mapping) and "metric" in target:
        sign = "≤" if target.get("mode") == "min" else "≥"
        target_text = f"{target['metric']} {sign} {_num(target.get('value'))}"
    else:
        target_text = str(target or "—")
    versions = config.get("versions") or {}
    version_text = (
        ", ".join(f"{k} {v}" for k, v in versions.items())
        if isinstance(versions, Mapping)
        else str(versions)
    )
    items = [
        ("task", task.get("name")),
        ("data", task.get("data_source")),
        ("model", task.get("model_summary")),
        ("target", target_text),
        ("optimizers", ", ".join(map(str, config.get("optimizers") or []))),
        ("seeds", ", ".join(map(str, config.get("seeds") or []))),
        ("epochs", config.get("epochs")),
        # A batch size of None is batch gradient descent: every update sees all the data.
        (
            "batch size",
            "full batch"
            if "batch_size" in config and config["batch_size"] is None
            else config.get("batch_size"),
        ),
        ("schedule", config.get("schedule")),
        ("date", created),
        ("versions", version_text),
    ]
    cells = "".join(
        f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in items if v not in (None, "", [])
    )
    return f'<dl class="meta">{cells}</dl>'


def _figures(figures: Sequence[FigureItem]) -> str:
    parts = []
    for item in figures:
        data = base64.b64encode(item.png).decode("ascii")
        parts.append(
            f"<figure><figcaption><strong>{_e(item.title)}</strong> {_e(item.caption)}</figcaption>"
            f'<img src="data:image/png;base64,{data}" alt="{_e(item.title)}"></figure>'
        )
    return "".join(parts)


def _evidence(value: Any) -> str:
    if isinstance(value, Mapping):
        return (
            "<ul>"
            + "".join(f"<li><code>{_e(k)}</code>: {_e(v)}</li>" for k, v in value.items())
            + "</ul>"
        )
    if isinstance(value, list | tuple):
        return "<ul>" + "".join(f"<li>{_e(v)}</li>" for v in value) + "</ul>"
    return f"<p>{_e(value)}</p>"


def _seed_label(d: Mapping[str, Any]) -> str:
    return "" if d.get("seed") is None else f' <span class="dim">seed {_e(d.get("seed"))}</span>'


def _diagnostics(diagnostics: Sequence[Mapping[str, Any]]) -> str:
    """One table row per verdict; anything but "healthy" highlighted, its evidence a click away."""
    rows = []
    for d in diagnostics:
        evidence = d.get("evidence")
        finding = evidence.get("finding", "") if isinstance(evidence, Mapping) else ""
        details = (
            {k: v for k, v in evidence.items() if k != "finding"}
            if isinstance(evidence, Mapping)
            else evidence
        )
        flag = "" if d.get("verdict") == "healthy" else ' data-exception="1"'
        rows.append(
            f'<tr class="diag"{flag}><td class="name">{_e(d.get("optimizer"))}</td>'
            f"<td>{_e(d.get('seed'))}</td>"
            f'<td><span class="verdict">{_e(d.get("verdict"))}</span></td>'
            f"<td><details><summary>{_e(finding) or 'evidence'}</summary>"
            f"{_evidence(details)}</details></td></tr>"
        )
    trouble = sum(1 for d in diagnostics if d.get("verdict") != "healthy")
    lead = (
        f"{trouble} of {len(diagnostics)} verdicts name a problem (highlighted)."
        if trouble
        else f"All {len(diagnostics)} runs healthy."
    )
    table = (
        '<table class="results diag-table"><thead><tr><th>optimizer</th><th>seed</th>'
        "<th>verdict</th><th>finding (click for the numbers)</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return f'<section><h2>Diagnostics</h2><p class="note">{_e(lead)}</p>{table}</section>'


_CSS = """
:root{--ink:#1d2430;--dim:#6b7585;--line:#e3e7ee;--bg:#f6f7f9;--card:#fff;--accent:#2f6fdf;--good:#e8f6ec;--goodline:#2e9e55;--bad:#b4432f}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1240px;margin:0 auto;padding:28px 24px 48px}
header h1{margin:0 0 4px;font-size:26px;letter-spacing:-.01em}
header p.lead{margin:0 0 18px;color:var(--dim)}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 22px;margin:18px 0;box-shadow:0 1px 2px rgba(20,30,50,.04)}
h2{font-size:18px;margin:0 0 12px}
dl.meta{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:10px 22px;margin:0}
dl.meta dt{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:var(--dim)}
dl.meta dd{margin:0;overflow-wrap:anywhere}
.wrap{overflow-x:auto}
.verdict-line{font-size:18px;font-weight:600;margin:8px 0}
.hp{list-style:none;margin:0;padding:0;font-size:12px}
.badge.tied{background:#777}
.notice{border:2px solid #c77700;background:#fff6e5;padding:8px 12px;border-radius:6px;font-weight:600}
table.results{border-collapse:collapse;width:100%;font-size:14px}
table.results td{overflow-wrap:anywhere}
table.results th{text-align:left;font-weight:600;color:var(--dim);font-size:12px;text-transform:uppercase;letter-spacing:.04em;border-bottom:2px solid var(--line);padding:8px 10px}
table.results td{padding:9px 10px;border-bottom:1px solid var(--line);vertical-align:top}
table.results tbody tr:nth-child(even){background:#fafbfc}
table.results tr.best{background:var(--good)!important;box-shadow:inset 4px 0 0 var(--goodline)}
td.num{font-variant-numeric:tabular-nums}
td.strong{font-weight:600}
td.name{font-weight:600}
.badge{display:inline-block;background:var(--goodline);color:#fff;font-size:11px;border-radius:9px;padding:0 7px;margin-left:6px;vertical-align:1px}
.dim{color:var(--dim);font-size:12px;font-weight:400}
.miss{color:var(--bad)}
p.note{color:var(--dim);font-size:13px;margin:10px 0 0}
figure{margin:0 0 22px}
figure:last-child{margin-bottom:0}
figcaption{margin:0 0 8px}
figure img{display:block;max-width:100%;height:auto;border:1px solid var(--line);border-radius:6px;background:#fff}
tr.diag[data-exception]{background:#fdecea!important;box-shadow:inset 4px 0 0 var(--bad)}
.diag-table summary{font-weight:400}
.diag .verdict{color:var(--accent);font-weight:600}
.diag ul,.diag p{margin:4px 0}
pre{background:#f3f5f8;border-radius:6px;padding:12px;overflow:auto;font-size:13px}
details summary{cursor:pointer;font-weight:600}
footer{color:var(--dim);font-size:12px;text-align:center}
"""


def render_html(
    *,
    title: str,
    task: Mapping[str, Any],
    summary: Mapping[str, Any],
    config: Mapping[str, Any],
    config_text: str,
    figures: Sequence[FigureItem],
    diagnostics: Sequence[Mapping[str, Any]] | None = None,
    created: str = "",
    files: Sequence[str] = (),
    notice: str | None = None,
) -> str:
    """The whole page as one string (see the module docstring for what it guarantees).

    ``notice`` is shown in a box under the title: e.g. that a comparison is incomplete.
    """
    lead = task.get("summary") or ""
    notice_html = f'<p class="notice">{_e(notice)}</p>' if notice else ""
    if summary.get("verdict"):
        notice_html = f'<p class="verdict-line">{_e(summary["verdict"])}</p>' + notice_html
    diag = _diagnostics(diagnostics) if diagnostics else ""
    figure_html = _figures(figures) if figures else '<p class="dim">No history to plot.</p>'
    files_text = " · ".join(_e(f) for f in files)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{_CSS}</style>
</head>
<body><main>
<header><h1>{_e(title)}</h1><p class="lead">{_e(lead)}</p>{notice_html}</header>
<section><h2>What was run</h2>{_meta(task, config, created)}</section>
<section><h2>Results</h2>{_results_table(summary)}</section>
<section><h2>Figures</h2>{figure_html}</section>
{diag}
<section><details><summary>Full configuration (config.yaml)</summary><pre>{_e(config_text)}</pre></details></section>
<footer>Written by descend. Files in this folder: {files_text}</footer>
</main></body>
</html>
"""
