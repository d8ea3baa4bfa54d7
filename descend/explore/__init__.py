"""The explorer: a local page where gradient descent walks a terrain, and the lessons page.

The library side is plain data in, plain data out (:func:`parse_request`,
:func:`run_request`, :func:`lesson_data`); the web app (:mod:`descend.explore.server`,
needs the ``explore`` extra) and the static lessons page only carry it to the browser.
"""

from descend.explore.catalog import optimizer_catalog, terrain_catalog, terrain_view
from descend.explore.runs import BadRequest, Request, parse_request, run_request

__all__ = [
    "BadRequest",
    "Request",
    "optimizer_catalog",
    "parse_request",
    "run_request",
    "terrain_catalog",
    "terrain_view",
]
