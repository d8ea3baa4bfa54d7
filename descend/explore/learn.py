"""``descend learn``: the lessons as one self-contained HTML file that opens from disk.

The page carries Plotly's script (from the ``plotly`` package), the explorer's own
figure code and every lesson's data, computed here by the same functions the server
calls, so it shows what the live page shows, without a server.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from descend.explore.catalog import terrain_view
from descend.explore.lessons import LESSONS
from descend.explore.page_data import STATIC, lesson_payload, plotly_js
from descend.explore.runs import parse_request, run_request

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 0 auto; padding: 1em; color: #222; }
section { border-top: 1px solid #ddd; padding: 1em 0; }
.row { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; }
.fig { height: 420px; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 6px; border-radius: 2px; }
.reason { font-size: 12px; color: #555; margin-left: 18px; }
ul { list-style: none; padding: 0; }
"""

_RENDER = """
const DATA = JSON.parse(document.getElementById("lesson-data").textContent);
for (const l of DATA.lessons) {
  if (l.runs) {
    ExploreFigures.drawRuns({ map: `map-${l.key}`, gap: `gap-${l.key}`, verdicts: `verdicts-${l.key}` },
      DATA.terrains[l.terrain_key], l.runs, l.start);
  }
  if (l.figure) ExploreFigures.drawFigure(`fig-${l.key}`, l.figure);
}
document.body.dataset.ready = "1";
"""


def lessons_data() -> dict[str, Any]:
    """Every lesson with its runs and figure, and the terrains they walk on."""
    lessons, terrains = [], {}
    for lesson in LESSONS:
        item = lesson_payload(lesson.key, {})
        if lesson.request is not None:
            request = parse_request(dict(lesson.request))
            item["runs"] = run_request(request)
            item["start"] = list(request.start)
            item["terrain_key"] = key = json.dumps([request.terrain, request.knobs])
            terrains.setdefault(key, terrain_view(request.terrain, request.knobs))
        lessons.append(item)
    return {"lessons": lessons, "terrains": terrains}


def _section(item: dict[str, Any]) -> str:
    key = item["key"]
    title, text = html.escape(item["title"]), html.escape(item["text"])
    parts = [f'<section id="{key}"><h2>{title}</h2><p>{text}</p>']
    if item.get("runs"):
        parts.append(
            f'<div class="row"><div class="fig" id="map-{key}"></div><div class="fig" id="gap-{key}"></div></div>'
            f'<ul id="verdicts-{key}"></ul>'
        )
    if item.get("figure"):
        parts.append(f'<div class="fig" id="fig-{key}"></div>')
    return "".join(parts) + "</section>"


def write_learn_page(out_dir: str | Path) -> Path:
    """Write ``out_dir/lessons.html`` and return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = lessons_data()
    payload = json.dumps(data, allow_nan=False).replace("</", "<\\/")
    toc = "".join(
        f'<li><a href="#{x["key"]}">{html.escape(x["title"])}</a></li>' for x in data["lessons"]
    )
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>descend: gradient descent, lesson by lesson</title><style>{_STYLE}</style></head><body>"
        "<h1>Gradient descent, lesson by lesson</h1>"
        "<p>Every path and verdict below was computed by descend (run <code>descend explore</code> "
        f"to change the settings live).</p><ol>{toc}</ol>"
        + "".join(_section(x) for x in data["lessons"])
        + f'<script type="application/json" id="lesson-data">{payload}</script>'
        + f"<script>{plotly_js().read_text()}</script>"
        + f"<script>{(STATIC / 'figures.js').read_text()}</script>"
        + f"<script>{_RENDER}</script></body></html>"
    )
    path = out / "lessons.html"
    path.write_text(page, encoding="utf-8")
    return path
