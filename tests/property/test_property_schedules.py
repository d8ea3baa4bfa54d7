"""Properties of every named schedule and of plateau reduction, over their valid settings.

Any schedule built by name for any rate and run length gives a finite rate in
``[0, lr]`` at every step (also past the end of the run), as a plain float; it
prints, compares and pickles as a value. ``ReduceOnPlateau`` never raises the
rate, never goes below ``min_lr``, and resumes exactly from its state dict.
"""

from __future__ import annotations

import io
import math
import pickle

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from descend.schedules import SCHEDULE_NAMES, ReduceOnPlateau, from_name

SETTINGS = settings(max_examples=50, deadline=None)
rates = st.floats(0.0, 10.0) | st.sampled_from([0.0, 1e-6, 1.0])
lengths = st.integers(1, 5000)


@SETTINGS
@given(name=st.sampled_from(SCHEDULE_NAMES), lr=rates, total=lengths, data=st.data())
def test_every_named_schedule_stays_finite_and_within_zero_and_lr(name, lr, total, data) -> None:
    schedule = from_name(name, lr=lr, total_steps=total)
    steps = data.draw(st.lists(st.integers(0, 3 * total), min_size=1, max_size=20), label="steps")
    for t in [0, total - 1, total, *steps]:
        value = schedule(t)
        assert type(value) is float and math.isfinite(value), (name, t, value)
        assert 0.0 <= value <= lr * (1 + 1e-12), (name, lr, total, t, value)


@SETTINGS
@given(name=st.sampled_from(SCHEDULE_NAMES), lr=rates, total=lengths)
def test_a_schedule_is_a_value_that_round_trips(name, lr, total) -> None:
    schedule = from_name(name, lr=lr, total_steps=total)
    copy = pickle.loads(pickle.dumps(schedule))
    assert copy == schedule and repr(copy) == repr(schedule)
    assert [copy(t) for t in range(0, total, max(1, total // 7))] == [
        schedule(t) for t in range(0, total, max(1, total // 7))
    ]


@SETTINGS
@given(
    name=st.sampled_from(SCHEDULE_NAMES),
    lr=st.floats(max_value=-1e-12) | st.just(math.nan),
    total=st.integers(-3, 0),
    which=st.sampled_from(["lr", "total_steps"]),
)
def test_invalid_settings_name_the_setting_and_the_value(name, lr, total, which) -> None:
    given_lr, given_total = (lr, 10) if which == "lr" else (0.1, total)
    try:
        from_name(name, lr=given_lr, total_steps=given_total)
    except ValueError as error:
        bad = given_lr if which == "lr" else given_total
        assert f"'{which}'" in str(error) and f"Got {bad!r}" in str(error), str(error)
    else:
        raise AssertionError(
            f"{name} accepted {which}={given_lr if which == 'lr' else given_total}"
        )


plateau_settings = st.fixed_dictionaries(
    {
        "mode": st.sampled_from(["min", "max"]),
        "factor": st.floats(0.01, 0.99),
        "patience": st.integers(0, 4),
        "threshold": st.floats(0.0, 0.1),
        "threshold_mode": st.sampled_from(["rel", "abs"]),
        "cooldown": st.integers(0, 3),
        "min_lr": st.floats(0.0, 1e-3),
    }
)
metrics = st.lists(
    st.floats(-1e3, 1e3) | st.just(math.nan) | st.just(math.inf), min_size=2, max_size=30
)


@SETTINGS
@given(options=plateau_settings, values=metrics, cut=st.integers(0, 30), lr=st.floats(1e-3, 1.0))
def test_plateau_reduction_is_monotone_bounded_and_resumes_exactly(
    options, values, cut, lr
) -> None:
    cut = min(cut, len(values))
    straight, first = ReduceOnPlateau(**options), ReduceOnPlateau(**options)
    expected, got = [], []
    a = b = lr
    for i, v in enumerate(values):
        new = straight.update(v, a)
        assert min(a, max(options["min_lr"], 0.0)) <= new <= a, (a, new)
        a = new
        expected.append(a)
        if i == cut:  # stop here, save through a weights_only file, continue in a new object
            buffer = io.BytesIO()
            torch.save(first.state_dict(), buffer)
            buffer.seek(0)
            first = ReduceOnPlateau(**options)
            first.load_state_dict(torch.load(buffer, weights_only=True))
        b = first.update(v, b)
        got.append(b)
    assert got == expected
