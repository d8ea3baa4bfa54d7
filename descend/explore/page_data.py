"""What the live page and the lessons file are made of: scripts, and each lesson's data.

Shared by the web app (:mod:`descend.explore.server`) and ``descend learn``
(:mod:`descend.explore.learn`); needs ``plotly`` for its script, not the web framework.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from descend.explore.lesson_figures import FIGURES
from descend.explore.lessons import get_lesson
from descend.explore.linreg2d import BATCH_SIZES
from descend.explore.runs import BadRequest

STATIC = Path(str(resources.files("descend.explore") / "static"))


def plotly_js() -> Path:
    """The ``plotly.min.js`` that ships inside the ``plotly`` Python package."""
    try:
        import plotly
    except ImportError as exc:
        raise RuntimeError(
            "The explorer's pages need plotly (its plotly.min.js is served or embedded): "
            "pip install 'descend[explore]'."
        ) from exc
    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def lesson_payload(key: str, query: dict[str, str]) -> dict[str, Any]:
    """A lesson as the page needs it: text, preset request, and its figure if it has one."""
    lesson = get_lesson(key)
    out = lesson.to_dict()
    if lesson.figure == "batch":
        raw = query.pop("batch_size", "8")
        try:
            size = int(raw)
        except ValueError:
            raise BadRequest(
                "batch_size", "an int, one of " + ", ".join(map(str, BATCH_SIZES)), raw
            ) from None
        out["figure"] = FIGURES["batch"](size)
        out["controls"] = [{"name": "batch_size", "choices": list(BATCH_SIZES), "value": size}]
    elif lesson.figure is not None:
        out["figure"] = FIGURES[lesson.figure]()
    if query:
        raise BadRequest(min(query), "absent: this lesson takes no such setting", query)
    return out
