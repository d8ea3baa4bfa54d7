"""minimize: scipy-shaped results, every stopping criterion, saddles, and the divergence guard."""

from __future__ import annotations

import doctest
import functools
import importlib

import pytest
import torch

from descend._validation import InvalidParameterError
from descend.minimize import minimize
from descend.stopping import Criterion, Progress, Stop
from descend.terrains import get_terrain

QUAD = get_terrain("quadratic")  # 0.5 * (x^2 + 10 y^2): GD is stable for lr < 0.2


def _start() -> torch.Tensor:
    return QUAD.tensor(QUAD.start)


def test_result_has_scipy_fields_and_the_trajectory():
    x0 = _start()
    res = minimize(QUAD, x0, "gd", lr=0.15, max_iter=500)
    assert res.success and res.status == 0 and res.criterion == "gtol"
    assert torch.allclose(res.x, torch.zeros(2, dtype=torch.float64), atol=1e-5)
    assert res.fun == pytest.approx(float(QUAD(res.x)))
    torch.testing.assert_close(res.jac, torch.tensor([1.0, 10.0], dtype=torch.float64) * res.x)
    assert res.nfev == res.nit + 1
    tr = res.trajectory
    assert tr.x.shape == (res.nit + 1, 2) and tr.f.shape == tr.grad_norm.shape == (res.nit + 1,)
    torch.testing.assert_close(tr.x[0], x0)
    assert float(tr.f[-1]) == res.fun and float(tr.grad_norm[-1]) <= 1e-5
    assert res["x"] is res.x  # dict-style access, as scipy's OptimizeResult
    assert res.curvature is not None and res.curvature[0] == pytest.approx(1.0, rel=1e-6)


def test_x0_untouched_dtype_kept_and_x_detached():
    x0 = _start().requires_grad_(True)
    before = x0.detach().clone()
    res = minimize(QUAD, x0, torch.optim.SGD, lr=0.1, max_iter=20)
    assert torch.equal(x0.detach(), before)
    assert res.x.dtype == torch.float64 and not res.x.requires_grad
    res32 = minimize(QUAD, [-4.0, 2.0], torch.optim.SGD, lr=0.1, max_iter=5)
    assert res32.x.dtype == torch.float32


def test_gd_on_the_stable_manifold_of_the_saddle_stalls_and_says_saddle():
    t = get_terrain("saddle")
    res = minimize(t, t.tensor((1.5, 0.0)), "gd", lr=0.05, max_iter=1000)
    assert float(res.x.norm()) < 1e-4  # it really went to the saddle point
    assert not res.success and res.status == 3
    assert "saddle point" in res.message and res.criterion == "gtol"
    assert res.curvature[0] == pytest.approx(-2.0, rel=1e-6)


def test_near_the_degenerate_monkey_saddle_negative_curvature_is_still_seen():
    t = get_terrain("monkey_saddle")
    res = minimize(t, t.tensor((1.5, 0.0)), "gd", lr=0.1, max_iter=1000, gtol=1e-3)
    assert not res.success and "saddle point" in res.message


def test_vanishing_gradient_on_a_plateau_is_not_success():
    t = get_terrain("plateau")
    res = minimize(t, t.tensor((6.0, 6.0)), "gd", lr=1.0, max_iter=50)
    assert res.criterion == "gtol" and not res.success and res.status == 4
    assert "flat" in res.message


def test_too_large_learning_rate_is_divergence_before_any_nan_reaches_x():
    res = minimize(QUAD, _start(), "gd", lr=0.25, max_iter=10_000)
    assert not res.success and res.status == 2 and res.criterion == "divergence"
    assert "learning rate is likely too large" in res.message
    assert torch.isfinite(res.x).all() and torch.isfinite(res.trajectory.f).all()
    torch.testing.assert_close(res.x, res.trajectory.x[-1])
    assert res.fun == float(res.trajectory.f[-1])
    assert res.nit < 100  # caught by the explosion guard long before overflow


def test_a_step_straight_into_overflow_is_rejected():
    res = minimize(QUAD, _start(), "gd", lr=1e300, max_iter=10)
    assert res.criterion == "divergence" and res.nit == 0
    torch.testing.assert_close(res.x, _start())


def test_max_iter_fires():
    res = minimize(QUAD, _start(), "gd", lr=0.01, max_iter=7)
    assert res.criterion == "max_iter" and res.nit == 7 and not res.success and res.status == 1


def test_ftol_fires_on_a_window_of_small_changes():
    res = minimize(QUAD, _start(), "gd", lr=0.1, max_iter=1000, gtol=None, fatol=1e-6, fwindow=5)
    assert res.criterion == "ftol" and res.success
    f = res.trajectory.f
    assert abs(float(f[-6] - f[-1])) <= 1e-6 < abs(float(f[-7] - f[-2]))


def test_xtol_fires_on_a_small_step():
    res = minimize(QUAD, _start(), "gd", lr=0.1, max_iter=1000, gtol=None, xtol=1e-4)
    assert res.criterion == "xtol" and res.success
    steps = (res.trajectory.x[1:] - res.trajectory.x[:-1]).norm(dim=1)
    assert float(steps[-1]) <= 1e-4 < float(steps[-2])


def test_time_budget_fires():
    res = minimize(QUAD, _start(), "gd", lr=1e-6, max_iter=10**9, time_budget=0.05)
    assert res.criterion == "time_budget" and not res.success and res.status == 5


def test_user_criterion_and_callback_stop_the_run():
    class BelowOne(Criterion):
        name = "below_one"

        def check(self, p: Progress) -> Stop | None:
            return Stop(self.name, "f < 1", success=True) if p.value < 1 else None

    res = minimize(QUAD, _start(), "gd", lr=0.1, stop=BelowOne())
    assert res.criterion == "below_one" and res.fun < 1 <= float(res.trajectory.f[-2])
    seen = []
    res = minimize(
        QUAD, _start(), "gd", lr=0.1, callback=lambda p, x: seen.append(p.step) or p.step == 3
    )
    assert res.criterion == "callback" and res.nit == 3 and seen == [1, 2, 3] and not res.success


def test_jac_true_matches_autograd():
    def fun_and_grad(x):
        lam = torch.tensor([1.0, 10.0], dtype=x.dtype)
        return 0.5 * float((lam * x * x).sum()), lam * x

    a = minimize(fun_and_grad, _start(), "momentum", lr=0.02, max_iter=300, jac=True)
    b = minimize(QUAD, _start(), "momentum", lr=0.02, max_iter=300)
    torch.testing.assert_close(a.x, b.x)
    assert (
        a.success
        and a.criterion == b.criterion
        and a.curvature == pytest.approx(b.curvature, rel=1e-5)
    )


def test_optimizer_options_go_to_the_optimizer_and_closures_work():
    a = minimize(QUAD, _start(), torch.optim.SGD, lr=0.01, momentum=0.9, max_iter=40, gtol=None)
    b = minimize(QUAD, _start(), "momentum", lr=0.01, max_iter=40, gtol=None)
    torch.testing.assert_close(a.x, b.x)
    # LBFGS evaluates inside step(); minimize serves it through the closure.
    t = get_terrain("rosenbrock")
    res = minimize(
        t, t.tensor(t.start), torch.optim.LBFGS, lr=1.0, max_iter=60, line_search_fn="strong_wolfe"
    )
    # LBFGS makes ~20 inner iterations per step(), so 60 steps are plenty.
    assert res.fun < 1e-8 and t.distance_to_minimum(res.x) < 1e-3
    # LBFGS's own max_iter (inner iterations per step) has the name of minimize's: it goes
    # through a partial. One inner iteration per step is two evaluations of the closure.
    counted = []
    res = minimize(
        lambda x: counted.append(1) or t(x),
        t.tensor(t.start),
        functools.partial(torch.optim.LBFGS, max_iter=1),
        lr=1e-3,
        max_iter=5,
        gtol=None,
    )
    assert res.nit == 5 and res.x.tolist() != list(t.start)
    assert len(counted) == 1 + 5  # the start, then one per step (LBFGS reuses its closure's)


def test_bad_input_is_refused_clearly():
    with pytest.raises(InvalidParameterError, match="'lr' parameter of minimize"):
        minimize(QUAD, _start(), "gd", lr=-1.0)
    with pytest.raises(InvalidParameterError, match="Unknown optimizer"):
        minimize(QUAD, _start(), "adamm")
    with pytest.raises(ValueError, match="scalar"):
        minimize(lambda x: x * 2, _start(), "gd")
    with pytest.raises(ValueError, match="finite"):
        minimize(QUAD, [float("nan"), 0.0], "gd")


def test_docstring_example_runs():
    # descend.minimize is also the function's name at the top level: import the module itself.
    result = doctest.testmod(importlib.import_module("descend.minimize.core"))
    assert result.attempted > 0 and result.failed == 0


def test_a_start_that_is_already_stationary_takes_no_step():
    t = get_terrain("saddle")
    res = minimize(t, torch.zeros(2, dtype=torch.float64), "gd", lr=0.1)
    assert res.nit == 0 and res.nfev == 1 and not res.success and "saddle point" in res.message
    res = minimize(QUAD, _start(), "gd", lr=0.1, max_iter=0)
    assert res.nit == 0 and res.criterion == "max_iter"


def test_a_nan_value_at_the_candidate_is_rejected():
    # sqrt(x) pulls x towards 0 and past it, where sqrt is NaN.
    res = minimize(lambda x: torch.sqrt(x).sum(), torch.tensor([1.0]), "gd", lr=1.0, max_iter=50)
    assert res.criterion == "divergence" and "not finite" in res.message
    assert torch.isfinite(res.x).all() and float(res.x) > 0
    assert torch.isfinite(res.trajectory.f).all()
