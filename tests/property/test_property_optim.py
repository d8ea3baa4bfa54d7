"""Properties of every named optimizer over its whole valid hyperparameter space.

For any valid hyperparameters, any parameter shapes (scalars, empty tensors,
several groups) and the float dtypes: stepping does not crash, keeps shapes and
dtypes, keeps finite parameters finite where the algorithm guarantees it (every
denominator has ``eps > 0``), a state dict survives a ``weights_only`` round
trip exactly, ``lr = 0`` changes nothing, and ``maximize`` is descent on ``-g``.
"""

from __future__ import annotations

import inspect
import io

import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

import descend
from descend.schedules import cosine

SETTINGS = settings(max_examples=40, deadline=None)
FLOAT_DTYPES = [torch.float32, torch.float64, torch.bfloat16]
unit = st.floats(0.0, 1.0, exclude_max=True)  # decay rates: [0, 1)
small = st.floats(0.0, 0.1)
eps = st.floats(1e-8, 1e-2)
lr = st.floats(0.0, 1.0)
NUMERIC = ["lr", "eps", "weight_decay", "momentum", "alpha", "lr_decay", "dampening"]


@st.composite
def sgd(draw):
    momentum = draw(st.sampled_from([0.0, 0.5, 0.9]) | st.floats(0.0, 0.99))
    nesterov = momentum > 0 and draw(st.booleans())  # Nesterov needs momentum, no dampening
    dampening = 0.0 if nesterov else draw(st.floats(0.0, 1.0))
    hp = {"lr": draw(lr), "momentum": momentum, "dampening": dampening}
    hp |= {"weight_decay": draw(small), "nesterov": nesterov, "maximize": draw(st.booleans())}
    return descend.SGD, hp


@st.composite
def adagrad(draw):
    hp = {"lr": draw(lr), "lr_decay": draw(small), "weight_decay": draw(small), "eps": draw(eps)}
    hp |= {"initial_accumulator_value": draw(st.floats(0.0, 1.0)), "maximize": draw(st.booleans())}
    return descend.Adagrad, hp


@st.composite
def rmsprop(draw):
    hp = {"lr": draw(lr), "alpha": draw(unit), "eps": draw(eps), "weight_decay": draw(small)}
    hp |= {"momentum": draw(st.floats(0.0, 0.99)), "centered": draw(st.booleans())}
    return descend.RMSprop, hp | {"maximize": draw(st.booleans())}


@st.composite
def adam(draw):
    cls = draw(st.sampled_from([descend.Adam, descend.AdamW]))
    hp = {"lr": draw(lr), "betas": (draw(unit), draw(unit)), "eps": draw(eps)}
    hp |= {"weight_decay": draw(small), "amsgrad": draw(st.booleans())}
    return cls, hp | {"maximize": draw(st.booleans())}


optimizers = st.one_of(sgd(), adagrad(), rmsprop(), adam())
shapes = st.lists(
    st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple), min_size=1, max_size=3
)


@st.composite
def problem(draw):
    """(optimizer class, hyperparameters, parameters, gradients for 4 steps)."""
    cls, hp = draw(optimizers)
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    params = [(torch.randn(s, generator=g) * 3).to(dtype) for s in draw(shapes)]
    grads = [[(torch.randn(p.shape, generator=g) * 5).to(dtype) for p in params] for _ in range(4)]
    return cls, hp, params, grads


def identical(x: torch.Tensor, y: torch.Tensor) -> bool:
    """Bit-for-bit equal values, NaN included (a NaN elsewhere is the finiteness test's business)."""
    return (
        x.dtype == y.dtype
        and x.shape == y.shape
        and bool(((x == y) | (torch.isnan(x) & torch.isnan(y))).all())
    )


# Centered RMSprop with alpha = 0: v - m^2 = g*g - g*g is 0 in exact arithmetic, but the
# fused multiply-add in addcmul leaves the rounding error of g*g, about -1e-7 here, and
# its square root is NaN (torch.optim.RMSprop does the same).
CENTERED_RMS = (
    descend.RMSprop,
    {
        "lr": 0.0,
        "alpha": 0.0,
        "eps": 0.0078125,
        "weight_decay": 0.0,
        "momentum": 0.0,
        "centered": True,
        "maximize": False,
    },
    [torch.tensor(4.6230)],
    [[torch.tensor(g)] for g in (-1.4671, -10.8939, 2.8422, -5.4226)],
)


def build(cls, hp, params):
    leaves = [p.clone().requires_grad_(True) for p in params]
    # Two param groups when there is more than one tensor: the second at half the rate.
    if len(leaves) > 1:
        half = hp["lr"] / 2 if isinstance(hp["lr"], float) else hp["lr"]
        groups = [{"params": leaves[:1]}, {"params": leaves[1:], "lr": half}]
    else:
        groups = leaves
    return cls(groups, **hp), leaves


def step(opt, leaves, grads) -> None:
    for p, g in zip(leaves, grads):
        p.grad = g.clone()
    opt.step()


@SETTINGS
@given(problem())
@example(CENTERED_RMS)
def test_steps_keep_shapes_dtypes_and_finite_values(case) -> None:
    cls, hp, params, grads = case
    opt, leaves = build(cls, hp, params)
    for g in grads:
        step(opt, leaves, g)
    for p, before in zip(leaves, params):
        assert p.shape == before.shape and p.dtype == before.dtype
        assert bool(torch.isfinite(p).all()), (cls.__name__, hp, p)
    for state in opt.state.values():
        for value in state.values():
            if torch.is_tensor(value):
                assert bool(torch.isfinite(value).all()), (cls.__name__, hp, state)


@SETTINGS
@given(problem(), st.booleans())
def test_state_dict_round_trip_through_weights_only_is_exact(case, scheduled) -> None:
    cls, hp, params, grads = case
    if scheduled:  # a schedule as lr: its position travels in the state dict too
        hp = {**hp, "lr": cosine(max(hp["lr"], 1e-3), 10)}
    first, a = build(cls, hp, params)
    for g in grads[:2]:
        step(first, a, g)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)

    second, b = build(cls, hp, [p.detach() for p in a])
    second.load_state_dict(saved)
    for g in grads[2:]:
        step(first, a, g)
        step(second, b, g)
    for x, y in zip(a, b):
        assert identical(x, y), (cls.__name__, hp)
    sa, sb = first.state_dict(), second.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for key, state in sa["state"].items():
        for name, value in state.items():
            other = sb["state"][key][name]
            assert identical(value, other) if torch.is_tensor(value) else value == other


@SETTINGS
@given(problem())
def test_a_zero_learning_rate_changes_nothing(case) -> None:
    cls, hp, params, grads = case
    opt, leaves = build(cls, {**hp, "lr": 0.0}, params)
    for g in grads:
        step(opt, leaves, g)
    for p, before in zip(leaves, params):
        assert identical(p.detach(), before), (cls.__name__, hp)


@SETTINGS
@given(problem())
def test_maximize_is_descent_on_the_negated_gradient(case) -> None:
    cls, hp, params, grads = case
    up, a = build(cls, {**hp, "maximize": True}, params)
    down, b = build(cls, {**hp, "maximize": False}, params)
    for g in grads:
        step(up, a, g)
        step(down, b, [-x for x in g])
    for x, y in zip(a, b):
        assert identical(x, y), (cls.__name__, hp)


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(descend.optim.optimizer_names()),
    data=st.data(),
    value=st.one_of(st.floats(max_value=-1e-12), st.just(float("nan"))),
)
def test_an_invalid_hyperparameter_is_refused_with_its_name_and_value(name, data, value) -> None:
    accepted = inspect.signature(descend.optim.get_spec(name).cls).parameters
    key = data.draw(st.sampled_from([k for k in NUMERIC if k in accepted]), label="setting")
    params = [torch.zeros(2, requires_grad=True)]
    try:
        descend.optim.make_optimizer(name, params, **{key: value})
    except ValueError as error:
        message = str(error)
        assert f"'{key}'" in message and f"Got {value!r}" in message, message
    else:
        raise AssertionError(f"{name} accepted {key}={value!r}")
