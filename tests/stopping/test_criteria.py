"""Each stopping criterion fires on a case built for it, and only then."""

from __future__ import annotations

import doctest
import math

import pytest

import descend.stopping.base
import descend.stopping.criteria
from descend._validation import InvalidParameterError
from descend.stopping import (
    AnyOf,
    Divergence,
    FunctionTolerance,
    GradientTolerance,
    MaxIter,
    Progress,
    StepTolerance,
    TimeBudget,
)


def test_max_iter_fires_at_n_and_not_before():
    c = MaxIter(3)
    assert c.check(Progress(step=2, value=1.0)) is None
    stop = c.check(Progress(step=3, value=1.0))
    assert stop is not None and stop.criterion == "max_iter" and not stop.success
    assert "3 iterations" in stop.message


def test_ftol_absolute_change_over_window():
    c = FunctionTolerance(atol=0.1, rtol=0.0, window=3)
    values = [10.0, 5.0, 4.95, 4.93, 4.92]
    fired = [c.check(Progress(step=i, value=v)) for i, v in enumerate(values)]
    # At step 3 the change over 3 updates is 10 - 4.93: too big; at step 4 it is 0.08.
    assert fired[:4] == [None] * 4
    assert fired[4] is not None and fired[4].criterion == "ftol" and fired[4].success


def test_ftol_relative_change_scales_with_value():
    c = FunctionTolerance(atol=0.0, rtol=1e-3, window=1)
    assert c.check(Progress(step=1, value=1000.0)) is None
    assert c.check(Progress(step=2, value=999.5)) is not None
    c.reset()
    assert c.check(Progress(step=1, value=1.0)) is None
    assert c.check(Progress(step=2, value=0.9995 - 0.01)) is None


def test_ftol_never_converges_on_nan():
    c = FunctionTolerance(atol=1.0, window=1)
    assert c.check(Progress(step=1, value=math.nan)) is None
    assert c.check(Progress(step=2, value=math.nan)) is None


def test_gtol_and_xtol_ignore_unknown_norms():
    assert GradientTolerance(1e-3).check(Progress(step=1, value=0.0)) is None
    assert StepTolerance(1e-3).check(Progress(step=1, value=0.0)) is None
    g = GradientTolerance(1e-3).check(Progress(step=1, value=0.0, grad_norm=1e-4))
    x = StepTolerance(1e-3).check(Progress(step=1, value=0.0, step_norm=1e-4))
    assert g is not None and g.criterion == "gtol" and g.success
    assert x is not None and x.criterion == "xtol" and x.success
    assert GradientTolerance(1e-3).check(Progress(step=1, value=0.0, grad_norm=1e-2)) is None
    assert GradientTolerance(1e-3).check(Progress(step=1, value=0.0, grad_norm=math.nan)) is None


def test_time_budget():
    c = TimeBudget(2.0)
    assert c.check(Progress(step=1, value=0.0, elapsed=1.9)) is None
    stop = c.check(Progress(step=2, value=0.0, elapsed=2.1))
    assert stop is not None and stop.criterion == "time_budget" and not stop.success


@pytest.mark.parametrize("value, grad", [(math.nan, 1.0), (math.inf, 1.0), (1.0, math.inf)])
def test_divergence_on_non_finite(value, grad):
    stop = Divergence().check(Progress(step=4, value=value, grad_norm=grad))
    assert stop is not None and stop.criterion == "divergence" and not stop.success
    assert "learning rate is likely too large" in stop.message


def test_divergence_on_explosion_relative_to_first_value():
    c = Divergence(factor=100.0)
    assert c.check(Progress(step=0, value=0.0)) is None
    assert c.check(Progress(step=1, value=99.0)) is None  # within 100 * (|0| + 1)
    assert c.check(Progress(step=2, value=-1e9)) is None  # falling is not diverging
    stop = c.check(Progress(step=3, value=101.0))
    assert stop is not None and "exploded" in stop.message
    c.reset()
    assert c.check(Progress(step=0, value=1000.0)) is None  # new reference after reset


def test_any_of_first_in_order_wins_and_reset_resets_all():
    ftol = FunctionTolerance(atol=1.0, window=1)
    both = AnyOf(MaxIter(2), ftol)
    assert both.check(Progress(step=1, value=5.0)) is None
    stop = both.check(Progress(step=2, value=5.0))
    assert stop is not None and stop.criterion == "max_iter"
    both.reset()
    assert both.check(Progress(step=0, value=5.0)) is None  # ftol's window was cleared
    with pytest.raises(TypeError):
        AnyOf(MaxIter(2), 3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "make",
    [
        lambda: MaxIter(-1),
        lambda: MaxIter(1.5),
        lambda: FunctionTolerance(window=0),
        lambda: GradientTolerance(-1.0),
        lambda: TimeBudget(-2),
        lambda: Divergence(factor=0),
    ],
)
def test_bad_settings_raise_the_validation_error(make):
    with pytest.raises(InvalidParameterError, match="parameter of"):
        make()


def test_docstring_examples_run():
    for module in (descend.stopping.base, descend.stopping.criteria):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0


def test_windowed_criteria_resume_from_their_state() -> None:
    from descend.stopping import AnyOf, Divergence, FunctionTolerance, Progress

    values = [10.0, 9.0, 8.5, 8.4, 8.39, 8.389, 8.3889]

    def run(split: int | None) -> list[bool]:
        crit = AnyOf(FunctionTolerance(atol=0.02, rtol=0.0, window=3), Divergence(factor=10.0))
        fired = []
        for i, v in enumerate(values):
            if split is not None and i == split:  # a resumed run: fresh object, restored state
                state = crit.state_dict()
                crit = AnyOf(
                    FunctionTolerance(atol=0.02, rtol=0.0, window=3), Divergence(factor=10.0)
                )
                crit.load_state_dict(state)
            fired.append(crit.check(Progress(step=i + 1, value=v)) is not None)
        return fired

    assert run(None) == run(4)
    assert any(run(None))
