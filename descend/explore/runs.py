"""One explorer request: optimizers descending a terrain, checked, bounded, run and judged.

A request is plain data (it arrives as JSON). :func:`parse_request` checks every field
against what exists (terrain and optimizer names from their registries, slider ranges
from :mod:`descend.explore.catalog`) and against the caps that keep one request from
holding the server (:data:`MAX_STEPS`, :data:`MAX_RUNS`, :data:`TIME_LIMIT`). The
descents are :func:`descend.minimize` runs; the verdict of each is ``minimize``'s own
(converged, diverged, saddle with the smallest Hessian eigenvalue, flat region), named
in words for the page.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from descend._validation import Interval
from descend.explore.catalog import Knobs, knob_sliders, sliders, terrain_lr, unavailable_reason
from descend.minimize import MinimizeResult, minimize
from descend.minimize.result import CONVERGED, DIVERGED, FLAT, MAX_ITER, SADDLE
from descend.optim.registry import OPTIMIZERS
from descend.terrains import TERRAIN_NAMES, Terrain, get_terrain
from descend.tune.spaces import optimizer_options

MAX_STEPS = 1000  # per run: 8 runs x 1000 steps stay within a few seconds on one core
MAX_RUNS = 8
MAX_NOISE = 10.0
TIME_LIMIT = 4.0  # seconds for a whole request; a run cut off by it says so
GTOL = 1e-6
GAP_TOL = 1e-6  # "there" for the crawling verdict: f − f* at most this
CRAWL_FACTOR = 3  # crawling: at its recent pace a run needs over 3x the steps it took
_STEPS = Interval(1, MAX_STEPS, integer=True)
_NOISE = Interval(0, MAX_NOISE, finite=True)
_OWNER = "the explore request"


class BadRequest(ValueError):
    """A request field with a value outside what is allowed; ``field`` names it."""

    def __init__(self, field: str, allowed: str, given: Any) -> None:
        self.field = field
        shown = repr(given)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        super().__init__(f"The {field!r} field of {_OWNER} must be {allowed}. Got {shown} instead.")


@dataclass(frozen=True)
class RunSpec:
    """One optimizer of a request: its registry name and every hyperparameter's value."""

    name: str
    hp: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Request:
    """A checked request: terrain, start point, steps, gradient noise and the runs."""

    terrain: str
    start: tuple[float, float]
    steps: int
    noise: float
    runs: tuple[RunSpec, ...]
    knobs: Knobs = ()

    def get_terrain(self) -> Terrain:
        return get_terrain(self.terrain, **dict(self.knobs))


def _number(field: str, value: Any, interval: Interval) -> float:
    if not interval.contains(value):
        raise BadRequest(field, interval.describe(), value)
    return value


def _names(what: str, options: Any) -> str:
    return f"one of the {what} {{{', '.join(sorted(options))}}}"


def _run_spec(i: int, item: Any, terrain: Terrain) -> RunSpec:
    field = f"optimizers[{i}]"
    if not isinstance(item, Mapping):
        raise BadRequest(field, 'an object {"name": ..., "hp": {...}}', item)
    unknown = set(item) - {"name", "hp"}
    if unknown:
        raise BadRequest(field, "an object with the keys 'name' and 'hp'", sorted(unknown))
    name = item.get("name")
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise BadRequest(f"{field}.name", _names("optimizers", OPTIMIZERS), name)
    reason = unavailable_reason(name)
    if reason is not None:
        raise BadRequest(f"{field}.name", "an optimizer that runs on 2-D terrains", reason)
    hp = item.get("hp", {})
    if not isinstance(hp, Mapping):
        raise BadRequest(f"{field}.hp", "an object of hyperparameter values", hp)
    table = {s.name: s for s in sliders(name)}
    extra = set(hp) - set(table)
    if extra:
        raise BadRequest(f"{field}.hp", f"keys among {sorted(table)}", sorted(extra))
    values = {}
    for key, s in table.items():
        v = hp.get(key, terrain_lr(terrain, name) if key == "lr" else s.default)
        allowed = Interval(s.low, s.high)
        values[key] = float(_number(f"{field}.hp.{key}", v, allowed))
    return RunSpec(name, tuple(values.items()))


def parse_knobs(terrain: str, given: Any, *, field: str = "knobs") -> Knobs:
    """Check a terrain's settings (``{"condition": 100}``) against its sliders."""
    if not isinstance(given, Mapping):
        raise BadRequest(field, "an object of terrain settings", given)
    table = {s.name: s for s in knob_sliders(terrain)}
    extra = set(given) - set(table)
    if extra:
        allowed = f"keys among {sorted(table)}" if table else f"empty: {terrain} has no settings"
        raise BadRequest(field, allowed, sorted(extra))
    return tuple(
        (k, float(_number(f"{field}.{k}", given[k], Interval(s.low, s.high))))
        for k, s in table.items()
        if k in given
    )


def parse_request(body: Any) -> Request:
    """Check a request body; raise :class:`BadRequest` naming the first bad field.

    Example:
        >>> r = parse_request({"terrain": "quadratic", "optimizers": [{"name": "gd"}]})
        >>> r.start, r.steps, dict(r.runs[0].hp)
        ((-4.0, 2.0), 200, {'lr': 0.16})
    """
    if not isinstance(body, Mapping):
        raise BadRequest("body", "a JSON object", body)
    known = {"terrain", "knobs", "start", "steps", "noise", "optimizers"}
    if set(body) - known:
        raise BadRequest(
            "body", f"an object with keys among {sorted(known)}", sorted(set(body) - known)
        )
    name = body.get("terrain")
    if not isinstance(name, str) or name not in TERRAIN_NAMES:
        raise BadRequest("terrain", _names("terrains", TERRAIN_NAMES), name)
    knobs = parse_knobs(name, body.get("knobs", {}))
    terrain = get_terrain(name, **dict(knobs))
    start = body.get("start", list(terrain.start))
    (x_lo, x_hi), (y_lo, y_hi) = terrain.domain
    inside = (
        isinstance(start, list | tuple)
        and len(start) == 2
        and Interval(x_lo, x_hi).contains(start[0])
        and Interval(y_lo, y_hi).contains(start[1])
    )
    if not inside:
        raise BadRequest(
            "start",
            f"[x, y] inside the map, x in [{x_lo:g}, {x_hi:g}], y in [{y_lo:g}, {y_hi:g}]",
            start,
        )
    steps = int(_number("steps", body.get("steps", min(terrain.steps, MAX_STEPS)), _STEPS))
    noise = float(_number("noise", body.get("noise", 0.0), _NOISE))
    items = body.get("optimizers")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_RUNS:
        raise BadRequest("optimizers", f"a list of 1 to {MAX_RUNS} optimizers", items)
    runs = tuple(_run_spec(i, item, terrain) for i, item in enumerate(items))
    return Request(name, (float(start[0]), float(start[1])), steps, noise, runs, knobs)


def _objective(terrain: Terrain, noise: float, seed: int) -> Any:
    """The terrain, plus a fresh random linear term per evaluation when ``noise > 0``.

    :math:`\\tilde f(x) = f(x) + \\sigma\\, \\xi^\\top x` with :math:`\\xi \\sim N(0, I)`
    has the gradient :math:`\\nabla f(x) + \\sigma \\xi`: an unbiased gradient with noise
    of scale :math:`\\sigma`, as a mini-batch gradient is.
    """
    if noise == 0.0:
        return terrain
    g = torch.Generator().manual_seed(seed)

    def noisy(x: torch.Tensor) -> torch.Tensor:
        xi = torch.randn(x.shape, generator=g, dtype=x.dtype)
        return terrain(x) + noise * (xi * x).sum()

    return noisy


def _point(x: Any) -> str:
    return "(" + ", ".join(f"{float(v):.3g}" for v in x) + ")"


def verdict(terrain: Terrain, res: MinimizeResult, f: list[float]) -> tuple[str, str, str]:
    """``(kind, label, reason)``: ``minimize``'s status in words, with where and why.

    ``kind`` is one of converged, diverged, saddle, flat, crawling, descending, cut_off.
    A run that used all its steps is *crawling* when, at the pace of its last tenth,
    reaching :math:`f - f^* \\le` ``GAP_TOL`` would take more than ``CRAWL_FACTOR``
    times the steps it already took; otherwise it is still descending.
    """
    x = res.x.reshape(-1)
    if res.status == CONVERGED:
        near = terrain.distance_to_minimum(x) < 1e-3 * (1.0 + float(x.norm()))
        which = "the global minimum" if near else "a local minimum"
        return "converged", f"converged to {which} {_point(x)} in {res.nit} steps", res.message
    if res.status == DIVERGED:
        return "diverged", f"diverged at step {res.nit + 1}", res.message
    if res.status == SADDLE:
        lam = res.curvature[0] if res.curvature else math.nan
        return "saddle", f"stalled at a saddle {_point(x)}, λmin = {lam:.3g}", res.message
    if res.status == FLAT:
        return "flat", f"stalled on a flat region {_point(x)}", res.message
    if res.status != MAX_ITER:
        return "cut_off", f"cut off after {res.nit} steps", res.message
    if terrain.f_min is None:
        reason = f"f fell from {f[0]:.3g} to {f[-1]:.3g}; this terrain has no minimum to reach."
        return "descending", f"still descending after {res.nit} steps", reason
    gap = [v - terrain.f_min for v in f]
    window = max(1, len(gap) // 10)
    then, now = gap[-1 - window], gap[-1]
    if now <= GAP_TOL:
        reason = (
            f"f − f* = {now:.3g} is within {GAP_TOL:g}, but ‖∇f‖ = {float(res.jac.norm()):.3g} "
            f"is still above gtol = {GTOL:g}: a few more steps would end it."
        )
        return "descending", f"nearly converged: f − f* = {now:.3g} after {res.nit} steps", reason
    # At the pace of the last tenth of the run, how many more steps to f − f* <= GAP_TOL?
    if 0 < now < then:
        more = window * math.log(GAP_TOL / now) / math.log(now / then)
    else:
        more = math.inf
    pace = "never, at this pace" if math.isinf(more) else f"in about {more:.3g} more steps"
    reason = (
        f"f − f* went from {then:.3g} to {now:.3g} over the last {window} steps; it would "
        f"reach {GAP_TOL:g} {pace} (‖∇f‖ = {float(res.jac.norm()):.3g})."
    )
    if more > CRAWL_FACTOR * res.nit:
        return "crawling", f"crawling: f − f* = {now:.3g} after {res.nit} steps", reason
    return "descending", f"still descending: f − f* = {now:.3g} after {res.nit} steps", reason


_CACHE: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
_CACHE_SIZE = 512


def run_one(request: Request, spec: RunSpec, *, time_budget: float = TIME_LIMIT) -> dict[str, Any]:
    """Descend ``request``'s terrain with one optimizer; the path, ``f − f*`` and the verdict."""
    key = (request.terrain, request.knobs, request.start, request.steps, request.noise, spec)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    terrain = request.get_terrain()
    hp = dict(spec.hp)
    res = minimize(
        _objective(terrain, request.noise, seed=0),
        terrain.tensor(request.start),
        spec.name,
        lr=hp.pop("lr"),
        max_iter=request.steps,
        gtol=GTOL,
        time_budget=max(time_budget, 1e-3),
        **optimizer_options(hp),
    )
    path = res.trajectory.x
    f = terrain(path).tolist()  # the noiseless f along the path
    kind, label, reason = verdict(terrain, res, f)
    out = {
        "name": spec.name,
        "hp": dict(spec.hp),
        "path": path.tolist(),
        "f": f,
        "gap": [v - terrain.f_min for v in f] if terrain.f_min is not None else None,
        "kind": kind,
        "label": label,
        "reason": reason,
    }
    if kind != "cut_off":  # a run cut short by the clock is not the run's answer
        _CACHE[key] = out
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return out


def run_request(request: Request) -> list[dict[str, Any]]:
    """Every run of ``request``, within :data:`TIME_LIMIT` seconds in all."""
    deadline = time.perf_counter() + TIME_LIMIT
    out = []
    for i, spec in enumerate(request.runs):
        try:
            out.append(run_one(request, spec, time_budget=deadline - time.perf_counter()))
        except (ValueError, TypeError, RuntimeError) as exc:
            # A setting inside the sliders that the optimizer itself refuses: its words.
            raise BadRequest(
                f"optimizers[{i}]", "a setting the optimizer accepts", str(exc)
            ) from exc
    return out
