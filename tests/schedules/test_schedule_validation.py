"""Each bad setting raises InvalidParameterError with the message format of descend._validation."""

import re

import pytest

from descend._validation import InvalidParameterError
from descend.schedules import (
    Cosine,
    ReduceOnPlateau,
    constant,
    cosine,
    exponential,
    from_name,
    join,
    linear_warmup,
    multi_step,
    one_cycle,
    step_decay,
    warmup_cosine,
)

CASES = [
    (
        lambda: constant(-1.0),
        "The 'value' parameter of constant must be a float >= 0. Got -1.0 instead.",
    ),
    (
        lambda: step_decay(0.1, 0),
        "The 'step_size' parameter of step_decay must be an int >= 1. Got 0 instead.",
    ),
    (
        lambda: step_decay(0.1, 2.5),
        "The 'step_size' parameter of step_decay must be an int >= 1. Got 2.5 instead.",
    ),
    (
        lambda: step_decay(0.1, 5, gamma=0),
        "The 'gamma' parameter of step_decay must be a float > 0. Got 0 instead.",
    ),
    (
        lambda: step_decay(-0.1, 5),
        "The 'init_value' parameter of step_decay must be a float >= 0. Got -0.1 instead.",
    ),
    (
        lambda: multi_step(0.1, [3, -1]),
        "The 'milestones' parameter of multi_step must be a sequence of ints >= 0. Got (3, -1) instead.",
    ),
    (
        lambda: multi_step(0.1, 5),
        "The 'milestones' parameter of multi_step must be a sequence of ints >= 0. Got 5 instead.",
    ),
    (
        lambda: exponential(0.1, -0.5),
        "The 'gamma' parameter of exponential must be a float > 0. Got -0.5 instead.",
    ),
    (
        lambda: exponential(0.1, 0.9, decay_steps=0),
        "The 'decay_steps' parameter of exponential must be an int >= 1. Got 0 instead.",
    ),
    (
        lambda: exponential(0.1, 0.9, staircase=1),
        "The 'staircase' parameter of exponential must be one of {True, False}. Got 1 instead.",
    ),
    (
        lambda: cosine(0.1, 0),
        "The 'total_steps' parameter of cosine must be an int >= 1. Got 0 instead.",
    ),
    (
        lambda: cosine(0.1, 10, final_value=-1),
        "The 'final_value' parameter of cosine must be a float >= 0. Got -1 instead.",
    ),
    (
        lambda: Cosine(float("nan"), 10),
        "The 'init_value' parameter of cosine must be a float >= 0. Got nan instead.",
    ),
    (
        lambda: linear_warmup(0.0, 1.0, -1),
        "The 'warmup_steps' parameter of linear_warmup must be an int >= 0. Got -1 instead.",
    ),
    (
        lambda: linear_warmup(0.0, -1.0, 5),
        "The 'peak_value' parameter of linear_warmup must be a float >= 0. Got -1.0 instead.",
    ),
    (
        lambda: one_cycle(1.0, 10, pct_start=1.0),
        "The 'pct_start' parameter of one_cycle must be a float in the range (0, 1). Got 1.0 instead.",
    ),
    (
        lambda: one_cycle(1.0, 10, pct_start=0.6, three_phase=True),
        (
            "The 'pct_start' parameter of one_cycle must be a float in the range (0, 0.5] when three_phase=True."
            " Got 0.6 instead."
        ),
    ),
    (
        lambda: one_cycle(1.0, 10, anneal="cosine"),
        "The 'anneal' parameter of one_cycle must be one of {'cos', 'linear'}. Got 'cosine' instead.",
    ),
    (
        lambda: one_cycle(1.0, 10, div_factor=0.0),
        "The 'div_factor' parameter of one_cycle must be a float > 0. Got 0.0 instead.",
    ),
    (
        lambda: one_cycle(1.0, 0),
        "The 'total_steps' parameter of one_cycle must be an int >= 1. Got 0 instead.",
    ),
    (
        lambda: join([], []),
        "The 'schedules' parameter of join must be a non-empty sequence of schedules. Got () instead.",
    ),
    (
        lambda: join([constant(1.0), 2.0], [3]),
        (
            "The 'schedules' parameter of join must be a non-empty sequence of schedules."
            " Got (Constant(value=1.0), 2.0) instead."
        ),
    ),
    (
        lambda: join([constant(1.0)], [3]),
        (
            "The 'boundaries' parameter of join must be a non-decreasing sequence of ints >= 0 of length 0"
            " (one fewer than schedules). Got (3,) instead."
        ),
    ),
    (
        lambda: join([constant(1.0)] * 3, [5, 3]),
        (
            "The 'boundaries' parameter of join must be a non-decreasing sequence of ints >= 0 of length 2"
            " (one fewer than schedules). Got (5, 3) instead."
        ),
    ),
    (
        lambda: warmup_cosine(1.0, 10, 10),
        "The 'warmup_steps' parameter of warmup_cosine must be an int in the range [0, 10). Got 10 instead.",
    ),
    (
        lambda: warmup_cosine(1.0, 0, 0),
        "The 'total_steps' parameter of warmup_cosine must be an int >= 1. Got 0 instead.",
    ),
    (
        lambda: warmup_cosine(-1.0, 1, 10),
        "The 'peak_value' parameter of warmup_cosine must be a float >= 0. Got -1.0 instead.",
    ),
    (
        lambda: ReduceOnPlateau(factor=1.0),
        "The 'factor' parameter of ReduceOnPlateau must be a float in the range (0, 1). Got 1.0 instead.",
    ),
    (
        lambda: ReduceOnPlateau("mean"),
        "The 'mode' parameter of ReduceOnPlateau must be one of {'min', 'max'}. Got 'mean' instead.",
    ),
    (
        lambda: ReduceOnPlateau(patience=-1),
        "The 'patience' parameter of ReduceOnPlateau must be an int >= 0. Got -1 instead.",
    ),
    (
        lambda: ReduceOnPlateau(threshold_mode="relative"),
        "The 'threshold_mode' parameter of ReduceOnPlateau must be one of {'rel', 'abs'}. Got 'relative' instead.",
    ),
    (
        lambda: ReduceOnPlateau(cooldown=0.5),
        "The 'cooldown' parameter of ReduceOnPlateau must be an int >= 0. Got 0.5 instead.",
    ),
    (
        lambda: ReduceOnPlateau(min_lr=-1e-3),
        "The 'min_lr' parameter of ReduceOnPlateau must be a float >= 0. Got -0.001 instead.",
    ),
    (
        lambda: from_name("cosin", lr=0.1, total_steps=10),
        (
            "Unknown schedule 'cosin'. Did you mean 'cosine'? Available: constant, cosine, exponential,"
            " multistep, onecycle, step, warmup, warmup_cosine."
        ),
    ),
    (
        lambda: from_name("cosine", lr=-1.0, total_steps=10),
        "The 'lr' parameter of schedule 'cosine' must be a float >= 0. Got -1.0 instead.",
    ),
    (
        lambda: from_name("onecycle", lr=0.1, total_steps=0),
        "The 'total_steps' parameter of schedule 'onecycle' must be an int >= 1. Got 0 instead.",
    ),
    (
        lambda: from_name("cosine", lr=0.1, total_steps=10, final_valu=0.1),
        "schedule 'cosine' has no parameter 'final_valu'. Did you mean 'final_value'? Valid parameters: final_value.",
    ),
    (
        lambda: from_name("step", lr=0.1, total_steps=10, gamma=-2.0),
        "The 'gamma' parameter of step_decay must be a float > 0. Got -2.0 instead.",
    ),
]


@pytest.mark.parametrize(("build", "message"), CASES)
def test_bad_setting_message(build, message):
    with pytest.raises(InvalidParameterError, match=f"^{re.escape(message)}$"):
        build()


def test_is_a_value_error_like_torch():
    with pytest.raises(ValueError):
        cosine(0.1, -5)
