"""descend.Adafactor against torch.optim.Adafactor, and its state and errors.

Not in test_parity's grid: its problem has an empty parameter, on which torch's Adafactor
divides by zero (RMS of no elements); here the same mixed shapes without it, plus a 3-D
tensor (factored over its last two dimensions)."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

import descend
from tests.optim.problems import loss_fn

# At lr=0.05 the first group reaches its minimum within ~150 steps and hovers there, where
# a 1-ulp difference decides whether an update is clipped (max(1, RMS/d) switches): 2e-15
# from torch at step 100, 4e-6 at 150. The grid stays out of that regime.
GRID = [
    {},
    {"lr": 0.02, "weight_decay": 0.1},
    {"lr": 0.02, "beta2_decay": -1.0, "d": 1.5},
    {"lr": 0.02, "eps": (1e-6, 1e-2)},
]
# float32: per step each coordinate is rounded at most ~OPS times more or in another order
# than torch (the clipping factor, the relative step and the decay are separate products
# here, one scalar there); away from the minimum the map does not amplify them, so they add
# up over the steps at most.
F32_STEPS, OPS = 40, 12
F32_TOL = F32_STEPS * OPS * torch.finfo(torch.float32).eps / 2


def _params(dtype: torch.dtype) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    shapes = [(3, 4), (), (5,), (2, 3, 4)]
    params = [torch.randn(s, generator=g, dtype=dtype) for s in shapes]
    params.append(torch.randn(6, 4, generator=g, dtype=dtype).t())  # non-contiguous
    return [p.requires_grad_() for p in params]


def _run(make, dtype: torch.dtype, steps: int, *, maximize: bool = False):
    params = _params(dtype)
    opt = make([{"params": params[:2]}, {"params": params[2:], "lr": 0.005, "weight_decay": 0.05}])
    for t in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(params)
        (-loss if maximize else loss).backward()
        for j, p in enumerate(params):
            if (t + j) % 7 == 0:  # parameters skip steps, so their step counts differ
                p.grad = None
        opt.step()
    return params, opt


def _materialized(groups, **kwargs) -> descend.Adafactor:
    # The update computed whole, then added (the path of a compiled step): no fold.
    opt = descend.Adafactor(groups, **kwargs)
    opt.transform = dataclasses.replace(opt.transform, apply=None)
    return opt


@pytest.mark.parametrize("opts", GRID, ids=[str(o) for o in GRID])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("foreach", [False, True])
def test_matches_torch(opts: dict, dtype: torch.dtype, foreach: bool) -> None:
    """descend's materialized update against torch's for-loop and foreach paths, within
    rounding (the eager step, folded, is checked bit for bit below)."""
    maximize = not foreach  # flips one sign before the shared rule: checked once
    steps = 120 if dtype == torch.float64 else F32_STEPS
    ref, ref_opt = _run(
        lambda g: torch.optim.Adafactor(g, foreach=foreach, maximize=maximize, **opts),
        dtype,
        steps,
        maximize=maximize,
    )
    got, got_opt = _run(
        lambda g: _materialized(g, foreach=foreach, maximize=maximize, **opts),
        dtype,
        steps,
        maximize=maximize,
    )
    start = _params(dtype)
    assert sum(float((p - q).detach().abs().sum()) for p, q in zip(got, start)) > 1e-2
    tol = 1e-10 if dtype == torch.float64 else F32_TOL
    for p, q in zip(got, ref, strict=True):
        torch.testing.assert_close(p, q, rtol=tol, atol=tol)
    got_state, ref_state = got_opt.state_dict(), ref_opt.state_dict()
    assert got_state["param_groups"] == ref_state["param_groups"]
    for k, ref_entry in ref_state["state"].items():
        assert got_state["state"][k].keys() == ref_entry.keys()
        for key, value in ref_entry.items():
            assert got_state["state"][k][key].dtype == value.dtype
            torch.testing.assert_close(got_state["state"][k][key], value, rtol=tol, atol=tol)


@pytest.mark.parametrize("opts", GRID, ids=[str(o) for o in GRID])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_the_eager_step_is_torchs_for_loop_bit_for_bit(opts: dict, dtype: torch.dtype) -> None:
    """The same operations in torch's order: the factors' means and lerps, ``rsqrt``, the
    decay as ``theta.mul_(1 - lr*wd)`` and one ``theta.add_(U, alpha=-alpha/denom)`` with
    alpha and denom computed as torch's scalars. 120 steps, two groups, skipped steps."""
    ref, _ = _run(lambda g: torch.optim.Adafactor(g, foreach=False, **opts), dtype, 120)
    got, _ = _run(lambda g: descend.Adafactor(g, **opts), dtype, 120)
    assert all(torch.equal(p, q) for p, q in zip(got, ref, strict=True))


def test_factors_a_matrix_and_keeps_a_vector_whole() -> None:
    m, v = torch.zeros(3, 4, requires_grad=True), torch.zeros(5, requires_grad=True)
    opt = descend.Adafactor([m, v])
    (m.sum() + v.sum()).backward()
    opt.step()
    assert opt.state[m].keys() == {"step", "row_var", "col_var"}
    assert opt.state[m]["row_var"].shape == (3, 1) and opt.state[m]["col_var"].shape == (1, 4)
    assert opt.state[v].keys() == {"step", "variance"}


def test_state_dict_round_trip_resumes_bit_identically() -> None:
    params, opt = _run(lambda g: descend.Adafactor(g, weight_decay=0.1), torch.float32, 10)
    twin = [p.detach().clone().requires_grad_() for p in params]
    other = descend.Adafactor(
        [{"params": twin[:2]}, {"params": twin[2:], "lr": 0.005, "weight_decay": 0.05}],
        weight_decay=0.1,
    )
    other.load_state_dict(copy.deepcopy(opt.state_dict()))
    for _ in range(10):
        for ps, o in ((params, opt), (twin, other)):
            o.zero_grad()
            loss_fn(ps).backward()
            o.step()
    for p, q in zip(params, twin, strict=True):
        assert torch.equal(p, q)


def test_an_empty_parameter_is_left_alone() -> None:
    # torch's Adafactor raises ZeroDivisionError here (the RMS of no elements).
    e, x = torch.zeros(0, requires_grad=True), torch.ones(2, requires_grad=True)
    opt = descend.Adafactor([e, x])
    (e.sum() + (x**2).sum()).backward()
    opt.step()
    assert e.shape == (0,) and bool((x < 1).all())


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"eps": (-1e-30, 1e-3)}, "epsilon1 should be >= 0"),
        ({"eps": (None, -1.0)}, "epsilon2 should be >= 0"),
        ({"d": 0.5}, "Clipping threshold d should be >= 1"),
        ({"beta2_decay": 0.8}, "beta2_decay should be <= 0"),
    ],
)
def test_bad_hyperparameters_are_refused_in_descend_and_torch_words(kwargs, words) -> None:
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=words) as caught:
        descend.Adafactor([torch.zeros(2, requires_grad=True)], **kwargs)
    assert f"'{name}' parameter of Adafactor" in str(caught.value)


def test_complex_parameters_are_refused_at_the_step() -> None:
    z = torch.zeros(2, 3, dtype=torch.complex64, requires_grad=True)
    opt = descend.Adafactor([z])
    z.grad = torch.ones_like(z)
    with pytest.raises(RuntimeError, match="Adafactor does not support complex parameters"):
        opt.step()
