"""Schedules behave as values (pickle, repr, equality), by name, and stay a leaf layer."""

import ast
import doctest
import importlib
import pathlib
import pickle

import pytest

from descend import schedules
from descend.schedules import (
    SCHEDULE_NAMES,
    Join,
    Schedule,
    constant,
    cosine,
    exponential,
    from_name,
    join,
    linear_warmup,
    multi_step,
    one_cycle,
    options_of,
    step_decay,
    warmup_cosine,
)

EXAMPLES = [
    constant(0.1),
    step_decay(0.1, 5, gamma=0.5),
    multi_step(0.1, [8, 3]),
    exponential(0.1, 0.9, decay_steps=3, staircase=True),
    cosine(0.1, 20, final_value=0.01),
    linear_warmup(0.0, 0.1, 4),
    one_cycle(0.1, 30, three_phase=True),
    warmup_cosine(0.1, 3, 30),
    join([constant(0.1), cosine(0.1, 5)], [2]),
]


@pytest.mark.parametrize("schedule", EXAMPLES, ids=lambda s: type(s).__name__)
def test_pickle_round_trip_keeps_value_and_sequence(schedule):
    copy = pickle.loads(pickle.dumps(schedule))
    assert copy == schedule
    assert hash(copy) == hash(schedule)
    assert [copy(t) for t in range(40)] == [schedule(t) for t in range(40)]
    assert isinstance(copy, Schedule)


def test_frozen_and_readable():
    s = cosine(0.1, 20)
    assert repr(s) == "Cosine(init_value=0.1, total_steps=20, final_value=0.0)"
    with pytest.raises(AttributeError):
        s.total_steps = 3  # type: ignore[misc]
    assert "_phases" not in repr(one_cycle(0.1, 30))
    assert step_decay(0.1, 5.0).step_size == 5 and type(step_decay(0.1, 5.0).step_size) is int


def test_schedule_base_requires_call():
    class NoCall(Schedule):
        pass

    with pytest.raises(TypeError):
        NoCall()  # type: ignore[abstract]


def test_names_and_defaults():
    assert SCHEDULE_NAMES == (
        "constant",
        "step",
        "multistep",
        "exponential",
        "cosine",
        "warmup",
        "warmup_cosine",
        "onecycle",
    )
    lr, total = 0.1, 200
    built = {name: from_name(name, lr=lr, total_steps=total) for name in SCHEDULE_NAMES}
    assert built["constant"] == constant(lr)
    assert built["step"] == step_decay(lr, 66, gamma=0.1)
    assert built["multistep"] == multi_step(lr, [100, 150])
    assert built["exponential"](total) == pytest.approx(lr * 0.01, rel=1e-12)
    assert built["cosine"] == cosine(lr, total)
    assert built["warmup"] == linear_warmup(0.0, lr, 10)
    assert built["warmup_cosine"] == warmup_cosine(lr, 10, total)
    assert built["onecycle"] == one_cycle(lr, total)
    assert all(s(0) <= lr for s in built.values())


def test_from_name_options_spelling_and_aliases():
    assert from_name("step", lr=1.0, total_steps=30, step_size=5, gamma=0.5) == step_decay(
        1.0, 5, gamma=0.5
    )
    assert from_name("Warmup-Cosine", lr=1.0, total_steps=30, warmup_steps=0) == warmup_cosine(
        1.0, 0, 30
    )
    assert from_name("one_cycle", lr=1.0, total_steps=30, anneal="linear") == one_cycle(
        1.0, 30, anneal="linear"
    )
    assert from_name("multistep", lr=1.0, total_steps=30, milestones=[4]) == multi_step(1.0, [4])
    # A short run: 5% of 3 steps is no warm-up, and still a valid schedule.
    assert from_name("warmup_cosine", lr=1.0, total_steps=3)(0) == 1.0
    assert options_of("onecycle") == (
        "pct_start",
        "div_factor",
        "final_div_factor",
        "anneal",
        "three_phase",
    )
    assert options_of("constant") == ()


def test_warmup_cosine_is_a_join():
    s = warmup_cosine(1.0, 4, 10)
    assert isinstance(s, Join) and s.boundaries == (4,)


MODULES = ["base", "decay", "piecewise", "warmup", "cycle", "plateau", "names"]


@pytest.mark.parametrize("name", ["__init__", *MODULES])
def test_docstring_examples_run(name):
    module = (
        schedules if name == "__init__" else importlib.import_module(f"descend.schedules.{name}")
    )
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_imports_nothing_from_other_layers():
    # schedules is a leaf: only the stdlib, torch and the shared validation helper.
    folder = pathlib.Path(schedules.__file__).parent
    allowed = ("descend.schedules", "descend._validation")
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.startswith("descend"):
                    assert name.startswith(allowed), (path.name, name)
