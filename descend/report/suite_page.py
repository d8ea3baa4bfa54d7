"""The page of a comparison across tasks: steps to target per task, and the performance profile."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from descend.report._files import write_bytes_atomic, write_text_atomic
from descend.report.html import _CSS, _e
from descend.report.plots import png_bytes
from descend.report.profiles import profile_figure, ratios


def _cell(cost: float | None, ratio: float) -> str:
    if cost is None or not math.isfinite(cost):
        return '<td class="num miss">not reached</td>'
    mark = " strong" if ratio == 1.0 else ""
    return f'<td class="num{mark}">{cost:.0f} <span class="dim">({ratio:.2g}×)</span></td>'


def write_suite(
    folder: Path,
    *,
    costs: Mapping[str, Mapping[str, float | None]],
    verdicts: Mapping[str, str],
    missing: Sequence[str] = (),
    notice: str | None = None,
) -> dict[str, Path]:
    """Write ``suite.json``, ``profile.png`` and ``report.html`` for a comparison across tasks.

    Args:
        costs: ``{task: {optimizer: mean steps to target, or None when not reached}}``.
        verdicts: ``{task: the task comparison's verdict sentence}``.
        missing: tasks whose comparison is not finished (shown, left out of the profile).
    """
    done = {t: c for t, c in costs.items() if t not in missing}
    written: dict[str, Path] = {}
    r = ratios(done)
    written["summary"] = write_text_atomic(
        folder / "suite.json",
        json.dumps(
            {
                "steps_to_target": done,
                "ratio_to_best": {
                    t: {k: (v if math.isfinite(v) else None) for k, v in by.items()}
                    for t, by in r.items()
                },
                "verdicts": dict(verdicts),
                "missing_tasks": list(missing),
                "complete": not missing,
            },
            indent=2,
        )
        + "\n",
    )
    figure_html = ""
    if done:
        png = png_bytes(profile_figure(done, title=f"Performance profile over {len(done)} tasks"))
        written["profile"] = write_bytes_atomic(folder / "profile.png", png)
        data = base64.b64encode(png).decode("ascii")
        figure_html = (
            "<figure><figcaption><strong>Performance profile</strong> The height of a curve at "
            "τ is the fraction of tasks on which that optimizer reached the target within τ "
            "times the steps of the fastest one; at τ = 1, how often it was the fastest; far "
            "right, how often it got there at all (as AlgoPerf scores submissions)."
            f'</figcaption><img src="data:image/png;base64,{data}" alt="performance profile">'
            "</figure>"
        )
    names = list(dict.fromkeys(n for by in costs.values() for n in by))
    head = "<tr><th>task</th>" + "".join(f"<th>{_e(n)}</th>" for n in names) + "</tr>"
    rows = []
    for task, by in costs.items():
        if task in missing:
            cells = f'<td colspan="{len(names)}" class="miss">not finished</td>'
        else:
            cells = "".join(_cell(by.get(n), r[task].get(n, math.inf)) for n in names)
        link = f'<a href="{_e(task)}/report.html">{_e(task)}</a>'
        rows.append(f'<tr><td class="name">{link}</td>{cells}</tr>')
    verdict_items = "".join(
        f"<li><strong>{_e(t)}</strong>: {_e(v)}</li>" for t, v in verdicts.items() if v
    )
    notice_html = f'<p class="notice">{_e(notice)}</p>' if notice else ""
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Optimizers across {len(costs)} tasks</title><style>{_CSS}</style></head>
<body><main>
<header><h1>Optimizers across {len(costs)} tasks</h1>{notice_html}</header>
<section><h2>Steps to target</h2><div class="wrap"><table class="results"><thead>{head}</thead>
<tbody>{"".join(rows)}</tbody></table></div>
<p class="note">Mean steps to the task's target over seeds (× the fastest optimizer on that task);
"not reached" when no seed reached it. Each task name links to its own report.</p></section>
<section><h2>Per task</h2><ul>{verdict_items}</ul></section>
<section>{figure_html}</section>
</main></body></html>
"""
    written["report"] = write_text_atomic(folder / "report.html", page)
    return written
