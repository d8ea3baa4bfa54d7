"""Every schedule equals its closed form, written here independently, at integer steps."""

import math

import pytest

from descend.schedules import (
    constant,
    cosine,
    exponential,
    join,
    linear_warmup,
    multi_step,
    one_cycle,
    step_decay,
    warmup_cosine,
)

STEPS = range(120)


def assert_matches(schedule, closed_form, steps=STEPS):
    for t in steps:
        got = schedule(t)
        assert type(got) is float, t
        assert got == pytest.approx(closed_form(t), rel=1e-12, abs=1e-15), t


def test_constant():
    assert_matches(constant(0.3), lambda t: 0.3)
    assert type(constant(1)(5)) is float


@pytest.mark.parametrize(("init", "size", "gamma"), [(0.1, 7, 0.1), (2.0, 1, 0.9), (1.0, 30, 3.0)])
def test_step_decay(init, size, gamma):
    assert_matches(
        step_decay(init, size, gamma=gamma), lambda t: init * gamma ** math.floor(t / size)
    )


def test_multi_step_counts_milestones_passed_in_any_order():
    marks = [50, 10, 10, 90]  # a repeated milestone decays twice, as in torch
    s = multi_step(1.0, marks, gamma=0.5)
    assert_matches(s, lambda t: 0.5 ** sum(1 for m in marks if m <= t))
    assert s.milestones == (10, 10, 50, 90)
    assert multi_step(0.2, [])(1000) == 0.2


def test_exponential_smooth_and_staircase():
    assert_matches(exponential(0.5, 0.97), lambda t: 0.5 * 0.97**t)
    assert_matches(exponential(0.5, 0.5, decay_steps=10), lambda t: 0.5 * 0.5 ** (t / 10))
    stair = exponential(0.5, 0.5, decay_steps=10, staircase=True)
    assert_matches(stair, lambda t: 0.5 * 0.5 ** (t // 10))


@pytest.mark.parametrize(
    ("init", "total", "final"), [(0.1, 100, 0.0), (1.0, 7, 0.25), (0.0, 1, 0.5)]
)
def test_cosine_then_holds_final_value(init, total, final):
    def closed(t):
        if t >= total:
            return final
        return final + 0.5 * (init - final) * (1 + math.cos(math.pi * t / total))

    s = cosine(init, total, final_value=final)
    assert_matches(s, closed)
    assert s(0) == init
    assert s(total) == final


def test_linear_warmup():
    assert_matches(linear_warmup(0.01, 1.0, 40), lambda t: 0.01 + 0.99 * min(t, 40) / 40)
    assert_matches(linear_warmup(0.01, 1.0, 0), lambda t: 1.0)


def test_join_uses_each_piece_from_its_boundary_with_a_relative_step():
    s = join([constant(1.0), exponential(1.0, 0.5), step_decay(3.0, 2)], [10, 20])
    assert_matches(
        s, lambda t: 1.0 if t < 10 else 0.5 ** (t - 10) if t < 20 else 3.0 * 0.1 ** ((t - 20) // 2)
    )
    assert (s(9), s(10), s(19), s(20)) == (1.0, 1.0, pytest.approx(0.5**9), 3.0)


def test_join_empty_piece_and_nesting():
    # Equal boundaries leave the middle piece no steps.
    s = join([constant(1.0), constant(2.0), constant(3.0)], [5, 5])
    assert [s(t) for t in (4, 5, 6)] == [1.0, 3.0, 3.0]
    nested = join([s, constant(4.0)], [8])
    assert [nested(t) for t in (0, 5, 7, 8, 100)] == [1.0, 3.0, 3.0, 4.0, 4.0]
    assert join([constant(0.7)], [])(12) == 0.7


@pytest.mark.parametrize(("warm", "total"), [(10, 100), (0, 20), (19, 20)])
def test_warmup_cosine(warm, total):
    init, peak, final = 0.01, 0.5, 0.001

    def closed(t):
        if t < warm:
            return init + (peak - init) * t / warm
        if t >= total:
            return final
        return final + 0.5 * (peak - final) * (1 + math.cos(math.pi * (t - warm) / (total - warm)))

    s = warmup_cosine(peak, warm, total, init_value=init, final_value=final)
    assert_matches(s, closed)


def one_cycle_closed(peak, total, pct, div, final_div, anneal, three):
    """The paper's piecewise rule, phase ends as torch defines them."""
    lo = peak / div
    end = lo / final_div

    def a(x, y, u):
        return y + (x - y) * (1 + math.cos(math.pi * u)) / 2 if anneal == "cos" else x + (y - x) * u

    e1 = pct * total - 1

    def closed(t):
        t = min(t, total - 1)
        if t <= e1:
            return a(lo, peak, t / e1)
        if not three:
            return a(peak, end, (t - e1) / (total - 1 - e1))
        e2 = 2 * pct * total - 2
        if t <= e2:
            return a(peak, lo, (t - e1) / (e2 - e1))
        return a(lo, end, (t - e2) / (total - 1 - e2))

    return closed


@pytest.mark.parametrize(
    ("total", "pct", "anneal", "three"),
    [
        (100, 0.3, "cos", False),
        (37, 0.25, "linear", False),
        (60, 0.4, "cos", True),
        (9, 0.5, "linear", True),
    ],
)
def test_one_cycle(total, pct, anneal, three):
    s = one_cycle(
        2.0,
        total,
        pct_start=pct,
        div_factor=20.0,
        final_div_factor=100.0,
        anneal=anneal,
        three_phase=three,
    )
    assert_matches(s, one_cycle_closed(2.0, total, pct, 20.0, 100.0, anneal, three))
    assert s(0) == pytest.approx(0.1, rel=1e-12)
    assert s(total - 1) == pytest.approx(0.001, rel=1e-12)
    assert max(s(t) for t in range(total)) <= 2.0


def test_one_cycle_degenerate_warmup_phase_reaches_its_peak():
    # pct_start * total_steps == 1: the warm-up phase is the single step 0 (torch divides by zero).
    s = one_cycle(1.0, 10, pct_start=0.1)
    assert s(0) == 1.0
    assert s(9) == pytest.approx(1.0 / 25 / 1e4, rel=1e-12)
