"""The explorer's web app: a FastAPI application serving the page and a small JSON API.

Routes: ``GET /`` the page; ``GET /static/...`` its scripts (Plotly's from the
``plotly`` package, nothing from the network); ``GET /api/catalog``;
``GET /api/terrain/{name}``; ``POST /api/run``; ``GET /api/lesson/{key}``.
A bad request gets a 4xx with ``{"error": message, "field": name}``; the message names
the field, the allowed values and what was given. Runs are serialized (one at a time)
and each request is bounded in steps, runs and seconds (:mod:`descend.explore.runs`).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from descend._validation import InvalidParameterError
from descend.explore.catalog import optimizer_catalog, terrain_catalog, terrain_view
from descend.explore.lessons import LESSON_KEYS, LESSONS
from descend.explore.page_data import STATIC, lesson_payload, plotly_js
from descend.explore.runs import (
    MAX_NOISE,
    MAX_RUNS,
    MAX_STEPS,
    BadRequest,
    parse_knobs,
    parse_request,
    run_request,
)
from descend.terrains import TERRAIN_NAMES

MAX_BODY = 64 * 1024  # bytes: a request names at most 8 optimizers and a few numbers
_SCRIPTS = {"figures.js", "app.js"}


def _error(status: int, field: str, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status)


def _float(field: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise BadRequest(field, "a number", text) from None


def create_app() -> FastAPI:
    """The explorer application (serve it with uvicorn; see :func:`descend.explore.serve`)."""
    app = FastAPI(title="descend explore", docs_url=None, redoc_url=None, openapi_url=None)
    compute = threading.Lock()  # one computation at a time: a burst of requests queues

    @app.exception_handler(BadRequest)
    async def _bad(_: Request, exc: BadRequest) -> JSONResponse:
        return _error(422, exc.field, str(exc))

    @app.exception_handler(InvalidParameterError)
    async def _invalid(_: Request, exc: InvalidParameterError) -> JSONResponse:
        return _error(404, "name", str(exc))

    @app.get("/")
    def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "explore.html").read_text())

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name == "plotly.min.js":
            return FileResponse(plotly_js(), media_type="text/javascript")
        if name not in _SCRIPTS:
            return _error(
                404,
                "name",
                f"No static file {name!r}. Available: plotly.min.js, {', '.join(sorted(_SCRIPTS))}.",
            )
        return FileResponse(STATIC / name, media_type="text/javascript")

    @app.get("/api/catalog")
    def catalog() -> dict[str, Any]:
        with compute:
            optimizers = optimizer_catalog()
        return {
            "terrains": terrain_catalog(),
            "optimizers": optimizers,
            "lessons": [{"key": lesson.key, "title": lesson.title} for lesson in LESSONS],
            "limits": {"max_steps": MAX_STEPS, "max_runs": MAX_RUNS, "max_noise": MAX_NOISE},
        }

    @app.get("/api/terrain/{name}")
    def terrain(name: str, request: Request) -> dict[str, Any]:
        if name not in TERRAIN_NAMES:
            raise BadRequest("terrain", "one of " + ", ".join(TERRAIN_NAMES), name)
        knobs = parse_knobs(name, {k: _float(k, v) for k, v in request.query_params.items()})
        with compute:
            return terrain_view(name, knobs)

    @app.post("/api/run")
    async def run(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            return _error(
                413,
                "body",
                f"The request body must be at most {MAX_BODY} bytes. Got {len(body)} instead.",
            )
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(
                400, "body", f"The request body must be JSON. Got invalid JSON instead ({exc})."
            )
        parsed = parse_request(data)

        def locked() -> list[dict[str, Any]]:
            with compute:
                return run_request(parsed)

        # In a worker thread: the event loop keeps serving the page while descents run.
        return JSONResponse({"runs": await run_in_threadpool(locked)})

    @app.get("/api/lesson/{key}")
    def lesson(key: str, request: Request) -> dict[str, Any]:
        if key not in LESSON_KEYS:
            raise BadRequest("lesson", "one of " + ", ".join(LESSON_KEYS), key)
        with compute:
            return lesson_payload(key, dict(request.query_params))

    return app
