"""Each terrain knows itself: minima, saddles, domain, starts; and a descent reaches its minimum."""

from __future__ import annotations

import doctest
import math

import pytest
import torch

import descend.terrains.classic
import descend.terrains.registry
import descend.terrains.rugged
import descend.terrains.saddles
from descend._validation import InvalidParameterError
from descend.curvature import hessian_extreme_eigenvalues
from descend.minimize import minimize
from descend.terrains import TERRAIN_NAMES, get_terrain

REQUIRED = {
    "quadratic",
    "rosenbrock",
    "beale",
    "himmelblau",
    "rastrigin",
    "ackley",
    "six_hump_camel",
    "saddle",
    "monkey_saddle",
    "plateau",
}


def _grad(t, point):
    x = t.tensor(point).requires_grad_(True)
    (g,) = torch.autograd.grad(t(x), x)
    return g


def test_all_issue_terrains_are_registered():
    assert REQUIRED <= set(TERRAIN_NAMES)


@pytest.mark.parametrize("name", TERRAIN_NAMES)
def test_minima_are_stationary_with_the_stated_value(name):
    t = get_terrain(name)
    assert t.bounded_below == bool(t.minima) == (t.f_min is not None)
    for m in t.minima:
        assert float(t(t.tensor(m))) == pytest.approx(t.f_min, abs=1e-9)
        assert float(_grad(t, m).norm()) < 1e-6
        lo, _ = hessian_extreme_eigenvalues(t, t.tensor(m))
        assert lo >= -1e-8


@pytest.mark.parametrize("name", [n for n in TERRAIN_NAMES if get_terrain(n).saddles])
def test_saddles_are_stationary_and_not_minima(name):
    t = get_terrain(name)
    for s in t.saddles:
        assert float(_grad(t, s).norm()) < 1e-9
        lo, hi = hessian_extreme_eigenvalues(t, t.tensor(s))
        if name == "monkey_saddle":
            assert abs(lo) < 1e-12 and abs(hi) < 1e-12  # degenerate: the Hessian vanishes
        else:
            assert lo < -1.0 < hi


@pytest.mark.parametrize("name", ["saddle", "monkey_saddle"])
def test_unbounded_saddles_say_they_have_no_minimum(name):
    t = get_terrain(name)
    assert t.minima == () and t.f_min is None and t.bounded_below is False
    assert math.isinf(t.distance_to_minimum(t.start))


@pytest.mark.parametrize("name", TERRAIN_NAMES)
def test_batched_evaluation_matches_pointwise_and_starts_lie_in_the_domain(name):
    t = get_terrain(name)
    pts = torch.tensor(t.starts + t.minima + t.saddles, dtype=torch.float64)
    batched = t(pts)
    assert batched.shape == (len(pts),)
    for p, v in zip(pts, batched):
        assert float(t(p)) == pytest.approx(float(v))
    for s in t.starts:
        assert all(lo <= c <= hi for c, (lo, hi) in zip(s, t.domain))
    assert {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"} <= set(t.lrs)


def test_quadratic_condition_knob_sets_the_hessian_spectrum():
    t = get_terrain("quadratic", condition=100.0, dim=5)
    lo, hi = hessian_extreme_eigenvalues(t, torch.ones(5, dtype=torch.float64))
    assert (lo, hi) == pytest.approx((1.0, 100.0))


def test_rosenbrock_in_n_dimensions_and_its_standard_start():
    t = get_terrain("rosenbrock", dim=4)
    assert t.start == (-1.2, 1.0, -1.2, 1.0) and t.minima == ((1.0,) * 4,)
    assert get_terrain("rosenbrock").start == (-1.2, 1.0)


def test_unknown_name_and_knob_are_clear_errors():
    with pytest.raises(InvalidParameterError, match="Did you mean 'rosenbrock'"):
        get_terrain("rosenbrok")
    with pytest.raises(ValueError, match="takes"):
        get_terrain("beale", dim=3)
    with pytest.raises(InvalidParameterError, match="'condition' parameter of quadratic"):
        get_terrain("quadratic", condition=0.5)
    assert get_terrain("six-hump-camel").name == "six_hump_camel"


# (terrain, start index, optimizer, lr, steps, tolerance on the distance to a minimum).
# Rastrigin and Ackley start in the global basin (starts[1]): from starts[0] every
# first-order method here lands in a local minimum, which is what those terrains show.
REACH = [
    ("quadratic", 0, "gd", 0.15, 200, 1e-4),
    ("rosenbrock", 0, "momentum", 1e-3, 1600, 1e-3),
    ("beale", 0, "adam", 0.1, 900, 1e-4),
    ("himmelblau", 0, "gd", 0.01, 200, 1e-4),
    ("rastrigin", 1, "gd", 0.002, 100, 1e-4),
    ("ackley", 1, "adam", 0.005, 300, 1e-3),
    ("six_hump_camel", 0, "rmsprop", 0.02, 200, 1e-4),
    ("plateau", 0, "adam", 0.05, 300, 1e-3),
]


@pytest.mark.parametrize("name, start, opt, lr, steps, tol", REACH, ids=[r[0] for r in REACH])
def test_a_suitable_optimizer_reaches_a_global_minimum(name, start, opt, lr, steps, tol):
    t = get_terrain(name)
    res = minimize(t, t.tensor(t.starts[start]), opt, lr=lr, max_iter=steps, gtol=1e-7)
    assert t.distance_to_minimum(res.x) < tol, res
    assert res.fun - t.f_min < 1e-2  # Ackley is a cone at 0: f - f_min ~ 2.8 |x|


def test_docstring_examples_run():
    for module in (
        descend.terrains.classic,
        descend.terrains.rugged,
        descend.terrains.saddles,
        descend.terrains.registry,
    ):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0
