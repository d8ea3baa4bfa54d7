"""The named terrains: each function with its minima, saddles, domain, starts and default rates.

Saddle coordinates were found by Newton's method in float64 and are checked in the
tests (gradient ~0, a negative Hessian eigenvalue).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from descend._validation import Interval, unknown_choice, validate
from descend.terrains.base import Terrain
from descend.terrains.classic import beale, himmelblau, quadratic, rosenbrock, six_hump_camel
from descend.terrains.rugged import ackley, plateau, rastrigin
from descend.terrains.saddles import monkey_saddle, saddle

_DIM = Interval(2, None, integer=True)


def _lrs(
    sgd: float, momentum: float, adaptive: float, *, adagrad: float | None = None
) -> dict[str, float]:
    """Default rates: plain GD; heavy ball (beta=0.9, ~10x the effective step); adaptive methods."""
    return {
        "gd": sgd,
        "sgd": sgd,
        "momentum": momentum,
        "nesterov": momentum,
        "adagrad": adaptive * 10 if adagrad is None else adagrad,
        "rmsprop": adaptive,
        "adam": adaptive,
        "adamw": adaptive,
    }


def _quadratic(*, condition: float = 10.0, dim: int = 2) -> Terrain:
    validate(
        "quadratic",
        {"condition": condition, "dim": dim},
        {"condition": Interval(1, None), "dim": _DIM},
    )
    start = (-4.0, 2.0) + (1.0,) * (dim - 2)
    return Terrain(
        name="quadratic",
        fun=partial(quadratic, condition=float(condition)),
        dim=dim,
        minima=((0.0,) * dim,),
        f_min=0.0,
        domain=((-5.0, 5.0), (-3.0, 3.0)) + ((-3.0, 3.0),) * (dim - 2),
        starts=(start,),
        # Gradient descent is stable for lr < 2 / condition.
        lrs=_lrs(1.6 / condition, 0.3 / condition, 0.2, adagrad=1.0),
        steps=200,
        description=f"ill-conditioned quadratic bowl, Hessian eigenvalues 1..{condition:g}",
    )


def _rosenbrock(*, dim: int = 2) -> Terrain:
    validate("rosenbrock", {"dim": dim}, {"dim": _DIM})
    return Terrain(
        name="rosenbrock",
        fun=rosenbrock,
        dim=dim,
        minima=((1.0,) * dim,),
        f_min=0.0,
        domain=((-2.0, 2.0), (-1.0, 3.0)) + ((-2.0, 2.0),) * (dim - 2),
        starts=(
            tuple(-1.2 if i % 2 == 0 else 1.0 for i in range(dim)),
            (0.0, 0.0) + (0.0,) * (dim - 2),
        ),
        lrs={**_lrs(2e-3, 1e-3, 5e-2, adagrad=1.0), "rmsprop": 3e-3},
        steps=2000,
        description="Rosenbrock's banana valley: easy to find, slow to follow",
    )


def _beale() -> Terrain:
    return Terrain(
        name="beale",
        fun=beale,
        dim=2,
        minima=((3.0, 0.5),),
        f_min=0.0,
        saddles=((0.0, 1.0),),
        domain=((-4.5, 4.5), (-4.5, 4.5)),
        starts=((1.0, 1.4), (-2.0, -2.0)),
        lrs={**_lrs(5e-3, 3e-3, 5e-2, adagrad=0.3), "rmsprop": 5e-3},
        steps=2000,
        description="Beale's function: flat valleys between steep walls",
    )


def _himmelblau() -> Terrain:
    return Terrain(
        name="himmelblau",
        fun=himmelblau,
        dim=2,
        minima=(
            (3.0, 2.0),
            (-2.805118086952745, 3.131312518250573),
            (-3.779310253377747, -3.2831859912861696),
            (3.5844283403304917, -1.8481265269644036),
        ),
        f_min=0.0,
        saddles=(
            (0.08667750455539634, 2.884254701174776),
            (-3.0730257507643897, -0.08135304428796751),
            (3.385154183607021, 0.07385187983774928),
            (-0.12796134673068005, -1.9537149802445766),
        ),
        domain=((-5.0, 5.0), (-5.0, 5.0)),
        starts=((0.0, 0.0), (-1.0, 4.0), (-4.0, -1.0), (1.0, -4.0)),
        lrs=_lrs(1e-2, 1e-3, 5e-2, adagrad=1.0),
        steps=500,
        description="Himmelblau's function: four global minima of value 0",
    )


def _rastrigin(*, dim: int = 2) -> Terrain:
    validate("rastrigin", {"dim": dim}, {"dim": _DIM})
    return Terrain(
        name="rastrigin",
        fun=rastrigin,
        dim=dim,
        minima=((0.0,) * dim,),
        f_min=0.0,
        domain=((-5.12, 5.12),) * dim,
        # From the first start every first-order method lands in a local minimum;
        # the second lies in the global minimum's basin.
        starts=((2.2,) + (-1.8,) * (dim - 1), (0.4,) * dim),
        lrs=_lrs(1e-3, 1e-3, 5e-2, adagrad=0.5),
        steps=500,
        description="Rastrigin's function: a bowl under a grid of local minima",
    )


def _ackley(*, dim: int = 2) -> Terrain:
    validate("ackley", {"dim": dim}, {"dim": _DIM})
    return Terrain(
        name="ackley",
        fun=ackley,
        dim=dim,
        minima=((0.0,) * dim,),
        f_min=0.0,
        domain=((-5.0, 5.0),) * dim,
        starts=((2.5,) + (-2.0,) * (dim - 1), (0.3,) * dim),
        lrs=_lrs(1e-2, 1e-3, 5e-2, adagrad=0.5),
        steps=500,
        description="Ackley's function: rippled plateau around a deep funnel",
    )


def _six_hump_camel() -> Terrain:
    return Terrain(
        name="six_hump_camel",
        fun=six_hump_camel,
        dim=2,
        minima=(
            (0.08984201310031806, -0.7126564030207396),
            (-0.08984201310031806, 0.7126564030207396),
        ),
        f_min=-1.0316284534898774,
        saddles=(
            (0.0, 0.0),
            (1.1092053368047863, -0.7682680925095399),
            (-1.1092053368047863, 0.7682680925095399),
            (1.2960702671671092, 0.6050843880386585),
            (-1.2960702671671092, -0.6050843880386585),
        ),
        domain=((-2.0, 2.0), (-1.0, 1.0)),
        starts=((-1.0, 1.0), (-1.5, -0.5)),
        lrs={**_lrs(1e-2, 3e-3, 5e-2, adagrad=0.3), "rmsprop": 2e-2},
        steps=500,
        description="six-hump camel: six local minima, two global",
    )


def _saddle() -> Terrain:
    return Terrain(
        name="saddle",
        fun=saddle,
        dim=2,
        minima=(),
        f_min=None,
        saddles=((0.0, 0.0),),
        bounded_below=False,
        domain=((-2.0, 2.0), (-2.0, 2.0)),
        # The first start is a hair off the stable manifold y = 0 (GD nears the saddle,
        # then escapes); the second lies on it (GD stalls at the saddle).
        starts=((1.5, 0.01), (1.5, 0.0)),
        lrs=_lrs(0.05, 5e-3, 0.02, adagrad=0.1),
        steps=60,
        description="x^2 - y^2: unbounded below, a saddle at the origin",
    )


def _monkey_saddle() -> Terrain:
    return Terrain(
        name="monkey_saddle",
        fun=monkey_saddle,
        dim=2,
        minima=(),
        f_min=None,
        saddles=((0.0, 0.0),),
        bounded_below=False,
        domain=((-2.0, 2.0), (-2.0, 2.0)),
        starts=((1.5, 0.0), (1.5, 0.2)),
        lrs=_lrs(0.02, 2e-3, 0.02, adagrad=0.1),
        steps=100,
        description="x^3 - 3xy^2: three valleys down, a degenerate saddle at the origin",
    )


def _plateau(*, width: float = 1.0) -> Terrain:
    validate("plateau", {"width": width}, {"width": Interval(0, None, closed="neither")})
    w = float(width)
    return Terrain(
        name="plateau",
        fun=partial(plateau, width=w),
        dim=2,
        minima=((0.0, 0.0),),
        f_min=0.0,
        domain=((-4.0 * w, 4.0 * w), (-4.0 * w, 4.0 * w)),
        starts=((3.0 * w, 2.0 * w), (1.0 * w, 0.5 * w)),
        lrs=_lrs(1.0 * w**2, 0.1 * w**2, 0.05 * w, adagrad=0.5 * w),
        steps=300,
        description="a Gaussian well in a flat plateau: the gradient all but vanishes far out",
    )


_FACTORIES: dict[str, Callable[..., Terrain]] = {
    "quadratic": _quadratic,
    "rosenbrock": _rosenbrock,
    "beale": _beale,
    "himmelblau": _himmelblau,
    "rastrigin": _rastrigin,
    "ackley": _ackley,
    "six_hump_camel": _six_hump_camel,
    "saddle": _saddle,
    "monkey_saddle": _monkey_saddle,
    "plateau": _plateau,
}

TERRAIN_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def get_terrain(name: str, **kw: float) -> Terrain:
    """The terrain called ``name``; keywords are its knobs (``condition``, ``dim``, ``width``).

    Args:
        name: one of :data:`TERRAIN_NAMES` (``-`` and ``_`` are interchangeable).
        **kw: the terrain's settings, e.g. ``get_terrain("quadratic", condition=100)``.

    Returns:
        The :class:`Terrain`.

    Example:
        >>> t = get_terrain("rosenbrock")
        >>> t.start, t.minima, t.f_min
        ((-1.2, 1.0), ((1.0, 1.0),), 0.0)
    """
    key = name.strip().lower().replace("-", "_")
    if key not in _FACTORIES:
        raise unknown_choice("terrain", name, TERRAIN_NAMES)
    try:
        return _FACTORIES[key](**kw)
    except TypeError as exc:
        # An unknown keyword: say which knobs this terrain has.
        import inspect

        knobs = [p for p in inspect.signature(_FACTORIES[key]).parameters]
        raise ValueError(
            f"Terrain {key!r} takes {', '.join(knobs) or 'no settings'}. Got {sorted(kw)} instead."
        ) from exc


def terrain_knobs(name: str) -> dict[str, float | int]:
    """The settings ``get_terrain(name, ...)`` takes, with their defaults.

    Example:
        >>> terrain_knobs("quadratic"), terrain_knobs("beale")
        ({'condition': 10.0, 'dim': 2}, {})
    """
    import inspect

    key = name.strip().lower().replace("-", "_")
    if key not in _FACTORIES:
        raise unknown_choice("terrain", name, TERRAIN_NAMES)
    params = inspect.signature(_FACTORIES[key]).parameters.values()
    return {p.name: p.default for p in params}
