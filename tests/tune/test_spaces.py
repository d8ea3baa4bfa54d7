"""Search spaces: one per registry optimizer, every range accepted by the optimizer, overrides checked."""

from __future__ import annotations

import math
import re

import pytest
import torch

from descend._validation import InvalidParameterError
from descend.optim import make_optimizer
from descend.optim.registry import OPTIMIZERS
from descend.tune import SPACES, optimizer_options, parse_space, search_space


def test_every_registry_optimizer_has_a_space_with_a_log_lr_first() -> None:
    assert set(SPACES) == set(OPTIMIZERS)
    for name, space in SPACES.items():
        lr = space[0]
        assert lr.name == "lr" and lr.log and 0 < lr.low < lr.high <= 1, name
        for p in space:
            assert p.low < p.high and (not p.log or p.low > 0), (name, p)
            lowest, highest, closed = p.bounds
            assert lowest <= p.low and (p.high < highest or (closed and p.high == highest))


@pytest.mark.parametrize("name", sorted(SPACES))
@pytest.mark.parametrize("corner", ["low", "high"])
def test_every_corner_of_every_space_builds_the_optimizer_and_steps(name: str, corner: str) -> None:
    values = {p.name: getattr(p, corner) for p in search_space(name, "all")}
    w = torch.ones(3, requires_grad=True)
    opt = make_optimizer(name, [w], lr=values["lr"], **optimizer_options(values))
    (w**2).sum().backward()
    opt.step()
    assert torch.isfinite(w).all()
    if "beta1" in values:
        betas = tuple(values[k] for k in ("beta1", "beta2", "beta3") if k in values)
        assert opt.defaults["betas"] == betas


def test_lr_searches_the_learning_rate_only_and_all_every_hyperparameter() -> None:
    assert [p.name for p in search_space("adamw", "lr")] == ["lr"]
    assert [p.name for p in search_space("adamw", "all")] == [p.name for p in SPACES["adamw"]]
    # An override of a hyperparameter --tune lr leaves out adds it, in the table's order.
    wd = parse_space("weight_decay=0:0.05", "adamw")
    assert [p.name for p in search_space("adamw", "lr", wd)] == ["lr", "weight_decay"]
    with pytest.raises(InvalidParameterError, match="Available: all, lr"):
        search_space("adam", "everything")
    with pytest.raises(InvalidParameterError, match="'lionheart'"):
        search_space("lionheart", "lr")


def test_overrides_replace_the_table_ranges() -> None:
    lr, wd = parse_space(" lr=1e-4:1e-1:log , weight_decay=0:0.1", "adamw")
    assert (lr.low, lr.high, lr.log) == (1e-4, 0.1, True)
    assert (wd.low, wd.high, wd.log) == (0.0, 0.1, False)
    assert parse_space(None, "sgd") == () and parse_space("  ", "sgd") == ()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "foo=0:1",
            "adam has no tunable hyperparameter 'foo'; allowed: lr, beta1, beta2, eps, weight_decay",
        ),
        ("momentum=0.5:0.9", "adam has no tunable hyperparameter 'momentum'"),
        ("lr=0.1:0.01:log", "the range is empty; LOW must be below HIGH. Got 0.1:0.01"),
        ("lr=0.1:0.1", "the range is empty"),
        ("lr=0:0.1:log", "a log range must lie above 0 (log 0 is -inf). Got LOW 0"),
        ("eps=-1e-8:1e-6:log", "a log range must lie above 0"),
        ("lr=1e-4", "must be NAME=LOW:HIGH or NAME=LOW:HIGH:log"),
        ("lr", "must be NAME=LOW:HIGH"),
        ("lr=a:1", "LOW must be a number. Got 'a'"),
        ("lr=1e-4:inf:log", "HIGH must be finite"),
        ("lr=1e-4:1e-1:ln", "the third field may only be 'log'. Got 'ln'"),
        ("beta1=0.5:1", "adam's beta1 must lie in [0, 1). Got 0.5:1"),
        ("weight_decay=-0.1:0.1", "adam's weight_decay must lie in [0, inf)"),
        ("lr=1e-4:1e-1:log,lr=1e-3:1e-2:log", "gives lr twice"),
        ("lr=1e-4:1e-1:log,,eps=1e-9:1e-7", "an empty entry"),
    ],
)
def test_every_bad_entry_is_one_clear_error(text: str, says: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        parse_space(text, "adam")
    message = str(info.value)
    assert says in message and "\n" not in message
    assert message.startswith("--space")


def test_priors_are_documented_in_the_module_table() -> None:
    from descend.tune import spaces

    doc = spaces.__doc__ or ""
    ranges = {(float(a), float(b)) for a, b in re.findall(r"\[([-\d.e]+), ([-\d.e]+)\]", doc)}
    for space in SPACES.values():
        for p in space:
            assert f"``{p.name}``" in doc
            assert any(math.isclose(p.low, a) and math.isclose(p.high, b) for a, b in ranges), p
